package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
)

// The file formats of import and export.
//
// JSON Lines: one object per line,
//
//	{"face_id": "...", "image_id": "...", "external_image_id": "...", "user_id": "...", "embedding": [0.1, ...]}
//
// where only "embedding" is needed for a face; a line with "user_id" and no
// "embedding" is a user with no faces yet. face_id and image_id keep IDs
// from an export; "bounding_box" ({"Width": w, "Height": h, "Left": x,
// "Top": y}) is the face's box in its image, the whole image if absent.
// Blank lines are skipped.
//
// .npy: an (n, d) or (d,) float32/float64 array, one face per row (its
// header may give the rows' boxes under 'facesearch:bounding_boxes'), with
// an optional sidecar text file of one line per row, tab-separated:
//
//	external_image_id [TAB user_id [TAB face_id [TAB image_id]]]
//
// where empty fields mean none. A (d,) file without a sidecar takes its
// file name (without .npy) as the ExternalImageId, when that is a valid one.

// jsonRecord is one line of JSON Lines, import's input and export's output.
type jsonRecord struct {
	FaceID          string    `json:"face_id,omitempty"`
	ImageID         string    `json:"image_id,omitempty"`
	ExternalImageID string    `json:"external_image_id,omitempty"`
	UserID          string    `json:"user_id,omitempty"`
	Embedding       []float32 `json:"embedding,omitempty"`
	// BoundingBox is the face's box in its image, Rekognition's shape
	// ({"Width": ..., "Height": ..., "Left": ..., "Top": ...}); absent
	// means the whole image.
	BoundingBox *engine.BoundingBox `json:"bounding_box,omitempty"`
}

const jsonFields = "embedding, external_image_id, user_id, face_id, image_id, bounding_box"

func (j *jsonRecord) record() engine.ImportRecord {
	return engine.ImportRecord{Vector: j.Embedding, FaceId: j.FaceID, ImageId: j.ImageID, ExternalImageId: j.ExternalImageID, UserId: j.UserID, BoundingBox: j.BoundingBox}
}

// newRecordEncoder writes records one per line, as export writes them.
func newRecordEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

func toJSONRecord(r engine.ImportRecord) jsonRecord {
	return jsonRecord{FaceID: r.FaceId, ImageID: r.ImageId, ExternalImageID: r.ExternalImageId, UserID: r.UserId, Embedding: r.Vector, BoundingBox: r.BoundingBox}
}

// position names a record's place in its file: a line, or a row of a .npy.
type position struct {
	file string
	n    int // from 1
	row  bool
}

func (p position) String() string {
	if p.row {
		return fmt.Sprintf("%s:row %d", p.file, p.n)
	}
	return fmt.Sprintf("%s:%d", p.file, p.n)
}

// sourced is a record and where it came from.
type sourced struct {
	pos position
	rec engine.ImportRecord
}

// recordError is a record that could not be read.
type recordError struct {
	pos position
	err error
}

func (e *recordError) Error() string { return fmt.Sprintf("%s: %v", e.pos, e.err) }
func (e *recordError) Unwrap() error { return e.err }

// maxLine bounds one line of JSON Lines: a 4096-d embedding in decimal
// takes about 60 KiB, so this leaves room for any legitimate line while
// keeping memory bounded.
const maxLine = 16 << 20

// readJSONL streams the records of a JSON Lines file in order. A line
// that does not parse yields a *recordError, after which the caller may go
// on to the next line.
//
// Parsing the numbers is most of an import's work, so lines are parsed on
// every core: one goroutine cuts the input into chunks of lines, workers
// parse them, and the chunks are yielded in order. At most a few chunks per
// worker are in flight, so memory stays bounded whatever the file's size.
func readJSONL(name string, r io.Reader) iter.Seq2[sourced, error] {
	return func(yield func(sourced, error) bool) {
		workers := runtime.GOMAXPROCS(0)
		done := make(chan struct{})
		defer close(done) // stops the goroutines when the caller stops early
		order := make(chan *jsonlChunk, 2*workers)
		work := make(chan *jsonlChunk)
		go cutLines(name, r, order, work, done)
		for range workers {
			go func() {
				for c := range work {
					c.parse()
				}
			}()
		}
		for c := range order {
			<-c.ready
			for i := range c.recs {
				if !yield(c.recs[i], c.errs[i]) {
					return
				}
			}
		}
	}
}

// jsonlChunk is a run of lines and, once ready is closed, their records.
type jsonlChunk struct {
	name  string
	first int      // line number of lines[0]
	lines [][]byte // trimmed lines; blank ones are left out of recs
	recs  []sourced
	errs  []error
	ready chan struct{}
}

const chunkLines = 256

