package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/records"
)

// The inputs of import and the run that feeds their records to the
// importer, keeping each record's place for the messages.

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

// inputExts are the file name extensions (in any case) whose records
// import reads without --format, each with its format, in the order
// messages list them.
var inputExts = []struct{ ext, format string }{
	{".npy", "npy"}, {".jsonl", "jsonl"}, {".ndjson", "jsonl"}, {".json", "jsonl"},
}

// inputExtList lists inputExts for messages: ".npy, .jsonl, ... or .json".
func inputExtList() string {
	exts := make([]string, len(inputExts))
	for i, e := range inputExts {
		exts[i] = e.ext
	}
	last := len(exts) - 1
	return strings.Join(exts[:last], ", ") + " or " + exts[last]
}

// inputFormat is the format of records a file's name gives (see
// inputExts), jsonl for standard input ("-"), "" for any other name.
func inputFormat(path string) string {
	if path == "-" {
		return "jsonl"
	}
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range inputExts {
		if e.ext == ext {
			return e.format
		}
	}
	return ""
}

// recordFile is an open input of records, read through a counter of its
// bytes for progress.
type recordFile struct {
	recs  iter.Seq2[records.Sourced, error]
	read  *countingReader
	size  int64 // 0 for standard input
	close func() error
}

// openRecords opens path ("-" is m.Stdin) to read its records in format:
// npy, with the sidecar of IDs if not "", or jsonl. The caller closes it.
func (m *Main) openRecords(path, format, sidecar string) (*recordFile, error) {
	var src io.Reader = m.Stdin
	name := "(stdin)"
	rf := &recordFile{close: func() error { return nil }}
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if fi, err := f.Stat(); err == nil {
			rf.size = fi.Size()
		}
		src, name, rf.close = f, path, f.Close
	}
	rf.read = &countingReader{r: src}
	if format == "npy" {
		rf.recs = records.ReadNPY(name, rf.read, sidecar)
	} else {
		rf.recs = records.ReadJSONL(name, rf.read)
	}
	return rf, nil
}

// expandInputs lists the files to import: directories are walked, in name
// order, for files whose name gives their format (see inputFormat).
func expandInputs(paths []string, format string) ([]importInput, error) {
	var out []importInput
	add := func(p string, size int64, explicit bool) error {
		f := format
		if f == "auto" {
			f = inputFormat(p)
		}
		if f == "" {
			if !explicit {
				return nil // a directory's other files
			}
			return fmt.Errorf("%s: cannot tell its format from its name: want %s, or give --format", p, inputExtList())
		}
		in := importInput{path: p, format: f, size: size}
		if f == "npy" && p != "-" {
			in.sidecar = records.SidecarPath(p)
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
			return nil, fmt.Errorf("%s has no %s files", p, inputExtList())
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

	done    int64         // bytes of finished inputs
	n       int           // records passed to Add
	pending []records.Pos // positions of the records of the batch being filled
	first   int           // record index of pending[0]
	bad     int           // bad records seen by a dry run
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
	rf, err := r.m.openRecords(in.path, in.format, in.sidecar)
	if err != nil {
		return err
	}
	defer rf.close()
	defaultUser := r.user
	if r.userFromDir {
		defaultUser = filepath.Base(filepath.Dir(in.path))
	}
	for s, err := range rf.recs {
		if err != nil {
			var re *records.Error
			if !errors.As(err, &re) {
				return err
			}
			discarded := r.im.Discard() + 1
			if stop := r.fail(re.Pos, re.Err, discarded); stop != nil {
				return stop
			}
			continue // a dry run goes on
		}
		if s.Rec.UserId == "" && s.Rec.Vector != nil {
			s.Rec.UserId = defaultUser
		}
		if err := r.add(s); err != nil {
			return err
		}
		r.prog.Tick(r.done+rf.read.n.Load(), r.n)
	}
	r.done += in.size
	return nil
}

// add adds one record, mapping a failure back to the file position of the
// record that failed.
func (r *importRun) add(s records.Sourced) error {
	idx := r.n
	r.n++
	err := r.im.Add(s.Rec)
	var ie *engine.ImportError
	switch {
	case err == nil:
		if r.im.Stats().Pending == 0 { // the batch was committed
			r.pending, r.first = r.pending[:0], r.n
		} else {
			r.pending = append(r.pending, s.Pos)
		}
		return nil
	case errors.As(err, &ie):
		pos := s.Pos
		if ie.Record != idx && ie.Record-r.first >= 0 && ie.Record-r.first < len(r.pending) {
			pos = r.pending[ie.Record-r.first]
		}
		return r.fail(pos, ie.Err, ie.Discarded)
	default:
		return fmt.Errorf("%s: %v", s.Pos, describeErr(err))
	}
}

// fail reports a bad record whose batch (discarded records) was dropped.
// It returns the error that ends the import, or nil when a dry run goes on.
func (r *importRun) fail(pos records.Pos, err error, discarded int) error {
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
