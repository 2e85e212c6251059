package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// identityFile is facesearch's own mark on a store directory, beside
// Pebble's files. Open reads it before Pebble sees the directory: with it,
// a directory whose Pebble files are damaged is refused rather than taken
// for an empty one.
const identityFile = "FACESEARCH"

// identityFormat is the version of the identity file this release writes
// and the highest it reads.
const identityFormat = 1

// identityLimit bounds what Open reads of the file: it is a few dozen bytes.
const identityLimit = 4 << 10

type identity struct {
	Store  string `json:"store"`  // 32 hex digits, random at creation
	Format int    `json:"format"` // identityFormat
}

// dirState is what a data directory holds before Open touches it.
type dirState int

const (
	// dirFresh: missing, empty, or holding nothing of a store, so Open
	// creates one.
	dirFresh dirState = iota
	// dirIdentified: the identity file is there and valid.
	dirIdentified
	// dirUnidentified: Pebble's files without the identity file, as every
	// store of earlier releases is. Open adopts it only once Pebble has
	// opened it read-only (see [Open]).
	dirUnidentified
)

// inspectDir classifies dir without changing it. A damaged identity file,
// or one of a later release, is an error wrapping [ErrDamaged].
func inspectDir(fs vfs.FS, dir string) (dirState, identity, error) {
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dirFresh, identity{}, nil
	}
	if err != nil {
		return 0, identity{}, fmt.Errorf("store: list %s: %w", dir, err)
	}
	state := dirFresh
	for _, name := range names {
		if name == identityFile {
			id, err := readIdentity(fs, fs.PathJoin(dir, name))
			return dirIdentified, id, err
		}
		if isPebbleFile(name) {
			state = dirUnidentified
		}
	}
	return state, identity{}, nil
}

// isPebbleFile reports whether name is one of the files that make up a
// Pebble database. LOCK is not among them: Pebble makes it before anything
// else, so alone it marks only an open that never got further.
func isPebbleFile(name string) bool {
	switch {
	case name == "CURRENT",
		strings.HasPrefix(name, "MANIFEST-"),
		strings.HasPrefix(name, "OPTIONS-"),
		strings.HasPrefix(name, "marker."),
		strings.HasSuffix(name, ".log"),
		strings.HasSuffix(name, ".sst"),
		strings.HasSuffix(name, ".blob"):
		return true
	}
	return false
}

func readIdentity(fs vfs.FS, path string) (identity, error) {
	f, err := fs.Open(path)
	if err != nil {
		return identity{}, fmt.Errorf("store: read %s: %w", path, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, identityLimit+1))
	if err != nil {
		return identity{}, fmt.Errorf("store: read %s: %w", path, err)
	}
	var id identity
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if len(raw) > identityLimit || dec.Decode(&id) != nil || dec.More() {
		return identity{}, fmt.Errorf("%w: the identity file %s is damaged (%d bytes that do not decode); "+
			"if the rest of the store is intact, removing it lets the next open check the store and write it anew",
			ErrDamaged, path, len(raw))
	}
	if id.Format > identityFormat {
		return identity{}, fmt.Errorf("%w: %s says format %d, and this release reads up to %d: open it with a later release",
			ErrDamaged, path, id.Format, identityFormat)
	}
	if b, err := hex.DecodeString(id.Store); err != nil || len(b) != 16 || id.Format < 1 {
		return identity{}, fmt.Errorf("%w: the identity file %s is damaged (store %q, format %d)", ErrDamaged, path, id.Store, id.Format)
	}
	return id, nil
}

// writeIdentity gives dir a new identity file atomically: it is written
// beside, synced, renamed into place, and the directory synced.
func writeIdentity(fs vfs.FS, dir string) (identity, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return identity{}, err
	}
	id := identity{Store: hex.EncodeToString(b), Format: identityFormat}
	raw, err := json.Marshal(id)
	if err != nil {
		return identity{}, err
	}
	path := fs.PathJoin(dir, identityFile)
	tmp := path + ".tmp"
	err = func() error {
		f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		if _, err := f.Write(append(raw, '\n')); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := fs.Rename(tmp, path); err != nil {
			return err
		}
		return syncDir(fs, dir)
	}()
	if err != nil {
		return identity{}, fmt.Errorf("store: write %s: %w", path, err)
	}
	return id, nil
}
