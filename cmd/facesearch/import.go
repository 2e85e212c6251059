package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/facesearch/facesearch/engine"
)

const importSynopsis = `--collection C [flags] FILE|DIR...

Bulk-loads faces into a collection of the store. Batches are written
straight into the store's tables, not through its log, and each is durable
once committed.
Inputs are .npy arrays (n, d) or (d,), one face per row, and JSON Lines
(.jsonl, .ndjson, .json; "-" is standard input), one object per line:
  {"embedding": [...], "external_image_id": "...", "user_id": "..."}
where a user_id creates the user if needed and associates the face, and
"face_id" and "image_id" keep the IDs of an export. A DIR is searched for
files of these extensions (any case), in name order.

A .npy file may have a sidecar FILE.ids (or --ids) with one line per row,
tab-separated: external_image_id, then optionally user_id, face_id, image_id.
Without a sidecar, a file of one row, shape (d,) or (1, d), takes as
external_image_id its file name less the folder and the last extension
(embeddings/alice/2023-06-01.npy gives 2023-06-01, a.b.npy gives a.b) when
that is 1-255 of the characters a-z A-Z 0-9 _ . - : (an ExternalImageId's);
otherwise, as for every row of a file of several rows, the face has none.
A .npy header may give the rows' bounding boxes ('facesearch:bounding_boxes').

Records are committed in batches. On a bad record the import stops and says
FILE:LINE (or FILE:row N) and why; nothing of that record's batch is
imported, and the batches before it stay (the message says how many).`

func (m *Main) importCmd(ctx context.Context, args []string) error {
	fs := m.newFlagSet("import", importSynopsis, examples(
		"facesearch import --collection staff --create embeddings/",
		"facesearch import --data /var/lib/facesearch --collection staff faces.npy     # IDs from faces.ids",
		"facesearch import --collection staff --create --dim 512 --similarity cosine people.jsonl",
		"facesearch export --collection staff | facesearch import --data copy --collection staff --create -",
		"facesearch import --collection staff --dry-run people.jsonl                  # check only",
	))
	data := addDataFlag(fs)
	coll := addCollectionFlag(fs, "the collection `C` to import into (required)")
	create := fs.Bool("create", false, "create the collection (and the store) if missing")
	dim := fs.Int("dim", 0, "with --create: the embedding `dimension` (default: fixed by the first face)")
	similarity := fs.String("similarity", "", "with --create: the similarity `curve`: arcface, cosine or c:p,c:p,... (default arcface)")
	format := fs.String("format", "auto", "input `format`: auto (by file extension), npy or jsonl")
	ids := fs.String("ids", "", "the sidecar `FILE` of the only .npy input (default: FILE.ids beside it, if present)")
	user := fs.String("user", "", "the `user` of every face that names none (created if needed)")
	userFromDir := fs.Bool("user-from-dir", false, "the user of every face that names none is its file's folder name")
	batch := fs.Int("batch-size", 0, "`records` per committed batch (default 16384, fewer for long embeddings)")
	dryRun := fs.Bool("dry-run", false, "check every record against the collection; write nothing")
	quiet := fs.Bool("quiet", false, "no progress output")
	paths, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *coll == "":
		return usageErrorf(fs, "--collection is required")
	case len(paths) == 0:
		return usageErrorf(fs, "give at least one FILE or DIR to import")
	case *format != "auto" && *format != "npy" && *format != "jsonl":
		return usageErrorf(fs, "--format is %q; want auto, npy or jsonl", *format)
	case *user != "" && *userFromDir:
		return usageErrorf(fs, "give --user or --user-from-dir, not both")
	case *dim < 0 || *batch < 0:
		return usageErrorf(fs, "--dim and --batch-size cannot be negative")
	case (*dim != 0 || *similarity != "") && !*create:
		return usageErrorf(fs, "--dim and --similarity apply when --create creates the collection")
	}
	inputs, err := expandInputs(paths, *format)
	if err != nil {
		return err
	}
	if *ids != "" {
		if len(inputs) != 1 || inputs[0].format != "npy" {
			return usageErrorf(fs, "--ids goes with exactly one .npy input")
		}
		inputs[0].sidecar = *ids
	}

	e, cleanup, err := m.importTarget(ctx, *data, *coll, *create, *dryRun, *dim, *similarity)
	if err != nil {
		return err
	}
	defer cleanup()
	iopts := &engine.ImportOptions{BatchRecords: *batch, DryRun: *dryRun}
	if !*dryRun {
		if d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: *coll}); err == nil {
			iopts.ExpectedFaces = npyRows(inputs, d.Dimension)
		}
	}
	im, err := e.NewImporter(ctx, *coll, iopts)
	if err != nil {
		return err
	}
	run := &importRun{m: m, im: im, dryRun: *dryRun, user: *user, userFromDir: *userFromDir}
	var total int64
	for _, in := range inputs {
		total += in.size
	}
	run.prog = newProgress(m.Stderr, "records", total, *quiet)
	runErr := run.all(inputs)
	run.prog.Done()
	closeErr := im.Close()
	st := im.Stats()
	elapsed := time.Since(run.prog.start)
	if runErr == nil && closeErr != nil {
		runErr = fmt.Errorf("finishing the import: %v", describeErr(closeErr))
	}
	if runErr != nil {
		if !*dryRun {
			runErr = fmt.Errorf("%w; the collection keeps the %s (%s) of the %s before it", runErr,
				plural(st.Faces, "face"), plural(st.Records, "record"), plural(st.Batches, "batch"))
		}
		return runErr
	}
	if *dryRun {
		fmt.Fprintf(m.Stdout, "dry run: all %s are good (%s, %s) for collection %s; nothing was written\n",
			plural(st.Records, "record"), plural(st.Faces, "face"), plural(st.UsersCreated, "new user"), *coll)
		return nil
	}
	fmt.Fprintf(m.Stdout, "imported %s and %s into collection %s in %s (%.1fs, %s faces/s)\n",
		plural(st.Faces, "face"), plural(st.UsersCreated, "new user"), *coll, plural(st.Batches, "batch"),
		elapsed.Seconds(), humanCount(float64(st.Faces)/max(elapsed.Seconds(), 1e-9)))
	return nil
}

