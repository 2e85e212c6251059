package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// killedStore is a copy of a store's directory taken while the store was
// open, after n synced commits of one face each (sequences 1..n): the
// state a killed process leaves. It returns the copy and its one log.
func killedStore(t *testing.T, n int) (dir, log string) {
	t.Helper()
	src := t.TempDir()
	s, err := Open(src, nil)
	require.NoError(t, err)
	vec := make([]float32, 128)
	for i := range n {
		vec[i%len(vec)] = float32(i + 1)
		b := s.NewBatch()
		b.PutFace("c", &Face{ID: fmt.Sprint("f", i+1), Seq: uint64(i + 1), ImageID: "img", Vector: vec})
		require.NoError(t, b.Commit(true))
	}
	dir = copyTree(t, src)
	require.NoError(t, s.Close())
	var logs []string
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if info, _ := e.Info(); strings.HasSuffix(e.Name(), ".log") && info.Size() > 0 {
			logs = append(logs, filepath.Join(dir, e.Name()))
		}
	}
	require.Len(t, logs, 1, "the fixture should have one log holding every commit")
	return dir, logs[0]
}

// faceSeqs are the sequences of collection c's faces, in order.
func faceSeqs(t *testing.T, s *Store) []uint64 {
	t.Helper()
	var seqs []uint64
	for f, err := range s.Faces("c") {
		require.NoError(t, err)
		seqs = append(seqs, f.Seq)
	}
	return seqs
}

// TestLogDamageRefused: one word flipped in the middle of the log of a
// killed store is damage, not a torn tail: Open refuses it, naming the log
// and the offset, and changes nothing; so does a read-only open. With
// Salvage, Open keeps the records before the damage, saves the logs as
// they were, and says what it dropped.
func TestLogDamageRefused(t *testing.T) {
	const n = 200
	dir, log := killedStore(t, n)
	raw, err := os.ReadFile(log)
	require.NoError(t, err)
	at := len(raw) / 2
	binary.LittleEndian.PutUint32(raw[at:], ^binary.LittleEndian.Uint32(raw[at:]))
	require.NoError(t, os.WriteFile(log, raw, 0o644))
	before := treeHash(t, dir)

	for _, ro := range []bool{false, true} {
		_, err = Open(dir, &Options{ReadOnly: ro, Salvage: ro})
		var d *LogDamage
		require.True(t, errors.As(err, &d), "read-only %v: %v", ro, err)
		require.ErrorIs(t, err, ErrCorrupt)
		require.Equal(t, log, d.File)
		require.Less(t, d.Offset, int64(at+4))
		require.Greater(t, d.Offset, int64(at-64<<10))
		require.Equal(t, int64(len(raw))-d.Offset, d.Bytes)
		require.Empty(t, d.SavedIn)
		require.Equal(t, before, treeHash(t, dir), "a refused open changed the directory")
	}

	s, err := Open(dir, &Options{Salvage: true})
	require.NoError(t, err)
	d := s.Salvaged()
	require.NotNil(t, d)
	require.Equal(t, log, d.File)
	require.NotEmpty(t, d.SavedIn)
	saved, err := os.ReadFile(filepath.Join(d.SavedIn, filepath.Base(log)))
	require.NoError(t, err)
	require.Equal(t, raw, saved, "the damaged log is saved as it was")
	seqs := faceSeqs(t, s)
	require.NotEmpty(t, seqs)
	require.Less(t, len(seqs), n)
	for i, seq := range seqs {
		require.Equal(t, uint64(i+1), seq, "the salvaged store keeps a prefix of the commits")
	}
	require.NoError(t, s.Close())

	s, err = Open(dir, nil)
	require.NoError(t, err, "a salvaged store opens without Salvage")
	require.Nil(t, s.Salvaged())
	require.Len(t, faceSeqs(t, s), len(seqs))
	require.NoError(t, s.Close())
}

// TestTornLogTail: a log cut inside its last record, as a crash during a
// write leaves it, opens without a word and keeps every commit before.
func TestTornLogTail(t *testing.T) {
	const n = 50
	dir, log := killedStore(t, n)
	info, err := os.Stat(log)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(log, info.Size()-100))
	s, err := Open(dir, nil)
	require.NoError(t, err)
	require.Nil(t, s.Salvaged())
	seqs := faceSeqs(t, s)
	require.Len(t, seqs, n-1)
	require.NoError(t, s.Close())
}
