package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
)

// treeHash maps every file under dir (by path relative to it) to its
// contents' hash, and every directory to "dir".
func treeHash(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = string(sum[:])
		return nil
	})
	require.NoError(t, err)
	return out
}

// copyTree copies the files of src into a new directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	require.NoError(t, err)
	return dst
}

// stoppedStore is a store with faces in tables both ingested and flushed,
// closed; it returns the directory and the faces.
func stoppedStore(t *testing.T) (string, map[string]*Face) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, nil)
	require.NoError(t, err)
	ingestFaces(t, s, 1, 50)
	b := s.NewBatch()
	b.PutFace("c", &Face{ID: "f-late", Seq: 1000, ImageID: "img", Vector: []float32{1, 0, 0, 0}})
	require.NoError(t, b.Commit(true))
	want := readFaces(t, s)
	require.NoError(t, s.Close())
	return dir, want
}

// fileKind names the kind of a file of a store, "" for one of no kind;
// manifest is the current manifest's name.
func fileKind(name, manifest string) string {
	if name == manifest {
		return "MANIFEST"
	}
	for _, k := range []struct{ kind, prefix, suffix string }{
		{"identity", identityFile, ""},
		{"LOCK", lockFile, ""},
		{"manifest marker", "marker.manifest.", ""},
		{"format marker", "marker.format-version.", ""},
		{"old MANIFEST", "MANIFEST-", ""},
		{"OPTIONS", "OPTIONS-", ""},
		{"WAL", "", ".log"},
		{"table", "", ".sst"},
	} {
		if strings.HasPrefix(name, k.prefix) && strings.HasSuffix(name, k.suffix) {
			return k.kind
		}
	}
	return ""
}

// TestDamagedStoreOpen: with any one file of a stopped store removed,
// truncated or zeroed, or a byte of a table's first data block flipped,
// and with its LOCK file there or not, Open either refuses, naming the
// problem and leaving every byte of the directory as it was, or opens the
// store with every face. Losing the manifest or its marker, or damaging
// the identity file, must be refused: without the identity file's check
// Pebble would take a lost marker for a new database and delete every
// table. A flipped data block shows only when read: the caller reads every
// record before [Store.OpenWritable], as the engine's load does. A
// manifest cut short opens the state before the cut, which cannot be told
// from a crash while its last edit was written; then no table is lost:
// those it does not name are kept under salvaged/.
func TestDamagedStoreOpen(t *testing.T) {
	fixture, want := stoppedStore(t)
	names, err := os.ReadDir(fixture)
	require.NoError(t, err)
	var manifest string
	for _, e := range names {
		if m, ok := strings.CutPrefix(e.Name(), "marker.manifest."); ok {
			manifest = m[strings.IndexByte(m, '.')+1:]
		}
	}
	kinds := map[string]bool{}
	damages := []struct {
		name string
		do   func(path string, size int64) error
	}{
		{"removed", func(path string, _ int64) error { return os.Remove(path) }},
		{"truncated", func(path string, size int64) error { return os.Truncate(path, size/2) }},
		{"zeroed", func(path string, size int64) error { return os.WriteFile(path, make([]byte, size), 0o644) }},
		{"flipped", func(path string, _ int64) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b[8] ^= 0xff // inside the first data block, which starts the table
			return os.WriteFile(path, b, 0o644)
		}},
	}
	mustFail := map[string]bool{
		"manifest marker removed": true,
		"MANIFEST removed":        true, "MANIFEST zeroed": true,
		"identity truncated": true, "identity zeroed": true,
		"table removed": true, "table truncated": true, "table zeroed": true, "table flipped": true,
	}
	for _, e := range names {
		kind := fileKind(e.Name(), manifest)
		if kind == "" || e.IsDir() {
			continue
		}
		kinds[kind] = true
		info, err := e.Info()
		require.NoError(t, err)
		for _, dmg := range damages {
			if dmg.name != "removed" && info.Size() == 0 || dmg.name == "flipped" && kind != "table" {
				continue // nothing to truncate or zero; only a table has data blocks
			}
			name := kind + " " + dmg.name
			for _, lock := range []string{"", " and LOCK removed"} {
				if lock != "" && kind == "LOCK" {
					continue
				}
				t.Run(e.Name()+" "+dmg.name+lock, func(t *testing.T) {
					dir := copyTree(t, fixture)
					require.NoError(t, dmg.do(filepath.Join(dir, e.Name()), info.Size()))
					if lock != "" {
						require.NoError(t, os.Remove(filepath.Join(dir, lockFile)))
					}
					openDamaged(t, dir, name, mustFail[name], want)
				})
			}
		}
	}
	for _, kind := range []string{"identity", "manifest marker", "format marker", "MANIFEST", "OPTIONS", "WAL", "table", "LOCK"} {
		require.True(t, kinds[kind], "the fixture has no %s file", kind)
	}
}

// readAll reads every record of s.
func readAll(s *Store) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		_ = it.Value()
	}
	return errors.Join(it.Error(), it.Close())
}

