package cluster

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go/jetstream"
)

// maxArchiveEntries bounds the files and directories of one checkpoint: a
// store has a few thousand files even at hundreds of gigabytes.
const maxArchiveEntries = 1 << 20

// Bootstrap replaces the store in dir (missing, or behind the trimmed log)
// with the newest checkpoint that passes verification, and returns it; the
// node then follows the log from its Seq. The engine on dir must be closed.
//
// The checkpoint is downloaded and unpacked into a new directory beside dir,
// its SHA-256 compared with the one published when it was verified and the
// applied sequence inside with the published one; only then is it renamed
// to dir. A kill at any point leaves either the old store in dir or no dir
// at all (a new node, which bootstraps again), never a partial one; the
// leftovers beside dir are removed by the next Bootstrap. A checkpoint
// failing verification ([ErrBadCheckpoint]) is skipped for the next older
// one; with none left Bootstrap fails with [ErrNoCheckpoint].
func (c *Checkpoints) Bootstrap(ctx context.Context, dir string) (Checkpoint, error) {
	dir = filepath.Clean(dir)
	if err := removeLeftovers(dir); err != nil {
		return Checkpoint{}, fmt.Errorf("cluster: bootstrap %s: %w", dir, err)
	}
	list, err := c.List(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	var bad []error
	for _, cp := range list {
		var tmp string
		err := again(ctx, func() (err error) {
			tmp, err = c.fetch(ctx, cp, dir)
			return err
		})
		if errors.Is(err, ErrBadCheckpoint) || errors.Is(err, jetstream.ErrObjectNotFound) || c.gone(ctx, cp, err) {
			bad = append(bad, err) // corrupt, or deleted since listed: try an older one
			continue
		}
		if err == nil {
			err = swap(tmp, dir)
		}
		if err != nil {
			os.RemoveAll(tmp)
			return Checkpoint{}, fmt.Errorf("cluster: bootstrap %s from %s: %w", dir, cp.Name, err)
		}
		return cp, nil
	}
	err = fmt.Errorf("%w in bucket %s for %s (%d verified)", ErrNoCheckpoint, c.opts.Bucket, dir, len(list))
	return Checkpoint{}, errors.Join(append([]error{err}, bad...)...)
}

// gone reports whether err is a download of cp that stalled because cp
// was deleted meanwhile (by a trim after two newer checkpoints).
func (c *Checkpoints) gone(ctx context.Context, cp Checkpoint, err error) bool {
	if !errors.Is(err, errStalled) {
		return false
	}
	_, err = c.obs.GetInfo(ctx, cp.Name)
	return errors.Is(err, jetstream.ErrObjectNotFound)
}

// Rebootstrap is [Checkpoints.Bootstrap] in the form of a node's hook for
// a log that cannot continue its store: the gap is the reader's, and the
// checkpoint's sequence is in the store it leaves in dir.
func (c *Checkpoints) Rebootstrap(ctx context.Context, dir string, gap *GapError) error {
	_, err := c.Bootstrap(ctx, dir)
	if err != nil && gap != nil {
		err = fmt.Errorf("%w (after %v)", err, gap)
	}
	return err
}

// leftover names a directory beside dir that only Bootstrap makes.
func leftover(dir, kind string) string {
	return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+"."+kind+"-")
}

// removeLeftovers removes what an interrupted Bootstrap of dir left beside
// it: a partial download, or the store it was replacing.
func removeLeftovers(dir string) error {
	entries, err := os.ReadDir(filepath.Dir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		for _, kind := range []string{"bootstrap", "replaced"} {
			if strings.HasPrefix(e.Name(), filepath.Base(leftover(dir, kind))) {
				if err := os.RemoveAll(filepath.Join(filepath.Dir(dir), e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fetch downloads and unpacks cp into a new directory beside dir, and
// verifies it there.
func (c *Checkpoints) fetch(ctx context.Context, cp Checkpoint, dir string) (_ string, err error) {
	if cp.Size > uint64(c.opts.MaxSize) {
		return "", fmt.Errorf("%w: %s has %d bytes, above the limit of %d", ErrBadCheckpoint, cp.Name, cp.Size, c.opts.MaxSize)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	base := leftover(dir, "bootstrap")
	tmp, err := os.MkdirTemp(filepath.Dir(base), filepath.Base(base))
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	res, err := c.openObject(ctx, cp.Name)
	if err != nil {
		return "", err
	}
	defer res.Close()
	h := sha256.New()
	src := &sourceReader{r: io.TeeReader(io.LimitReader(res, int64(cp.Size)+1), h), hook: c.fetched}
	err = unpack(src, tmp, int64(cp.Size))
	if err == nil {
		// The tar's padding after its end, and anything beyond, is in the
		// digest.
		_, err = io.Copy(io.Discard, src)
	}
	if src.n < int64(cp.Size) && (err == nil || errors.Is(err, ErrBadCheckpoint)) {
		return "", fmt.Errorf("%w: %w: %s: %d of its %d bytes (%v)", ErrBadCheckpoint, errShort, cp.Name, src.n, cp.Size, err)
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", cp.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != cp.SHA256 || src.n != int64(cp.Size) {
		return "", fmt.Errorf("%w: %s downloaded as %d bytes with SHA-256 %s, verified as %d with %s",
			ErrBadCheckpoint, cp.Name, src.n, got, cp.Size, cp.SHA256)
	}
	seq, err := readApplied(tmp)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: %s does not open as a store: %w", ErrBadCheckpoint, cp.Name, err)
	case seq != cp.Seq:
		return "", fmt.Errorf("%w: %s holds sequence %d, published as %d", ErrBadCheckpoint, cp.Name, seq, cp.Seq)
	}
	return tmp, syncTree(tmp)
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

// syncTree fsyncs every directory under dir, so that a rename after it
// publishes complete contents.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(path)
	})
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// swap puts the verified directory tmp in dir's place: the old store, if
// any, is renamed aside first, so a kill between the renames leaves no dir
// (a node that bootstraps again) rather than a mix of the two.
func swap(tmp, dir string) error {
	var old string
	switch _, err := os.Lstat(dir); {
	case err == nil:
		var suffix [6]byte
		_, _ = rand.Read(suffix[:])
		old = leftover(dir, "replaced") + hex.EncodeToString(suffix[:])
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
