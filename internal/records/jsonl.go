package records

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"

	"github.com/facesearch/facesearch/engine"
)

// JSON is one line of JSON Lines, import's input and export's output.
type JSON struct {
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

// fields lists JSON's fields for a person who misspelt one.
const fields = "embedding, external_image_id, user_id, face_id, image_id, bounding_box"

// Import is the record j stands for.
func (j *JSON) Import() engine.ImportRecord {
	return engine.ImportRecord{Vector: j.Embedding, FaceId: j.FaceID, ImageId: j.ImageID, ExternalImageId: j.ExternalImageID, UserId: j.UserID, BoundingBox: j.BoundingBox}
}

// NewEncoder writes records one per line, as export writes them.
func NewEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// FromImport is r as a line of JSON Lines.
func FromImport(r engine.ImportRecord) JSON {
	return JSON{FaceID: r.FaceId, ImageID: r.ImageId, ExternalImageID: r.ExternalImageId, UserID: r.UserId, Embedding: r.Vector, BoundingBox: r.BoundingBox}
}

// MaxLine bounds one line of JSON Lines: a 4096-d embedding in decimal
// takes about 60 KiB, so this leaves room for any legitimate line while
// keeping memory bounded.
const MaxLine = 16 << 20

// ReadJSONL streams the records of a JSON Lines file in order. A line
// that does not parse yields an *[Error], after which the caller may go
// on to the next line.
//
// Parsing the numbers is most of an import's work, so lines are parsed on
// every core: one goroutine cuts the input into chunks of lines, workers
// parse them, and the chunks are yielded in order. At most a few chunks per
// worker are in flight, so memory stays bounded whatever the file's size.
func ReadJSONL(name string, r io.Reader) iter.Seq2[Sourced, error] {
	return func(yield func(Sourced, error) bool) {
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
	recs  []Sourced
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
	sc.Buffer(make([]byte, 0, 256<<10), MaxLine)
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
			err = fmt.Errorf("line longer than %d MiB", MaxLine>>20)
		}
		c.recs = []Sourced{{}}
		c.errs = []error{&Error{Pos{File: name, N: line + 1}, err}}
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
		pos := Pos{File: c.name, N: c.first + i}
		var j JSON
		if err := Decode(b, &j); err != nil {
			c.recs = append(c.recs, Sourced{})
			c.errs = append(c.errs, &Error{pos, err})
			continue
		}
		c.recs = append(c.recs, Sourced{pos, j.Import()})
		c.errs = append(c.errs, nil)
	}
	c.lines = nil
}
