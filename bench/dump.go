package bench

import (
	"bufio"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"

	"github.com/facesearch/facesearch/internal/npy"
)

// Dump file names in Config.DumpDir, which bench/faiss_compare.py reads.
const (
	DumpUsers  = "users.npy"
	DumpProbes = "probes.npy"
)

// dump writes the user vectors (the copy of the user matrix, in user
// order: row i is user i's normalized mean face) and every probe, in
// the order the phases use them, as float32 .npy arrays.
func (h *harness) dump() error {
	dir := h.cfg.DumpDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: dump: %w", err)
	}
	h.logf("writing %s and %s to %s", DumpUsers, DumpProbes, dir)
	users := func(yield func([]float32) bool) {
		for _, row := range h.copy.All() {
			if !yield(row) {
				return
			}
		}
	}
	if err := writeNpy(filepath.Join(dir, DumpUsers), h.copy.Len(), h.cfg.Dim, users); err != nil {
		return err
	}
	return writeNpy(filepath.Join(dir, DumpProbes), len(h.probes), h.cfg.Dim, slices.Values(h.probes))
}

// writeNpy writes the n rows of dim values rows yields to path.
func writeNpy(path string, n, dim int, rows iter.Seq[[]float32]) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: dump: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bench: dump: %w", cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := npy.NewWriter(bw, n, dim)
	if err != nil {
		return fmt.Errorf("bench: dump %s: %w", path, err)
	}
	for row := range rows {
		if err := w.Write(row); err != nil {
			return fmt.Errorf("bench: dump %s: %w", path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: dump %s: %w", path, err)
	}
	return nil
}
