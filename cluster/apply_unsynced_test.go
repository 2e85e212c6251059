package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// barrier is a read barrier command at t0 plus at.
func barrier(id string, at time.Duration) *Command {
	return &Command{Version: CommandVersion, ID: id, Op: OpBarrier, Node: "node-2", Time: t0 + int64(at)}
}

// withBarriers puts runs of up to most barriers between cmds, as other
// nodes' reads do, keeping the commands' times.
func withBarriers(cmds []*Command, seed uint64, most int) []*Command {
	r := rand.New(rand.NewPCG(seed, 5))
	var out []*Command
	for i, c := range cmds {
		for j := range r.IntN(most + 1) {
			out = append(out, barrier(fmt.Sprintf("b-%d-%d", i, j), time.Duration(c.Time-t0)))
		}
		out = append(out, c)
	}
	return out
}

// A barrier writes nothing, so a restarted node resumes after the last
// mutation, or after the last barrier at a multiple of
// barrierPersistEvery; the barriers after it are applied again, the gap
// check holds at the recorded sequence, and the store ends as one that
// never stopped.
func TestEngineApplierBarriersAcrossRestart(t *testing.T) {
	cmds := []*Command{mutation(t, "c1", OpCreateCollection, 0, &engine.CreateCollectionInput{CollectionId: "staff"})}
	for len(cmds) < 10 {
		cmds = append(cmds, barrier(fmt.Sprint("b", len(cmds)), time.Second))
	}
	cmds = append(cmds, mutation(t, "c2", OpCreateUser, time.Minute, &engine.CreateUserInput{CollectionId: "staff", UserId: "alice"}))
	for len(cmds) < barrierPersistEvery+5 {
		cmds = append(cmds, barrier(fmt.Sprint("b", len(cmds)), time.Hour))
	}
	ref := t.TempDir()
	require.EqualValues(t, len(cmds), applyLog(t, ref, nil, cmds))

	cases := []struct {
		stop, resume int // the sequence applied before the restart, and the one recorded
	}{
		{stop: 1, resume: 1},
		{stop: 10, resume: 1},
		{stop: 11, resume: 11},
		{stop: barrierPersistEvery - 1, resume: 11},
		{stop: barrierPersistEvery + 3, resume: barrierPersistEvery},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.stop), func(t *testing.T) {
			dir := t.TempDir()
			require.EqualValues(t, tc.stop, applyLog(t, dir, nil, cmds[:tc.stop]))

			e, err := engine.Open(dir, nil)
			require.NoError(t, err)
			a, err := NewEngineApplier(e, nil)
			require.NoError(t, err)
			seq, last := a.Applied()
			require.EqualValues(t, tc.resume, seq, "the recorded sequence")
			require.Equal(t, cmds[tc.resume-1].ApplyTime(0), last, "the time recorded with it")
			err = a.Apply(context.Background(), seq+2, cmds[seq+1])
			var gap *GapError
			require.ErrorAs(t, err, &gap)
			require.EqualValues(t, tc.resume, gap.Applied)
			require.NoError(t, e.Close())

			require.EqualValues(t, len(cmds), applyLog(t, dir, nil, cmds))
			requireSameStore(t, ref, dir)
		})
	}
}

// applyChildEnv names the store and log a child process applies (see
// TestEngineApplierKilledMidApply).
const applyChildEnv = "FACESEARCH_APPLY_KILL_CHILD"

// A node killed (SIGKILL) while it applies unsynced batches, barriers
// among them, restarts from its recorded sequence, applies the rest of the
// log, and holds the same store as a replica that was never killed.
func TestEngineApplierKilledMidApply(t *testing.T) {
	if dir := os.Getenv(applyChildEnv); dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, "log.json"))
		require.NoError(t, err)
		var cmds []*Command
		require.NoError(t, json.Unmarshal(b, &cmds))
		e, err := engine.Open(filepath.Join(dir, "store"), nil)
		require.NoError(t, err)
		a, err := NewEngineApplier(e, nil)
		require.NoError(t, err)
		for i, c := range cmds {
			require.NoError(t, a.Apply(context.Background(), uint64(i+1), c))
			fmt.Println(i + 1)
		}
		select {} // killed here at the latest, never closed
	}
	cmds := withBarriers(workload(t, 6, 400), 6, 6)
	ref, child := t.TempDir(), t.TempDir()
	b, err := json.Marshal(cmds)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(child, "log.json"), b, 0o600))
	require.EqualValues(t, len(cmds), applyLog(t, ref, nil, cmds))

	kill := len(cmds) / 2
	cmd := exec.Command(os.Args[0], "-test.run=^TestEngineApplierKilledMidApply$", "-test.count=1")
	cmd.Env = append(os.Environ(), applyChildEnv+"="+child)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(out)
	applied := 0
	for applied < kill && lines.Scan() {
		applied, _ = strconv.Atoi(lines.Text())
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	require.GreaterOrEqual(t, applied, kill, "the child stopped before it was killed")

	dir := filepath.Join(child, "store")
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	a, err := NewEngineApplier(e, nil)
	require.NoError(t, err)
	resume, _ := a.Applied()
	require.NoError(t, e.Close())
	require.LessOrEqual(t, resume, uint64(len(cmds)))
	t.Logf("killed after sequence %d of %d; the store recorded %d", applied, len(cmds), resume)
	require.EqualValues(t, len(cmds), applyLog(t, dir, nil, cmds))
	requireSameStore(t, ref, dir)
}
