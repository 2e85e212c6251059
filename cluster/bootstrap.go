package cluster

import (
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

	"github.com/nats-io/nats.go/jetstream"
)

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
	if !errors.Is(err, errDownloadStalled) {
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
