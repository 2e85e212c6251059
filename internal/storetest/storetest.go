// Package storetest holds test helpers that read a store's Pebble database
// directly, beneath the store package, for the tests of the store and of
// the engine above it.
package storetest

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// Dump returns every key and value of the closed store in dir, opened
// read-only, so that a test can tell whether anything changed.
func Dump(t testing.TB, dir string) map[string]string {
	t.Helper()
	return DumpFS(t, vfs.Default, dir)
}

// DumpFS is [Dump] of the store in dir on fs.
func DumpFS(t testing.TB, fs vfs.FS, dir string) map[string]string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, ReadOnly: true, Logger: quiet{}})
	require.NoError(t, err)
	defer db.Close()
	it, err := db.NewIter(nil)
	require.NoError(t, err)
	out := map[string]string{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	require.NoError(t, it.Close())
	return out
}

// quiet discards Pebble's log lines (a log replayed on open, say).
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
