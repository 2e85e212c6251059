// Package records reads and writes the files of a bulk import and export:
// JSON Lines and .npy arrays with an optional sidecar of IDs. Readers
// stream [engine.ImportRecord]s with the place each came from, so a bad
// one can be reported as FILE:LINE.
//
// JSON Lines: one object per line,
//
//	{"face_id": "...", "image_id": "...", "external_image_id": "...", "user_id": "...", "embedding": [0.1, ...]}
//
// where only "embedding" is needed for a face; a line with "user_id" and no
// "embedding" is a user with no faces yet. face_id and image_id keep IDs
// from an export; "bounding_box" ({"Width": w, "Height": h, "Left": x,
// "Top": y}) is the face's box in its image, the whole image if absent.
// Blank lines are skipped; unknown fields are errors.
//
// .npy: an (n, d) or (d,) float32/float64 array, one face per row (its
// header may give the rows' boxes under 'facesearch:bounding_boxes'), with
// an optional sidecar text file of one line per row, tab-separated:
//
//	external_image_id [TAB user_id [TAB face_id [TAB image_id]]]
//
// where empty fields mean none. A (d,) file without a sidecar takes its
// file name (without .npy) as the ExternalImageId, when that is a valid one.
//
// It also decodes the lines of the labeled set `facesearch eval` reads
// ([DecodeLabeled]).
package records

import (
	"fmt"
	"regexp"

	"github.com/facesearch/facesearch/engine"
)

// Pos names a record's place in its file: a line, or a row of a .npy.
type Pos struct {
	File string
	N    int // from 1
	Row  bool
}

func (p Pos) String() string {
	if p.Row {
		return fmt.Sprintf("%s:row %d", p.File, p.N)
	}
	return fmt.Sprintf("%s:%d", p.File, p.N)
}

// Sourced is a record and where it came from.
type Sourced struct {
	Pos Pos
	Rec engine.ImportRecord
}

// Error is a record that could not be read, and why.
type Error struct {
	Pos Pos
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Pos, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// idPattern is the pattern of UserId and ExternalImageId.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9_.\-:]+$`)

func validID(s string, maxLen int) bool { return len(s) <= maxLen && idPattern.MatchString(s) }
