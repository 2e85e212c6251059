package npy

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// BoxesKey is the optional header key that carries each row's face bounding
// box, for callers whose detector found the face the embedding was made
// from: a list of one dict per row, each with the float members 'Width',
// 'Height', 'Left' and 'Top' (ratios of the image's size, as Rekognition's
// BoundingBox). NumPy's own loader refuses headers with extra keys, so such
// a file is for facesearch only; write it with
// numpy.lib.format.write_array_header_1_0.
const BoxesKey = "facesearch:bounding_boxes"

// Box is one row's face bounding box from the header's [BoxesKey].
type Box struct {
	Width, Height, Left, Top float64
}

// boxMembers are a box dict's keys, in the order Box holds them.
var boxMembers = [4]string{"Width", "Height", "Left", "Top"}

// parseBoxes checks the BoxesKey value against the array's n rows.
func parseBoxes(v pyValue, n int) ([]Box, error) {
	want := fmt.Sprintf("want a list of %d dict(s) {'Width': w, 'Height': h, 'Left': x, 'Top': y}, one per row", n)
	if v.kind != pyList && v.kind != pyTuple {
		return nil, formatErr("%s is %s, not a list: %s", BoxesKey, clip(v.repr()), want)
	}
	if len(v.items) != n {
		return nil, formatErr("%s has %d entries but the array has %d rows: %s", BoxesKey, len(v.items), n, want)
	}
	boxes := make([]Box, n)
	for i, it := range v.items {
		if it.kind != pyDict || len(it.dict) != len(boxMembers) {
			return nil, formatErr("%s[%d] is %s: %s", BoxesKey, i, clip(it.repr()), want)
		}
		var f [4]float64
		for j, m := range boxMembers {
			x, ok := it.dict[m]
			if !ok {
				return nil, formatErr("%s[%d] has no '%s': %s", BoxesKey, i, m, want)
			}
			if x.kind != pyFloat && x.kind != pyInt || x.big {
				return nil, formatErr("%s[%d]['%s'] is %s, not a number", BoxesKey, i, m, clip(x.repr()))
			}
			f[j] = x.f
		}
		boxes[i] = Box{Width: f[0], Height: f[1], Left: f[2], Top: f[3]}
	}
	return boxes, nil
}

// DecodeBoxed is [Decode] that also returns the rows' bounding boxes from
// the header's [BoxesKey], one per row, or nil when the header has none.
// Their values are as written: the caller checks their ranges.
func DecodeBoxed(b []byte) (rows [][]float32, boxes []Box, err error) {
	rows, h, err := decode(b)
	if err != nil {
		return nil, nil, err
	}
	return rows, h.boxes, nil
}

// Boxes returns the rows' bounding boxes from the header's [BoxesKey], or
// nil when the header has none.
func (r *Reader) Boxes() []Box { return r.h.boxes }

// EncodeBoxed is [Encode] with a bounding box per row in the header's
// [BoxesKey] (none when boxes is nil).
func EncodeBoxed(w io.Writer, rows [][]float32, oneD bool, boxes []Box) error {
	if boxes != nil && len(boxes) != len(rows) {
		return formatErr("cannot encode %d boxes for %d rows: want one per row", len(boxes), len(rows))
	}
	return encode(w, rows, oneD, boxesEntry(boxes))
}

// boxesEntry renders boxes as a header dict entry, as Python's repr would.
func boxesEntry(boxes []Box) string {
	if boxes == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "'%s': [", BoxesKey)
	for i, x := range boxes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("{")
		for j, v := range [4]float64{x.Width, x.Height, x.Left, x.Top} {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "'%s': %s", boxMembers[j], pyFloatRepr(v))
		}
		b.WriteString("}")
	}
	b.WriteString("], ")
	return b.String()
}

// pyFloatRepr writes f so that it parses back as a float, as repr does.
func pyFloatRepr(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}