// cutLines reads lines into chunks, sending each to order (for the
// consumer, in order) and to work (for a parser). A read error ends the
// input with a chunk holding only that error.
func cutLines(name string, r io.Reader, order, work chan<- *jsonlChunk, done <-chan struct{}) {
	defer close(order)
	defer close(work)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256<<10), maxLine)
	line := 0
	c := &jsonlChunk{name: name, first: 1, ready: make(chan struct{})}
	send := func() bool {
		select {
		case order <- c:
		case <-done:
			return false
		}
		select {
		case work <- c:
		case <-done:
			return false
		}
		c = &jsonlChunk{name: name, first: line + 1, ready: make(chan struct{})}
		return true
	}
	for sc.Scan() {
		line++
		c.lines = append(c.lines, bytes.Clone(bytes.TrimSpace(sc.Bytes())))
		if len(c.lines) == chunkLines && !send() {
			return
		}
	}
	if len(c.lines) > 0 && !send() {
		return
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d MiB", maxLine>>20)
		}
		c.recs = []sourced{{}}
		c.errs = []error{&recordError{position{file: name, n: line + 1}, err}}
		close(c.ready)
		select {
		case order <- c:
		case <-done:
		}
	}
}

func (c *jsonlChunk) parse() {
	defer close(c.ready)
	for i, b := range c.lines {
		if len(b) == 0 {
			continue
		}
		pos := position{file: c.name, n: c.first + i}
		var j jsonRecord
		if err := decodeRecord(b, &j); err != nil {
			c.recs = append(c.recs, sourced{})
			c.errs = append(c.errs, &recordError{pos, err})
			continue
		}
		c.recs = append(c.recs, sourced{pos, j.record()})
		c.errs = append(c.errs, nil)
	}
	c.lines = nil
}

// decodeRecord decodes one line of JSON Lines: through decodeFast when the
// line is in the plain form export writes, else through encoding/json,
// which also words the errors.
func decodeRecord(b []byte, j *jsonRecord) error {
	if decodeFast(b, j) {
		return nil
	}
	*j = jsonRecord{}
	return decodeLine(b, j)
}

// decodeLine decodes one JSON object strictly: unknown fields and trailing
// data are errors, so a misspelt field name does not pass silently.
func decodeLine(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object: want one object per line")
	}
	return nil
}

// jsonProblem rewords encoding/json's errors for a person fixing a file.
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON at column %d: %v", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Errorf("want a JSON object, got %s", typ.Value)
		}
		return fmt.Errorf("field %q: %s is not a %s", typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON: the object is cut short")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return fmt.Errorf("%s (the fields are %s)", strings.TrimPrefix(err.Error(), "json: "), jsonFields)
	}
	return err
}

// sidecarPath is the sidecar of a .npy file: the same path with .ids for
// .npy, if it exists.
func sidecarPath(npyPath string) string {
	p := strings.TrimSuffix(npyPath, filepath.Ext(npyPath)) + ".ids"
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// readNPY streams the rows of a .npy file, with IDs from its sidecar (if
// sidecar is not empty).
func readNPY(name string, r io.Reader, sidecar string) iter.Seq2[sourced, error] {
	return func(yield func(sourced, error) bool) {
		nr, err := npy.NewReader(r)
		if err != nil {
			yield(sourced{}, &recordError{position{file: name, n: 1, row: true}, err})
			return
		}
		n, dim := nr.Shape()
		var ids *bufio.Scanner
		if sidecar != "" {
			f, err := os.Open(sidecar)
			if err != nil {
				yield(sourced{}, err)
				return
			}
			defer f.Close()
			ids = bufio.NewScanner(f)
			ids.Buffer(make([]byte, 0, 4096), 1<<20)
		}
		defaultExt := ""
		if base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name)); sidecar == "" && n == 1 && validID(base, 255) {
			defaultExt = base
		}
		for row := 1; row <= n; row++ {
			pos := position{file: name, n: row, row: true}
			vec := make([]float32, dim)
			if err := nr.Next(vec); err != nil {
				yield(sourced{}, &recordError{pos, err})
				return
			}
			rec := engine.ImportRecord{Vector: vec, ExternalImageId: defaultExt}
			if boxes := nr.Boxes(); boxes != nil {
				b := boxes[row-1]
				rec.BoundingBox = &engine.BoundingBox{Width: float32(b.Width), Height: float32(b.Height), Left: float32(b.Left), Top: float32(b.Top)}
			}
			if ids != nil {
				if !ids.Scan() {
					err := ids.Err()
					if err == nil {
						err = fmt.Errorf("%s has %d lines, fewer than the %d rows of %s", sidecar, row-1, n, name)
					}
					yield(sourced{}, &recordError{pos, err})
					return
				}
				if err := parseSidecarLine(ids.Text(), &rec); err != nil {
					yield(sourced{}, &recordError{position{file: sidecar, n: row}, err})
					return
				}
			}
			if !yield(sourced{pos, rec}, nil) {
				return
			}
		}
		if err := nr.Next(make([]float32, dim)); err != io.EOF {
			yield(sourced{}, &recordError{position{file: name, n: n, row: true}, err})
			return
		}
		if ids != nil {
			for line := n + 1; ids.Scan(); line++ {
				if strings.TrimSpace(ids.Text()) != "" {
					yield(sourced{}, &recordError{position{file: sidecar, n: line}, fmt.Errorf("more lines than the %d rows of %s", n, name)})
					return
				}
			}
		}
	}
}