// importTarget opens the engine an import writes to (or, for a dry run,
// reads from) and makes sure the collection exists.
func (m *Main) importTarget(ctx context.Context, dir, coll string, create, dryRun bool, dim int, similarity string) (*engine.Engine, func(), error) {
	if !storeExists(dir) && !create {
		return nil, nil, errNoStore(dir)
	}
	var e *engine.Engine
	var err error
	cleanup := func() { e.Close() }
	if dryRun && storeExists(dir) {
		e, err = openStore(dir, true)
	} else if dryRun {
		// Nothing to check against: a scratch store stands in for the one
		// --create would make.
		tmp, terr := os.MkdirTemp("", "facesearch-dry-run")
		if terr != nil {
			return nil, nil, terr
		}
		e, err = openStore(tmp, false)
		cleanup = func() { e.Close(); os.RemoveAll(tmp) }
	} else {
		e, err = openStore(dir, false)
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: coll})
	switch {
	case errors.Is(err, engine.ErrResourceNotFound) && create && dryRun && storeExists(dir):
		e.Close()
		tmp, terr := os.MkdirTemp("", "facesearch-dry-run")
		if terr != nil {
			return nil, nil, terr
		}
		if e, err = openStore(tmp, false); err != nil {
			return nil, nil, err
		}
		cleanup = func() { e.Close(); os.RemoveAll(tmp) }
		fallthrough
	case errors.Is(err, engine.ErrResourceNotFound) && create:
		_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: coll, Dimension: dim, Similarity: similarity})
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("create collection %s: %v", coll, describeErr(err))
		}
		return e, cleanup, nil
	case errors.Is(err, engine.ErrResourceNotFound):
		cleanup()
		return nil, nil, fmt.Errorf("collection %s does not exist in %s: add --create to create it", coll, dir)
	case err != nil:
		cleanup()
		return nil, nil, err
	}
	if dim != 0 && d.Dimension != 0 && dim != d.Dimension {
		cleanup()
		return nil, nil, fmt.Errorf("collection %s holds %d-dimensional embeddings, not %d", coll, d.Dimension, dim)
	}
	if similarity != "" && similarity != d.Similarity {
		cleanup()
		return nil, nil, fmt.Errorf("collection %s exists with similarity %s; --similarity only applies when creating one", coll, d.Similarity)
	}
	return e, cleanup, nil
}