// openDamaged opens the damaged store in dir as the engine does: read-only
// first, every record read, then writable; see TestDamagedStoreOpen.
func openDamaged(t *testing.T, dir, name string, mustFail bool, want map[string]*Face) {
	before := treeHash(t, dir)
	refused := func(err error) {
		require.True(t, errors.Is(err, ErrDamaged) || errors.Is(err, ErrCorrupt) || pebble.IsCorruptionError(err), "%v", err)
		require.Equal(t, before, treeHash(t, dir), "a refused open changed the directory (%v)", err)
		t.Logf("refused: %v", err)
	}
	s, err := Open(dir, &Options{WritableLater: true})
	if err != nil {
		refused(err)
		return
	}
	got := map[string]*Face{}
	for f, ferr := range s.Faces("c") {
		if err = ferr; err != nil {
			break
		}
		got[f.ID] = f
	}
	if err == nil {
		err = readAll(s)
	}
	if err != nil {
		require.NoError(t, s.Close())
		refused(err)
		return
	}
	require.NoError(t, s.OpenWritable())
	// Closed before the directory is looked at: Pebble deletes obsolete
	// files in the background.
	require.NoError(t, s.Close())
	require.False(t, mustFail, "opened a store whose %s", name)
	if name != "MANIFEST truncated" {
		require.Equal(t, want, got)
		return
	}
	// The state before the cut: every table of the directory is still
	// there or kept aside.
	require.NotEqual(t, want, got)
	after := treeHash(t, dir)
	for path, sum := range before {
		if !strings.HasSuffix(path, ".sst") || after[path] == sum {
			continue
		}
		kept := false
		for p, s := range after {
			kept = kept || strings.HasPrefix(p, "salvaged"+string(filepath.Separator)) && filepath.Base(p) == path && s == sum
		}
		require.True(t, kept, "table %s was deleted", path)
	}
}

// TestAdoptUnidentifiedStore: a store without an identity file, as earlier
// releases left them, opens with its records and is given one, which the
// next open keeps; a Pebble database of someone else's records is refused
// and left as it was.
func TestAdoptUnidentifiedStore(t *testing.T) {
	dir, want := stoppedStore(t)
	require.NoError(t, os.Remove(filepath.Join(dir, identityFile)))
	s, err := Open(dir, &Options{ReadOnly: true})
	require.NoError(t, err)
	require.Empty(t, s.ID())
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, identityFile))
	require.ErrorIs(t, err, os.ErrNotExist, "a read-only open wrote the identity file")

	s, err = Open(dir, nil)
	require.NoError(t, err)
	id := s.ID()
	require.Len(t, id, 32)
	require.Equal(t, want, readFaces(t, s))
	require.NoError(t, s.Close())
	s, err = Open(dir, nil)
	require.NoError(t, err)
	require.Equal(t, id, s.ID())
	require.NoError(t, s.Close())

	foreign := t.TempDir()
	db, err := pebble.Open(foreign, &pebble.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Set([]byte("someone-else"), []byte("x"), pebble.Sync))
	require.NoError(t, db.Close())
	before := treeHash(t, foreign)
	_, err = Open(foreign, nil)
	require.ErrorIs(t, err, ErrDamaged)
	require.Equal(t, before, treeHash(t, foreign))
}

// TestOpenFreshDirectory: a missing or empty directory, or one holding
// only files of no store, gets a new store; a read-only open of one is
// refused with ErrNoStore and creates nothing.
func TestOpenFreshDirectory(t *testing.T) {
	for name, files := range map[string][]string{"missing": nil, "empty": {}, "unrelated files": {"notes.txt", "LOCK"}} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if files != nil {
				require.NoError(t, os.MkdirAll(dir, 0o755))
			}
			for _, f := range files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
			}
			_, err := Open(dir, &Options{ReadOnly: true})
			require.ErrorIs(t, err, ErrNoStore)
			entries, _ := os.ReadDir(dir)
			require.Len(t, entries, len(files))

			s, err := Open(dir, nil)
			require.NoError(t, err)
			require.Len(t, s.ID(), 32)
			require.NoError(t, s.Close())
			entries, err = os.ReadDir(dir)
			require.NoError(t, err)
			require.True(t, slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == identityFile }))
		})
	}
}

// TestOpenWritableLaterLocks: from a deferred Open to Close the directory
// stays locked against every other Open, read-only or not, with or without
// its LOCK file; a missing LOCK is created only by the writable open.
func TestOpenWritableLaterLocks(t *testing.T) {
	for _, lock := range []bool{true, false} {
		t.Run(fmt.Sprintf("LOCK there %t", lock), func(t *testing.T) {
			dir, want := stoppedStore(t)
			if !lock {
				require.NoError(t, os.Remove(filepath.Join(dir, lockFile)))
			}
			lockThere := func() bool {
				_, err := os.Stat(filepath.Join(dir, lockFile))
				return err == nil
			}
			locked := func() {
				for _, ro := range []bool{true, false} {
					_, err := Open(dir, &Options{ReadOnly: ro})
					require.ErrorIs(t, err, ErrLocked)
				}
			}
			s, err := Open(dir, &Options{WritableLater: true})
			require.NoError(t, err)
			require.Equal(t, lock, lockThere())
			locked()
			require.Equal(t, want, readFaces(t, s))
			require.NoError(t, s.OpenWritable())
			require.True(t, lockThere())
			locked()
			b := s.NewBatch()
			b.PutFace("c", &Face{ID: "f-after", Seq: 2000, ImageID: "img", Vector: []float32{0, 1, 0, 0}})
			require.NoError(t, b.Commit(true))
			require.NoError(t, s.OpenWritable(), "a second OpenWritable does nothing")
			require.NoError(t, s.Close())

			s, err = Open(dir, &Options{ReadOnly: true})
			require.NoError(t, err)
			require.Len(t, readFaces(t, s), len(want)+1)
			require.NoError(t, s.Close())
		})
	}
}
