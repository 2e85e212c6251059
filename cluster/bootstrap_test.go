package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// entry is one tar entry of a test archive.
type entry struct {
	name string
	typ  byte
	size int64 // declared; the body is size bytes unless body is set
	body []byte
	link string
}

func archiveOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		body := e.body
		if body == nil && e.typ == tar.TypeReg {
			body = bytes.Repeat([]byte("d"), int(e.size))
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Size: int64(len(body)), Mode: 0o644, Linkname: e.link}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		_, err := tw.Write(body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return b.Bytes()
}

// unpackInto unpacks data into the directory "x" of a new parent and
// returns the parent.
func unpackInto(t testing.TB, data []byte, limit int64) (string, error) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "x")
	require.NoError(t, os.Mkdir(dir, 0o755))
	return parent, unpack(&sourceReader{r: bytes.NewReader(data)}, dir, limit)
}

// requireContained fails unless the parent holds only x, and x only regular
// files and directories of at most limit bytes in all.
func requireContained(t testing.TB, parent string, limit int64) {
	t.Helper()
	names, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, names, 1, "nothing is written beside the target")
	var total int64
	require.NoError(t, filepath.WalkDir(filepath.Join(parent, "x"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		require.True(t, d.IsDir() || d.Type().IsRegular(), "%s is %v", path, d.Type())
		if info, err := d.Info(); err == nil && !d.IsDir() {
			total += info.Size()
		}
		return nil
	}))
	require.LessOrEqual(t, total, limit)
}

func TestUnpackRejectsHostileArchives(t *testing.T) {
	good := []entry{{name: "CURRENT", typ: tar.TypeReg, size: 16}, {name: "sub/", typ: tar.TypeDir},
		{name: "sub/000001.sst", typ: tar.TypeReg, size: 100}}
	goodData := archiveOf(t, good...)
	cases := []struct {
		name  string
		data  []byte
		limit int64
		ok    bool
	}{
		{"a store's files", goodData, 116, true},
		{"parent directory", archiveOf(t, entry{name: "../evil", typ: tar.TypeReg, size: 1}), 100, false},
		{"parent through a subdirectory", archiveOf(t, entry{name: "a/../../evil", typ: tar.TypeReg, size: 1}), 100, false},
		{"absolute path", archiveOf(t, entry{name: "/tmp/evil", typ: tar.TypeReg, size: 1}), 100, false},
		{"the target itself", archiveOf(t, entry{name: "./", typ: tar.TypeDir}), 100, false},
		{"symbolic link", archiveOf(t, entry{name: "link", typ: tar.TypeSymlink, link: "/etc"}), 100, false},
		{"symbolic link then a file through it", archiveOf(t, entry{name: "l", typ: tar.TypeSymlink, link: ".."},
			entry{name: "l/evil", typ: tar.TypeReg, size: 1}), 100, false},
		{"hard link", archiveOf(t, entry{name: "CURRENT", typ: tar.TypeReg, size: 1},
			entry{name: "h", typ: tar.TypeLink, link: "CURRENT"}), 100, false},
		{"device", archiveOf(t, entry{name: "dev", typ: tar.TypeChar}), 100, false},
		{"fifo", archiveOf(t, entry{name: "fifo", typ: tar.TypeFifo}), 100, false},
		{"files beyond the limit", goodData, 115, false},
		{"one file twice", archiveOf(t, entry{name: "a", typ: tar.TypeReg, size: 1}, entry{name: "a", typ: tar.TypeReg, size: 1}), 100, false},
		{"a file over a directory", archiveOf(t, entry{name: "d/", typ: tar.TypeDir}, entry{name: "d", typ: tar.TypeReg, size: 1}), 100, false},
		{"a directory over a file", archiveOf(t, entry{name: "d", typ: tar.TypeReg, size: 1}, entry{name: "d/", typ: tar.TypeDir}), 100, false},
		{"a file under a file", archiveOf(t, entry{name: "d", typ: tar.TypeReg, size: 1}, entry{name: "d/f", typ: tar.TypeReg, size: 1}), 100, false},
		// Cut between entries, only the digest tells; within one, unpack does.
		{"truncated", goodData[:2100], 116, false},
		{"not a tar", bytes.Repeat([]byte("garbage!"), 200), 1600, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, err := unpackInto(t, tc.data, tc.limit)
			if tc.ok {
				require.NoError(t, err)
				got, err := os.ReadFile(filepath.Join(parent, "x", "sub", "000001.sst"))
				require.NoError(t, err)
				require.Len(t, got, 100)
			} else {
				require.ErrorIs(t, err, ErrBadCheckpoint)
			}
			requireContained(t, parent, tc.limit)
		})
	}
}

// Whatever the bytes, unpack does not panic and writes only regular files
// and directories inside its target, within the limit.
func FuzzUnpack(f *testing.F) {
	f.Add(archiveOf(f, entry{name: "CURRENT", typ: tar.TypeReg, size: 16}, entry{name: "d/", typ: tar.TypeDir},
		entry{name: "d/f", typ: tar.TypeReg, size: 3}))
	f.Add(archiveOf(f, entry{name: "../x", typ: tar.TypeReg, size: 1}))
	f.Add(archiveOf(f, entry{name: "l", typ: tar.TypeSymlink, link: "/"}, entry{name: "l/x", typ: tar.TypeReg, size: 1}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 12
		parent, err := unpackInto(t, data, limit)
		if err != nil {
			require.ErrorIs(t, err, ErrBadCheckpoint)
		}
		requireContained(t, parent, limit)
	})
}

// A bootstrap interrupted while downloading leaves the old store as it was;
// one killed later leaves a partial download, or no store at all beside
// the replaced one, and the next bootstrap cleans up and restores.
func TestInterruptedBootstrapBootstrapsAgain(t *testing.T) {
	c := sharedCluster(t)
	cps := openCheckpoints(t, openLogs(t, c, runLogOptions(t)), nil)
	cp := cps[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmds := workload(t, 6, 120)
	src := storeAt(t, cmds, 120)
	good := takeFrom(t, cp, src)

	// The old store, behind: a bootstrap cancelled mid-download keeps it.
	dst := storeAt(t, cmds, 40)
	before := dump(t, dst)
	bctx, stop := context.WithCancel(ctx)
	cp.fetched = func(n int64) {
		if n > 0 {
			stop()
		}
	}
	_, err := cp.Bootstrap(bctx, dst)
	cp.fetched = nil
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, before, dump(t, dst))
	require.EqualValues(t, 40, appliedIn(t, dst))
	leftovers, err := filepath.Glob(filepath.Join(filepath.Dir(dst), ".store.*"))
	require.NoError(t, err)
	require.Empty(t, leftovers)

	// A kill between the renames: the old store aside, a partial download
	// beside it, no store.
	parent := filepath.Dir(dst)
	require.NoError(t, os.Rename(dst, filepath.Join(parent, ".store.replaced-1")))
	partial := filepath.Join(parent, ".store.bootstrap-2")
	// Another store's leftovers are not this one's.
	require.NoError(t, os.MkdirAll(filepath.Join(parent, ".store2.bootstrap-3"), 0o755))
	require.NoError(t, os.MkdirAll(partial, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(partial, "CURRENT"), []byte("MANIFEST-0"), 0o644))
	got, err := cps[1].Bootstrap(ctx, dst)
	require.NoError(t, err)
	require.Equal(t, good.Name, got.Name)
	requireSameStore(t, src, dst)
	names, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, names, 2, "only the store, and the other store's leftover, are left")
	require.DirExists(t, filepath.Join(parent, ".store2.bootstrap-3"))
}