// parseSidecarLine reads "external_image_id[\tuser_id[\tface_id[\timage_id]]]".
func parseSidecarLine(line string, rec *engine.ImportRecord) error {
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return nil
	}
	f := strings.Split(line, "\t")
	if len(f) > 4 {
		return fmt.Errorf("%d tab-separated fields; want at most 4: external_image_id, user_id, face_id, image_id", len(f))
	}
	f = append(f, "", "", "")
	rec.ExternalImageId, rec.UserId, rec.FaceId, rec.ImageId = f[0], f[1], f[2], f[3]
	return nil
}

// sidecarLine is parseSidecarLine's inverse, without trailing empty fields.
func sidecarLine(r engine.ImportRecord) string {
	return strings.TrimRight(strings.Join([]string{r.ExternalImageId, r.UserId, r.FaceId, r.ImageId}, "\t"), "\t")
}

// npyHeader is a version 1.0 header for an (n, d) float32 array, laid out
// as numpy.save lays it out, so a file can be streamed row by row once n is
// known.
func npyHeader(n, d int) []byte {
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, d)
	const preamble = 10
	pad := (64 - (preamble+len(dict)+1)%64) % 64
	hlen := len(dict) + pad + 1
	out := append([]byte("\x93NUMPY\x01\x00"), byte(hlen), byte(hlen>>8))
	out = append(out, dict...)
	out = append(out, bytes.Repeat([]byte{' '}, pad)...)
	return append(out, '\n')
}

// appendRow appends v as little-endian float32.
func appendRow(b []byte, v []float32) []byte {
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// readVector reads the first row of a .npy file ("-" is standard input)
// and how many rows it has.
func readVector(path string, stdin io.Reader) ([]float32, int, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		defer f.Close()
		r = f
	}
	nr, err := npy.NewReader(r)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	n, dim := nr.Shape()
	v := make([]float32, dim)
	if err := nr.Next(v); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, n, nil
}

// decodeFast decodes the plain form of a record, the one export writes and
// most tools write: an object whose keys are the record's field names,
// each once, with strings free of escapes and an array of JSON numbers. It
// reports false, leaving the rest to encoding/json, for anything else
// (escapes, nulls, unknown or repeated keys, invalid JSON, numbers out of
// float32 range), so where it answers it answers as encoding/json would,
// several times faster: parsing JSON Lines is most of an import's work.
func decodeFast(b []byte, j *jsonRecord) bool {
	p := fastParser{b: b}
	if !p.skip('{') {
		return false
	}
	p.space()
	if p.at('}') {
		p.i++
		p.space()
		return p.i == len(p.b)
	}
	var seen [5]bool
	for {
		key, ok := p.str()
		if !ok || !p.skip(':') {
			return false
		}
		var field int
		var dst *string
		switch key {
		case "embedding":
			field = 0
		case "face_id":
			field, dst = 1, &j.FaceID
		case "image_id":
			field, dst = 2, &j.ImageID
		case "external_image_id":
			field, dst = 3, &j.ExternalImageID
		case "user_id":
			field, dst = 4, &j.UserID
		default:
			return false
		}
		if seen[field] {
			return false
		}
		seen[field] = true
		if dst != nil {
			if *dst, ok = p.str(); !ok {
				return false
			}
		} else if j.Embedding, ok = p.floats(); !ok {
			return false
		}
		p.space()
		switch {
		case p.at(','):
			p.i++
		case p.at('}'):
			p.i++
			p.space()
			return p.i == len(p.b)
		default:
			return false
		}
	}
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) at(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) skip(c byte) bool {
	p.space()
	if !p.at(c) {
		return false
	}
	p.i++
	return true
}

// str reads a string of printable ASCII without escapes.
func (p *fastParser) str() (string, bool) {
	p.space()
	if !p.at('"') {
		return "", false
	}
	start := p.i + 1
	for i := start; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			p.i = i + 1
			return string(p.b[start:i]), true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// floats reads an array of JSON numbers as float32.
func (p *fastParser) floats() ([]float32, bool) {
	if !p.skip('[') {
		return nil, false
	}
	out := make([]float32, 0, 512)
	p.space()
	if p.at(']') {
		p.i++
		return out, true
	}
	for {
		p.space()
		start := p.i
		if !p.number() {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(p.b[start:p.i]), 32)
		if err != nil {
			return nil, false
		}
		out = append(out, float32(f))
		p.space()
		switch {
		case p.at(','):
			p.i++
		case p.at(']'):
			p.i++
			return out, true
		default:
			return nil, false
		}
	}
}

// number steps over one number of JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.at('-') {
		p.i++
	}
	switch {
	case p.at('0'):
		p.i++
	case digits() == 0:
		return false
	}
	if p.at('.') {
		p.i++
		if digits() == 0 {
			return false
		}
	}
	if p.at('e') || p.at('E') {
		p.i++
		if p.at('+') || p.at('-') {
			p.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
