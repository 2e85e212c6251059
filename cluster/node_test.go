package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestNodeOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts NodeOptions
		want []string // every problem named
	}{
		{"no data dir", NodeOptions{Name: "a", ClientListen: "127.0.0.1:0"}, []string{"DataDir"}},
		{"bad listens", NodeOptions{Name: "a", DataDir: "d", ClientListen: "nowhere", ClusterListen: "h:99999"},
			[]string{"ClientListen", "ClusterListen"}},
		{"cluster without name", NodeOptions{DataDir: "d", ClientListen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"},
			[]string{"Name is required", "Routes are required"}},
		{"routes without cluster", NodeOptions{Name: "a", DataDir: "d", ClientListen: "127.0.0.1:0", Routes: []string{"nats-route://h:1"}},
			[]string{"Routes need ClusterListen"}},
		{"bad route and negatives", NodeOptions{Name: "a b", DataDir: "d", ClientListen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0",
			Routes: []string{"http://h:1", "nats-route://h"}, SyncInterval: -1, MaxStore: -1, ReadyTimeout: -1},
			[]string{"Name", `"http://h:1"`, `"nats-route://h"`, "SyncInterval", "MaxStore", "ReadyTimeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			require.ErrorIs(t, err, ErrInvalidOptions)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			_, err = StartNode(&tt.opts)
			require.ErrorIs(t, err, ErrInvalidOptions, "StartNode validates")
		})
	}
	_, err := StartNode(nil)
	require.ErrorIs(t, err, ErrInvalidOptions, "a nil *NodeOptions lacks DataDir")
}

func TestNodeOptionsSyncEveryWriteByDefault(t *testing.T) {
	o := &NodeOptions{DataDir: "/data"}
	o.ensureDefaults()
	so := o.serverOptions()
	assert.True(t, so.SyncAlways, "JetStream fsyncs every write by default")
	assert.True(t, so.JetStream)
	assert.Equal(t, filepath.Join("/data", "nats"), so.StoreDir)
	assert.EqualValues(t, MaxCommandSize, so.MaxPayload, "the largest command fits one message")

	o.SyncInterval = time.Second
	so = o.serverOptions()
	assert.False(t, so.SyncAlways)
	assert.Equal(t, time.Second, so.SyncInterval)
}

func TestStartNodeSingleServesLogAndShutsDown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	n, err := StartNode(&NodeOptions{Name: "solo", ClientListen: "127.0.0.1:0", DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(n.Shutdown)
	assert.Equal(t, "solo", n.Name())
	assert.Empty(t, n.RouteURL(), "an unclustered node has no route port")

	nc, err := Connect([]string{n.ClientURL()}, nil)
	require.NoError(t, err)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := OpenLog(ctx, nc, &LogOptions{Replicas: 1})
	require.NoError(t, err)
	ack, err := l.Publish(ctx, cmdN("solo", 1))
	require.NoError(t, err)
	assert.EqualValues(t, 1, ack.Seq)
	// The reader applies it, and returns, leaving nothing running, once its
	// context is cancelled.
	r := &recorder{}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Follow(fctx, 0, r) }()
	waitApplied(t, r, 1)
	stop()
	require.ErrorIs(t, <-done, context.Canceled)

	entries, err := os.ReadDir(filepath.Join(dir, "nats"))
	require.NoError(t, err)
	assert.NotEmpty(t, entries, "JetStream keeps its files under the data dir")

	nc.Close()
	n.Shutdown()
	n.Shutdown() // a second call is harmless
	_, err = Connect([]string{n.ClientURL()}, nil)
	require.ErrorIs(t, err, ErrUnreachable, "a shut-down node no longer listens")
}

func TestStartNodeClusterRoutesAreReported(t *testing.T) {
	ports, err := freePorts(1)
	require.NoError(t, err)
	n, err := StartNode(&NodeOptions{
		Name: "r1", ClientListen: "127.0.0.1:0", ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[0]), DataDir: t.TempDir(),
		Routes: []string{fmt.Sprintf("nats-route://127.0.0.1:%d", ports[0])},
	})
	require.NoError(t, err)
	defer n.Shutdown()
	assert.Equal(t, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[0]), n.RouteURL())
}

func TestConnectUnreachableNamesURL(t *testing.T) {
	ports, err := freePorts(2)
	require.NoError(t, err) // released at once: nothing listens there
	urls := []string{fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), fmt.Sprintf("nats://127.0.0.1:%d", ports[1])}
	_, err = Connect(urls, nil)
	require.ErrorIs(t, err, ErrUnreachable)
	var ue *UnreachableError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, urls, ue.URLs)
	for _, u := range urls {
		assert.Contains(t, err.Error(), u, "the message names every URL tried")
	}
}

func TestConnectRejectsMalformedURLs(t *testing.T) {
	tests := []struct {
		name string
		urls []string
	}{
		{"none", nil},
		{"http", []string{"http://127.0.0.1:4222"}},
		{"a route URL", []string{"nats-route://127.0.0.1:6222"}},
		{"no host", []string{"nats://"}},
		{"not a URL", []string{"::"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Connect(tt.urls, nil)
			require.ErrorIs(t, err, ErrInvalidOptions)
		})
	}
}

func TestLogOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts LogOptions
	}{
		{"dotted stream", LogOptions{Stream: "a.b"}},
		{"wildcard subject", LogOptions{Subject: "a.*"}},
		{"too many replicas", LogOptions{Replicas: 7}},
		{"negative replicas", LogOptions{Replicas: -1}},
		{"negative window", LogOptions{Duplicates: -time.Second}},
		{"negative timeout", LogOptions{PublishTimeout: -time.Second}},
	}
	_, err := OpenLog(context.Background(), nil, nil)
	require.ErrorIs(t, err, ErrInvalidOptions, "no connection")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.ensureDefaults()
			require.ErrorIs(t, o.Validate(), ErrInvalidOptions)
			_, err := OpenLog(context.Background(), nil, &tt.opts)
			require.ErrorIs(t, err, ErrInvalidOptions, "OpenLog validates before any request")
		})
	}
}
