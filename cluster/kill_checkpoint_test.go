package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// checkpointerEnv, set to a JSON childCheckpointer, makes the test binary
// take checkpoints or bootstrap in a loop (see TestMain), slowly, so that
// a test can SIGKILL it in the middle of one.
const checkpointerEnv = "FACESEARCH_CLUSTER_TEST_CHECKPOINTER"

type childCheckpointer struct {
	URL     string
	Log     LogOptions
	Bucket  string
	Op      string // "take", "bootstrap" or "trim"
	Dir     string // the store taken from, or bootstrapped
	Scratch string
}

// runChildCheckpointer runs until killed. It prints "busy" once its first
// upload or download is under way.
func runChildCheckpointer(spec string) {
	fail := func(err error) {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var s childCheckpointer
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fail(err)
	}
	nc, err := Connect([]string{s.URL}, nil)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	l, err := OpenLog(ctx, nc, &s.Log)
	if err != nil {
		fail(err)
	}
	c, err := OpenCheckpoints(ctx, l, &CheckpointOptions{Bucket: s.Bucket})
	if err != nil {
		fail(err)
	}
	var once sync.Once
	slow := func(int64) {
		once.Do(func() { fmt.Println("busy") })
		time.Sleep(10 * time.Millisecond)
	}
	switch s.Op {
	case "take":
		e, err := engine.Open(s.Dir, nil)
		if err != nil {
			fail(err)
		}
		c.packed = slow
		for {
			if _, err := c.Take(ctx, e, "child", s.Scratch); err != nil {
				fail(err)
			}
		}
	case "bootstrap":
		c.fetched = slow
		for {
			if _, err := c.Bootstrap(ctx, s.Dir); err != nil {
				fail(err)
			}
		}
	case "trim":
		c.trimmed = func() { slow(0) }
		for {
			if _, err := c.Trim(ctx); err != nil {
				fail(err)
			}
		}
	}
	fail(fmt.Errorf("unknown op %q", s.Op))
}

// killWhenBusy runs spec in a child process and SIGKILLs it once it is
// under way, after a further pause.
func killWhenBusy(t *testing.T, spec childCheckpointer, pause time.Duration) {
	t.Helper()
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), checkpointerEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case l := <-line:
		require.Equal(t, "busy", l)
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not start in 30s")
	}
	time.Sleep(pause)
}

// A node SIGKILLed while taking a checkpoint leaves the verified
// checkpoints and the log as they were; a node SIGKILLed while
// bootstrapping keeps its old store, or has none, and bootstraps again.
func TestKillMidCheckpointAndMidBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	c := sharedCluster(t)
	lopts := runLogOptions(t)
	logs := openLogs(t, c, lopts)
	cps := openCheckpoints(t, logs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	publishN(ctx, t, logs[0], 150)
	st, err := logs[0].State(ctx)
	require.NoError(t, err)
	cmds := workload(t, 10, 150)
	good := takeFrom(t, cps[0], storeAt(t, cmds, 60))
	src := storeAt(t, cmds, 150)
	spec := childCheckpointer{URL: c.nodes[1].ClientURL(), Log: *lopts, Bucket: cps[0].opts.Bucket}

	for _, pause := range []time.Duration{0, 40 * time.Millisecond, 150 * time.Millisecond} {
		spec.Op, spec.Dir, spec.Scratch = "take", src, t.TempDir()
		killWhenBusy(t, spec, pause)
		// Every checkpoint listed (the child's own that it finished
		// included) is whole, and the earlier one is still there.
		list, err := cps[1].List(ctx)
		require.NoError(t, err)
		require.Equal(t, good.Name, list[len(list)-1].Name)
		all, err := cps[1].all(ctx)
		require.NoError(t, err)
		t.Logf("killed %s into a take: %d verified checkpoints, %d unverified", pause, len(list), len(all)-len(list))
		for _, cp := range list {
			tmp, err := cps[1].fetch(ctx, cp, filepath.Join(t.TempDir(), "store"))
			require.NoError(t, err, "checkpoint %s", cp.Name)
			require.NoError(t, os.RemoveAll(tmp))
		}
		after, err := logs[1].State(ctx)
		require.NoError(t, err)
		require.Equal(t, st.First, after.First)
		require.Equal(t, st.Last, after.Last)
	}
	// The killed uploads' chunks go with the next trim once past the lease.
	short := openCheckpoints(t, logs[:1], &CheckpointOptions{Bucket: cps[0].opts.Bucket, Lease: 300 * time.Millisecond})[0]
	time.Sleep(400 * time.Millisecond)
	trimmed, err := short.Trim(ctx)
	require.NoError(t, err)
	t.Logf("orphaned uploads purged: %d", trimmed.Orphans)
	requireOnlyChunksOf(ctx, t, short, good.Name)

	for _, pause := range []time.Duration{0, 40 * time.Millisecond, 150 * time.Millisecond} {
		dst := storeAt(t, cmds, 30)
		spec.Op, spec.Dir = "bootstrap", dst
		killWhenBusy(t, spec, pause)
		// Either the old store, or the restored one, or (killed between the
		// renames) none: never a partial one.
		leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".store.*"))
		seq, err := readApplied(dst)
		t.Logf("killed %s into a bootstrap: store at %d (%v), leftovers %d", pause, seq, err, len(leftovers))
		if err == nil {
			require.Contains(t, []uint64{30, 60, 150}, seq)
		} else {
			require.NoDirExists(t, dst)
		}
		got, err := cps[2].Bootstrap(ctx, dst)
		require.NoError(t, err)
		if got.Seq == 150 {
			requireSameStore(t, src, dst)
		}
		names, err := os.ReadDir(filepath.Dir(dst))
		require.NoError(t, err)
		require.Len(t, names, 1, "no leftovers")
	}
}

