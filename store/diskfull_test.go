package store

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"
)

// spaceFS reports the free space the test sets.
type spaceFS struct {
	vfs.FS
	avail atomic.Int64
}

func (fs *spaceFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	a := uint64(fs.avail.Load())
	return vfs.DiskUsage{AvailBytes: a, TotalBytes: 100 << 30, UsedBytes: 100<<30 - a}, nil
}

// putFace commits one face of sequence seq with a 128-float vector.
func putFace(s *Store, seq uint64) error {
	b := s.NewBatch()
	b.PutFace("c", &Face{ID: fmt.Sprint("f", seq), Seq: seq, ImageID: "img", Vector: make([]float32, 128)})
	return b.Commit(true)
}

// TestFreeSpaceFloor: below the floor every write, batch or ingest, is
// refused with ErrDiskFull and writes nothing; reads go on; writes resume
// by themselves once space is back; and a store reopened below the floor
// opens, serves reads and refuses writes.
func TestFreeSpaceFloor(t *testing.T) {
	fs := &spaceFS{FS: vfs.NewMem()}
	fs.avail.Store(10 << 30)
	opts := &Options{FS: fs, MinFreeBytes: 1 << 30}
	s, err := Open("db", opts)
	require.NoError(t, err)
	require.NoError(t, putFace(s, 1))

	fs.avail.Store(1<<30 + 100) // above the floor, but not by a face
	require.ErrorIs(t, putFace(s, 2), ErrDiskFull)
	b := s.NewIngestBatch()
	b.PutFace("c", &Face{ID: "f3", Seq: 3, ImageID: "img", Vector: make([]float32, 128)})
	require.ErrorIs(t, b.Commit(true), ErrDiskFull)
	require.Equal(t, []uint64{1}, faceSeqs(t, s), "reads go on, and the refused writes wrote nothing")

	fs.avail.Store(2 << 30)
	require.NoError(t, putFace(s, 2))
	require.NoError(t, s.Close())

	fs.avail.Store(100 << 20)
	s, err = Open("db", opts)
	require.NoError(t, err, "a store below the floor still opens")
	require.Equal(t, []uint64{1, 2}, faceSeqs(t, s))
	require.ErrorIs(t, putFace(s, 3), ErrDiskFull)
	require.NoError(t, s.Close())

	s, err = Open("db", &Options{FS: fs, MinFreeBytes: -1})
	require.NoError(t, err)
	require.NoError(t, putFace(s, 3), "a negative floor turns the check off")
	require.NoError(t, s.Close())
}

func TestDefaultFloor(t *testing.T) {
	for _, tc := range []struct{ total, want uint64 }{
		{1 << 30, 256 << 20},         // 5% would be 51 MiB
		{100 << 30, 5 << 30},         // 5%
		{10 << 40, 20 << 30},         // 5% would be 512 GiB
		{1 << 63, 20 << 30},          // no overflow
		{0, 256 << 20},               // unknown size
		{6 << 30, 6 << 30 / 100 * 5}, // 5% of 6 GiB
	} {
		require.Equal(t, int64(tc.want), defaultFloor(tc.total), "total %d", tc.total)
	}
}

// TestFlushFailsForLackOfSpace: when Pebble's flush fails with ENOSPC
// (injected with errorfs; the free space the file system reports is
// plenty), the process goes on, writes are refused with ErrDiskFull, reads
// go on, and once the flush succeeds again writes resume by themselves;
// all of it whatever the floor, even with the floor off.
func TestFlushFailsForLackOfSpace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		minFree int64
	}{{"default floor", 0}, {"floor off", -1}} {
		t.Run(tc.name, func(t *testing.T) { flushFailsForLackOfSpace(t, tc.minFree) })
	}
}

func flushFailsForLackOfSpace(t *testing.T, minFree int64) {
	var full atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") {
			return syscall.ENOSPC
		}
		return nil
	}))
	var logged atomic.Int32
	s, err := Open("db", &Options{FS: fs, Logger: countLogger{&logged}, MinFreeBytes: minFree})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, putFace(s, 1))

	full.Store(true)
	_, err = s.db.AsyncFlush()
	require.NoError(t, err)
	want := []uint64{1}
	seq := uint64(2)
	require.Eventually(t, func() bool {
		err := putFace(s, seq)
		if err == nil {
			want = append(want, seq)
			seq++
		}
		return errors.Is(err, ErrDiskFull)
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, want, faceSeqs(t, s))

	full.Store(false)
	require.Eventually(t, func() bool { return putFace(s, seq) == nil }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, append(want, seq), faceSeqs(t, s))
	require.Equal(t, int32(1), logged.Load(), "the failing flush is logged once, not at every retry")
}

type countLogger struct{ n *atomic.Int32 }

func (countLogger) Infof(string, ...any)         {}
func (l countLogger) Errorf(string, ...any)      { l.n.Add(1) }
func (countLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// TestFullTmpfs fills a small tmpfs (as root only): writes are refused
// before the file system is full, the store stays open and readable, it
// reopens on the nearly full disk, and writes resume once space is freed;
// on a disk with no space at all it opens read-only instead of hanging.
func TestFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	dir := filepath.Join(mnt, "data")
	opts := &Options{MinFreeBytes: 8 << 20}
	var s *Store
	t.Cleanup(func() { // before the unmount
		if s != nil {
			s.Close()
		}
	})
	// fill leaves about free bytes free on the tmpfs.
	fill := func(name string, free int) {
		u, err := vfs.Default.GetDiskUsage(mnt)
		require.NoError(t, err)
		require.GreaterOrEqual(t, int(u.AvailBytes), free)
		require.NoError(t, os.WriteFile(filepath.Join(mnt, name), make([]byte, int(u.AvailBytes)-free), 0o644))
	}
	s, err := Open(dir, opts)
	require.NoError(t, err)
	fill("filler", 12<<20) // the floor is reached in a few hundred commits

	var seq uint64
	for seq = 1; seq <= 50000; seq++ { // 12 MiB hold about 20000
		err = putFace(s, seq)
		if err != nil {
			break
		}
	}
	require.ErrorIs(t, err, ErrDiskFull, "after %d faces", seq)
	written := seq - 1
	require.Len(t, faceSeqs(t, s), int(written))
	require.NoError(t, s.Close())
	s = nil

	fill("filler2", 4<<20) // Close flushed the log into a smaller table
	s, err = Open(dir, opts)
	require.NoError(t, err, "the store opens on the nearly full disk")
	require.Len(t, faceSeqs(t, s), int(written))
	require.ErrorIs(t, putFace(s, seq), ErrDiskFull)
	require.NoError(t, os.Remove(filepath.Join(mnt, "filler")))
	require.NoError(t, putFace(s, seq), "writes resume once space is freed")

	// No space at all, and a log to replay: Pebble's writable open would
	// retry the log's flush for ever, so the store opens read-only.
	fill("filler3", 0)
	s.Close() // its flush fails for lack of space; the log keeps every write
	s = nil
	s, err = Open(dir, opts)
	require.NoError(t, err, "the store opens on a full disk")
	require.Len(t, faceSeqs(t, s), int(seq))
	require.ErrorIs(t, putFace(s, seq+1), ErrDiskFull)
	require.NoError(t, s.Close())
	s = nil
	require.NoError(t, os.Remove(filepath.Join(mnt, "filler3")))
	s, err = Open(dir, opts)
	require.NoError(t, err)
	require.NoError(t, putFace(s, seq+1), "a reopen with space back takes writes")
	require.Len(t, faceSeqs(t, s), int(seq+1))
	require.NoError(t, s.Close())
	s = nil
}
