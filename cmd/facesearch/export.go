package main

import (
	"bufio"
	"context"
	"fmt"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/records"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/facesearch/facesearch/engine"
)

const exportSynopsis = `--collection C [--format jsonl|npy] [--out PATH]

Writes a collection as import reads it, so that export then import gives the
same collection: face IDs, image IDs, external image IDs, users (in their
primary-key order, those without faces included) and the stored normalized
vectors bit for bit.

jsonl (the default, on standard output unless --out) writes the users first,
one {"user_id": ...} line each, then one line per face in the order indexed:
  {"face_id":"...","image_id":"...","external_image_id":"...","user_id":"...","embedding":[...]}
with "bounding_box":{"Width":...,"Height":...,"Left":...,"Top":...} for a
face indexed with its box (without one, a face's box is the whole image).
npy writes PATH (an (n, d) float32 array) and its sidecar (PATH with .ids:
external_image_id, user_id, face_id, image_id per row, tab-separated), for
numpy; users without faces have no place there and are left out, and
neither have bounding boxes (use jsonl to keep them).`

func (m *Main) export(ctx context.Context, args []string) error {
	fs := m.newFlagSet("export", exportSynopsis, examples(
		"facesearch export --collection staff > staff.jsonl",
		"facesearch export --data /var/lib/facesearch --collection staff --format npy --out staff.npy",
		"python -c 'import numpy; print(numpy.load(\"staff.npy\").shape)'",
	))
	data := addDataFlag(fs)
	coll := addCollectionFlag(fs, "the collection `C` to export (required)")
	format := fs.String("format", "jsonl", "output `format`: jsonl or npy")
	out := fs.String("out", "", "write to `PATH` instead of standard output (required for npy)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	switch {
	case *coll == "":
		return usageErrorf(fs, "--collection is required")
	case *format != "jsonl" && *format != "npy":
		return usageErrorf(fs, "--format is %q; want jsonl or npy", *format)
	case *format == "npy" && (*out == "" || *out == "-"):
		return usageErrorf(fs, "--format npy writes two files: give --out PATH.npy")
	}
	e, err := openStore(*data, true)
	if err != nil {
		return err
	}
	defer e.Close()
	d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: *coll})
	if err != nil {
		return err
	}
	if *format == "npy" {
		return m.exportNPY(ctx, e, *coll, d, *out)
	}
	w := m.Stdout
	var f *os.File
	if *out != "" && *out != "-" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := records.NewEncoder(bw)
	for rec, err := range e.Export(ctx, *coll) {
		if err != nil {
			return err
		}
		if err := enc.Encode(records.FromImport(rec)); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		return f.Close()
	}
	return nil
}

func (m *Main) exportNPY(ctx context.Context, e *engine.Engine, coll string, d *engine.DescribeCollectionOutput, out string) error {
	if d.FaceCount == 0 {
		return fmt.Errorf("collection %s has no faces: a .npy array cannot have zero rows", coll)
	}
	idsPath := strings.TrimSuffix(out, filepath.Ext(out)) + ".ids"
	if idsPath == out {
		return fmt.Errorf("--out %s: give the .npy a name ending in .npy, so its sidecar can be %s.ids", out, out)
	}
	vf, err := os.Create(out)
	if err != nil {
		return err
	}
	defer vf.Close()
	idf, err := os.Create(idsPath)
	if err != nil {
		return err
	}
	defer idf.Close()
	vw, iw := bufio.NewWriterSize(vf, 1<<20), bufio.NewWriterSize(idf, 256<<10)
	nw, err := npy.NewWriter(vw, int(d.FaceCount), d.Dimension)
	if err != nil {
		return err
	}
	var rows int64
	users, faceless := map[string]bool{}, 0
	for rec, err := range e.Export(ctx, coll) {
		if err != nil {
			return err
		}
		if rec.Vector == nil {
			users[rec.UserId] = false
			continue
		}
		if rec.UserId != "" {
			users[rec.UserId] = true
		}
		if rows++; rows > d.FaceCount {
			break
		}
		if err := nw.Write(rec.Vector); err != nil {
			return err
		}
		if _, err := io.WriteString(iw, records.SidecarLine(rec)+"\n"); err != nil {
			return err
		}
	}
	if rows != d.FaceCount {
		// The store is ours alone while we hold it, so this means a bug.
		return fmt.Errorf("collection %s changed during the export (%d faces, then %d): try again", coll, d.FaceCount, rows)
	}
	for _, has := range users {
		if !has {
			faceless++
		}
	}
	if err := vw.Flush(); err != nil {
		return err
	}
	if err := iw.Flush(); err != nil {
		return err
	}
	if err := vf.Close(); err != nil {
		return err
	}
	if err := idf.Close(); err != nil {
		return err
	}
	if faceless > 0 {
		fmt.Fprintf(m.Stderr, "facesearch export: %d users without faces are not in %s (only --format jsonl keeps them)\n", faceless, out)
	}
	fmt.Fprintf(m.Stderr, "wrote %d faces to %s and their IDs to %s\n", rows, out, idsPath)
	return nil
}