// A node SIGKILLed in a trim, after its purge of the log, leaves every
// checkpoint the log is kept for whole; the next trim finishes.
func TestKillMidTrim(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	c := sharedCluster(t)
	lopts := runLogOptions(t)
	logs := openLogs(t, c, lopts)
	cps := openCheckpoints(t, logs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	publishN(ctx, t, logs[0], 150)
	cmds := workload(t, 12, 120)
	var taken []Checkpoint
	for _, n := range []int{40, 80, 120} {
		taken = append(taken, takeFrom(t, cps[0], storeAt(t, cmds, n)))
	}

	killWhenBusy(t, childCheckpointer{URL: c.nodes[2].ClientURL(), Log: *lopts, Bucket: cps[0].opts.Bucket, Op: "trim"}, 0)
	st, err := logs[1].State(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 81, st.First)
	list, err := cps[1].List(ctx)
	require.NoError(t, err)
	t.Logf("killed in a trim: %d verified checkpoints left", len(list))
	require.GreaterOrEqual(t, len(list), 2)
	require.Equal(t, []string{taken[2].Name, taken[1].Name}, []string{list[0].Name, list[1].Name})
	for _, cp := range list {
		tmp, err := cps[1].fetch(ctx, cp, filepath.Join(t.TempDir(), "store"))
		require.NoError(t, err, "checkpoint %s", cp.Name)
		require.NoError(t, os.RemoveAll(tmp))
	}

	_, err = cps[2].Trim(ctx)
	require.NoError(t, err)
	list, err = cps[0].List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	requireOnlyChunksOf(ctx, t, cps[0], taken[2].Name, taken[1].Name)
}

// requireOnlyChunksOf fails unless the bucket's chunks are those of the
// named checkpoints.
func requireOnlyChunksOf(ctx context.Context, t *testing.T, c *Checkpoints, names ...string) {
	t.Helper()
	want := map[string]uint64{}
	for _, name := range names {
		var info *jetstream.ObjectInfo
		require.NoError(t, c.visible(ctx, func() (err error) {
			info, err = c.obs.GetInfo(ctx, name)
			return err
		}))
		want["$O."+c.opts.Bucket+".C."+info.NUID] = uint64(info.Chunks)
	}
	stream, err := c.log.js.Stream(ctx, "OBJ_"+c.opts.Bucket)
	require.NoError(t, err)
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter("$O."+c.opts.Bucket+".C.>"))
	require.NoError(t, err)
	require.Equal(t, want, si.State.Subjects)
}
