package engine_test

import (
	"crypto/sha256"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
)

// dirSums maps every file under dir to its contents' hash.
func dirSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = sha256.Sum256(b)
		return err
	}))
	return out
}

// TestOpenRefusesDamagedBlock: a store whose table is damaged inside a data
// block, which only reading the block finds, is refused by Open with the
// directory left byte for byte as it was: the load reads every record before
// the writable open starts a new log.
func TestOpenRefusesDamagedBlock(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	createCollection(t, e, "c", "")
	r := rand.New(rand.NewPCG(22, 7))
	// Enough face records to fill the table's first data block, so the
	// records Open's checks read (collection metadata, the secret) are in
	// other blocks, and only the load reads the damaged one.
	for range 6 {
		vecs := make([][]float32, 100)
		for i := range vecs {
			vecs[i] = randomUnit(r, 8)
		}
		indexFaces(t, e, "c", vecs...)
	}
	require.NoError(t, e.Close())

	tables, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	require.NoError(t, err)
	require.NotEmpty(t, tables)
	for _, path := range tables {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		b[8] ^= 0xff // inside the first data block, which starts the table
		require.NoError(t, os.WriteFile(path, b, 0o644))
	}
	before := dirSums(t, dir)
	_, err = engine.Open(dir, nil)
	require.ErrorIs(t, err, engine.ErrCorrupt)
	require.Equal(t, before, dirSums(t, dir), "a refused open changed the directory")
}
