package engine

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/internal/storetest"
)

// loggedCommand is one mutation of a replicated log, as an applier hands
// it to Apply.
type loggedCommand struct {
	op      string
	req     []byte
	imageID string
	faceIDs []string
}

// loggedCommands is a seeded log of n mutations on one collection:
// IndexFaces, CreateUser, AssociateFaces and DeleteUser, some refused.
func loggedCommands(t *testing.T, seed uint64, n int) []loggedCommand {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 2))
	add := func(cmds []loggedCommand, op string, in any) []loggedCommand {
		req, err := json.Marshal(in)
		require.NoError(t, err)
		c := loggedCommand{op: op, req: req}
		if in, ok := in.(*IndexFacesInput); ok {
			c.imageID, c.faceIDs = NewIndexFacesIDs(in)
		}
		return append(cmds, c)
	}
	cmds := add(nil, "CreateCollection", &CreateCollectionInput{CollectionId: "c"})
	var faces []string
	for len(cmds) < n {
		user := fmt.Sprintf("u%d", r.IntN(20))
		switch r.IntN(4) {
		case 0:
			cmds = add(cmds, "IndexFaces", indexInput("c", 1+r.IntN(3)))
			faces = append(faces, cmds[len(cmds)-1].faceIDs...)
		case 1:
			cmds = add(cmds, "CreateUser", &CreateUserInput{CollectionId: "c", UserId: user})
		case 2:
			if len(faces) > 0 {
				cmds = add(cmds, "AssociateFaces", &AssociateFacesInput{CollectionId: "c", UserId: user, FaceIds: []string{faces[r.IntN(len(faces))]}})
			}
		default:
			cmds = add(cmds, "DeleteUser", &DeleteUserInput{CollectionId: "c", UserId: user})
		}
	}
	return cmds
}

const appliedKey = "applied"

// applyLogged applies cmds[from:] to e, unsynced unless sync, each
// recording its sequence (its index plus one) and its outcome, as a
// cluster's applier does.
func applyLogged(t *testing.T, e *Engine, cmds []loggedCommand, from int, sync bool, after func(seq int)) {
	t.Helper()
	for i := from; i < len(cmds); i++ {
		c, seq := cmds[i], uint64(i+1)
		env := &ApplyEnv{Time: applyT0.Add(time.Duration(i) * time.Second), ImageID: c.imageID, FaceIDs: c.faceIDs, NoSync: !sync,
			Records: func(o *Outcome) []LogRecord {
				v, err := json.Marshal(o)
				require.NoError(t, err)
				return []LogRecord{{Key: appliedKey, Value: binary.BigEndian.AppendUint64(nil, seq)}, {Key: fmt.Sprintf("o/%08d", seq), Value: v}}
			}}
		_, err := e.Apply(context.Background(), c.op, c.req, env)
		require.NoError(t, err, "command %d", seq)
		if after != nil {
			after(i + 1)
		}
	}
}

// appliedSeq is the sequence recorded in e, 0 for none.
func appliedSeq(t *testing.T, e *Engine) int {
	t.Helper()
	v, ok, err := e.LogRecord(appliedKey)
	require.NoError(t, err)
	if !ok {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

// dumpFS is every record of the closed store at dir on fs but its
// page-token secret, which each store makes for itself.
func dumpFS(t *testing.T, fs vfs.FS, dir string) map[string]string {
	t.Helper()
	d := storetest.DumpFS(t, fs, dir)
	delete(d, "sys/secret")
	return d
}

// appliedStore is the records of a store that applied cmds without a cut.
func appliedStore(t *testing.T, cmds []loggedCommand) map[string]string {
	t.Helper()
	fs := vfs.NewMem()
	e, err := openOnFS(fs, "/db")
	require.NoError(t, err)
	applyLogged(t, e, cmds, 0, false, nil)
	require.NoError(t, e.Close())
	return dumpFS(t, fs, "/db")
}

// TestApplyNoSyncPowerCut cuts the power at seeded moments while a log is
// applied unsynced. Each store the cut left opens, records an applied
// sequence no later than the cut's with the effects of exactly the commands
// up to it (a later batch never survives without an earlier one), and once
// the applier applies the log again from there it holds the same records,
// outcomes included, as a store that applied the log without a cut.
func TestApplyNoSyncPowerCut(t *testing.T) {
	const n, cuts = 200, 10
	cmds := loggedCommands(t, 7, n)

	want := appliedStore(t, cmds)

	r := rand.New(rand.NewPCG(7, 3))
	at := map[int]vfs.CrashCloneCfg{}
	for range cuts {
		at[1+r.IntN(n)] = vfs.CrashCloneCfg{UnsyncedDataPercent: []int{0, 30, 70, 100}[r.IntN(4)], RNG: rand.New(rand.NewPCG(7, r.Uint64()))}
	}
	fs := newCrashableFS()
	e, err := openOnFS(fs, "/db")
	require.NoError(t, err)
	clones := map[int]*vfs.MemFS{}
	applyLogged(t, e, cmds, 0, false, func(seq int) {
		if cfg, ok := at[seq]; ok {
			clones[seq] = fs.CrashClone(cfg)
		}
	})
	require.NoError(t, e.Close())

	lost := 0
	for cut, clone := range clones {
		ce, err := openOnFS(clone, "/db")
		require.NoError(t, err, "cut after %d", cut)
		k := appliedSeq(t, ce)
		require.LessOrEqual(t, k, cut, "cut after %d", cut)
		t.Logf("cut after %d (%d%% of unsynced data kept): applied %d", cut, at[cut].UnsyncedDataPercent, k)
		if k < cut {
			lost++
		}
		require.NoError(t, ce.Close())
		require.Equal(t, appliedStore(t, cmds[:k]), dumpFS(t, clone, "/db"), "cut after %d: the store applied %d", cut, k)

		ce, err = openOnFS(clone, "/db")
		require.NoError(t, err)
		applyLogged(t, ce, cmds, k, false, nil)
		require.NoError(t, ce.Close())
		require.Equal(t, want, dumpFS(t, clone, "/db"), "cut after %d, applied %d", cut, k)
	}
	require.Positive(t, lost, "no cut lost an unsynced command: the test shows nothing")
	t.Logf("%d cuts; %d lost unsynced commands and re-applied them to the same store", len(clones), lost)
}

// Without NoSync every applied command survives a power cut that keeps
// nothing unsynced.
func TestApplySyncedPowerCut(t *testing.T) {
	cmds := loggedCommands(t, 8, 40)
	fs := newCrashableFS()
	e, err := openOnFS(fs, "/db")
	require.NoError(t, err)
	applyLogged(t, e, cmds, 0, true, nil)
	clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	require.NoError(t, e.Close())
	ce, err := openOnFS(clone, "/db")
	require.NoError(t, err)
	require.Equal(t, len(cmds), appliedSeq(t, ce))
	require.NoError(t, ce.Close())
	require.Equal(t, appliedStore(t, cmds), dumpFS(t, clone, "/db"))
}
