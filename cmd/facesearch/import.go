package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

const importSynopsis = `--collection C [flags] FILE|DIR...

Bulk-loads faces into a collection of the store. Batches are written
straight into the store's tables, not through its log, and each is durable
once committed.
Inputs are .npy arrays (n, d) or (d,), one face per row, and JSON Lines
(.jsonl, .ndjson; "-" is standard input), one object per line:
  {"embedding": [...], "external_image_id": "...", "user_id": "..."}
where a user_id creates the user if needed and associates the face, and
"face_id" and "image_id" keep the IDs of an export. A DIR is searched for
.npy, .jsonl and .ndjson files, in name order.

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

// importInput is one file to import.
type importInput struct {
	path    string // "-" is standard input
	format  string // npy or jsonl
	sidecar string
	size    int64
}

// npyRowsMaxFiles bounds the .npy headers npyRows reads: past it, opening
// every file costs more than the hint saves.
const npyRowsMaxFiles = 1000

// npyRows is how many rows the .npy inputs hold, from their headers, as the
// import's hint of how many faces it adds (engine.ImportOptions.
// ExpectedFaces); dim is the collection's dimension, 0 if not yet fixed.
// It is 0 when more than npyRowsMaxFiles files are .npy. Only regular files
// are read (a pipe read here would be empty for the import), and a header
// counts only if the file has room for its rows (4 bytes a value at least)
// and, when dim is fixed, its rows are dim long: the import reports the
// others when it gets to them.
func npyRows(inputs []importInput, dim int) int {
	var files []importInput
	for _, in := range inputs {
		if in.format == "npy" && in.path != "-" {
			files = append(files, in)
		}
	}
	if len(files) > npyRowsMaxFiles {
		return 0
	}
	rows := 0
	for _, in := range files {
		if fi, err := os.Stat(in.path); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		f, err := os.Open(in.path)
		if err != nil {
			continue
		}
		if nr, err := npy.NewReader(f); err == nil {
			n, d := nr.Shape()
			if n > 0 && d > 0 && (dim == 0 || d == dim) && int64(n) <= in.size/4/int64(d) {
				rows = min(rows+n, math.MaxInt32)
			}
		}
		f.Close()
	}
	return rows
}

// expandInputs lists the files to import: directories are walked for .npy,
// .jsonl and .ndjson files in name order.
func expandInputs(paths []string, format string) ([]importInput, error) {
	var out []importInput
	add := func(p string, size int64, explicit bool) error {
		f := format
		if f == "auto" {
			switch strings.ToLower(filepath.Ext(p)) {
			case ".npy":
				f = "npy"
			case ".jsonl", ".ndjson", ".json":
				f = "jsonl"
			default:
				if !explicit {
					return nil
				}
				if p == "-" {
					f = "jsonl"
					break
				}
				return fmt.Errorf("%s: cannot tell its format from its name: want .npy, .jsonl or .ndjson, or give --format", p)
			}
		}
		in := importInput{path: p, format: f, size: size}
		if f == "npy" && p != "-" {
			in.sidecar = sidecarPath(p)
		}
		out = append(out, in)
		return nil
	}
	for _, p := range paths {
		if p == "-" {
			if err := add(p, 0, true); err != nil {
				return nil, err
			}
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			if err := add(p, fi.Size(), true); err != nil {
				return nil, err
			}
			continue
		}
		before := len(out)
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return add(path, info.Size(), false)
		})
		if err != nil {
			return nil, err
		}
		if len(out) == before {
			return nil, fmt.Errorf("%s has no .npy, .jsonl or .ndjson files", p)
		}
	}
	return out, nil
}

// importRun feeds records to an importer and keeps what it needs to say
// where a bad record was.
type importRun struct {
	m           *Main
	im          *engine.Importer
	prog        *progress
	dryRun      bool
	user        string
	userFromDir bool

	done    int64      // bytes of finished inputs
	n       int        // records passed to Add
	pending []position // positions of the records of the batch being filled
	first   int        // record index of pending[0]
	bad     int        // bad records seen by a dry run
}

// maxDryRunErrors is how many bad records a dry run lists before it stops.
const maxDryRunErrors = 20

func (r *importRun) all(inputs []importInput) error {
	for _, in := range inputs {
		if err := r.one(in); err != nil {
			return err
		}
	}
	if r.bad > 0 {
		return fmt.Errorf("dry run: %s (listed above); nothing was written", plural(r.bad, "bad record"))
	}
	return nil
}

func (r *importRun) one(in importInput) error {
	var src io.Reader = r.m.Stdin
	name := in.path
	if in.path == "-" {
		name = "(stdin)"
	} else {
		f, err := os.Open(in.path)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	cr := &countingReader{r: src}
	var recs iter.Seq2[sourced, error]
	if in.format == "npy" {
		recs = readNPY(name, cr, in.sidecar)
	} else {
		recs = readJSONL(name, cr)
	}
	defaultUser := r.user
	if r.userFromDir {
		defaultUser = filepath.Base(filepath.Dir(in.path))
	}
	for s, err := range recs {
		if err != nil {
			var re *recordError
			if !errors.As(err, &re) {
				return err
			}
			discarded := r.im.Discard() + 1
			if stop := r.fail(re.pos, re.err, discarded); stop != nil {
				return stop
			}
			continue // a dry run goes on
		}
		if s.rec.UserId == "" && s.rec.Vector != nil {
			s.rec.UserId = defaultUser
		}
		if err := r.add(s); err != nil {
			return err
		}
		r.prog.Tick(r.done+cr.n.Load(), r.n)
	}
	r.done += in.size
	return nil
}

// add adds one record, mapping a failure back to the file position of the
// record that failed.
func (r *importRun) add(s sourced) error {
	idx := r.n
	r.n++
	err := r.im.Add(s.rec)
	var ie *engine.ImportError
	switch {
	case err == nil:
		if r.im.Stats().Pending == 0 { // the batch was committed
			r.pending, r.first = r.pending[:0], r.n
		} else {
			r.pending = append(r.pending, s.pos)
		}
		return nil
	case errors.As(err, &ie):
		pos := s.pos
		if ie.Record != idx && ie.Record-r.first >= 0 && ie.Record-r.first < len(r.pending) {
			pos = r.pending[ie.Record-r.first]
		}
		return r.fail(pos, ie.Err, ie.Discarded)
	default:
		return fmt.Errorf("%s: %v", s.pos, describeErr(err))
	}
}

// fail reports a bad record whose batch (discarded records) was dropped.
// It returns the error that ends the import, or nil when a dry run goes on.
func (r *importRun) fail(pos position, err error, discarded int) error {
	from := pos
	if len(r.pending) > 0 {
		from = r.pending[0]
	}
	r.pending, r.first = r.pending[:0], r.n
	if r.dryRun {
		r.bad++
		r.prog.Done()
		fmt.Fprintf(r.m.Stderr, "%s: %s\n", pos, describeErr(err))
		if r.bad == maxDryRunErrors {
			return fmt.Errorf("dry run: stopped after %d bad records; nothing was written", r.bad)
		}
		return nil
	}
	msg := fmt.Sprintf("%s: %s\nnothing of its batch was imported (%s", pos, describeErr(err), plural(discarded, "record"))
	if from != pos {
		msg += fmt.Sprintf(", from %s on", from)
	}
	return errors.New(msg + ")")
}
