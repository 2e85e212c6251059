package cluster

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/nats-io/nats.go/jetstream"
)

// maxArchiveEntries bounds the files and directories of one checkpoint: a
// store has a few thousand files even at hundreds of gigabytes.
const maxArchiveEntries = 1 << 20

// pack writes the files and directories under dir to w as a tar archive,
// in a fixed order, with paths relative to dir.
func pack(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
		if d.IsDir() {
			hdr.Name += "/"
			return tw.WriteHeader(hdr)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		// A checkpoint's files do not change; a short copy is an error.
		_, err = io.CopyN(tw, f, fi.Size())
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// sourceReader counts what it reads and keeps its source's error, so that
// a failed download is told from a malformed archive.
type sourceReader struct {
	r    io.Reader
	n    int64
	err  error
	hook func(int64)
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.hook != nil {
		s.hook(s.n)
	}
	if err != nil && err != io.EOF {
		s.err = err
		if errors.Is(err, jetstream.ErrDigestMismatch) {
			err = fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
		}
	}
	return n, err
}

// unpack extracts the tar archive read from src into dir, an empty
// directory, treating it as hostile: only regular files and directories,
// every path inside dir, no name twice, at most limit bytes of files and
// maxArchiveEntries entries. An archive breaking these is [ErrBadCheckpoint].
func unpack(src *sourceReader, dir string, limit int64) error {
	tr := tar.NewReader(src)
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return archiveError(src, err)
		}
		if entries >= maxArchiveEntries {
			return fmt.Errorf("%w: more than %d entries", ErrBadCheckpoint, maxArchiveEntries)
		}
		name, err := filepath.Localize(filepath.Clean(hdr.Name))
		if err != nil || !filepath.IsLocal(name) || name == "." {
			return fmt.Errorf("%w: entry %q is not a path inside the checkpoint", ErrBadCheckpoint, hdr.Name)
		}
		path := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			if hdr.Size < 0 || hdr.Size > limit {
				return fmt.Errorf("%w: entry %q of %d bytes exceeds the archive's %d left", ErrBadCheckpoint, hdr.Name, hdr.Size, limit)
			}
			limit -= hdr.Size
			err = writeEntry(src, path, tr, hdr.Size)
		default:
			return fmt.Errorf("%w: entry %q is neither a file nor a directory (type %q)", ErrBadCheckpoint, hdr.Name, hdr.Typeflag)
		}
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%w: entry %q clashes with an earlier one: %w", ErrBadCheckpoint, hdr.Name, err)
		}
		if err != nil {
			return err
		}
	}
}

// writeEntry writes a new file at path with the n bytes of r, synced.
func writeEntry(src *sourceReader, path string, r io.Reader, n int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, n); err != nil {
		f.Close()
		return archiveError(src, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// archiveError is a read error met while unpacking: the download's own
// failure if it had one, otherwise a malformed archive.
func archiveError(src *sourceReader, err error) error {
	if src.err != nil && !errors.Is(err, ErrBadCheckpoint) {
		return src.err
	}
	if errors.Is(err, ErrBadCheckpoint) {
		return err
	}
	return fmt.Errorf("%w: malformed archive: %w", ErrBadCheckpoint, err)
}
