package engine

import (
	"math"
	"strconv"

	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/store"
)

// An embedding stands for its whole image, so a face's bounding box is the
// whole image (Width 1, Height 1, Left 0, Top 0) unless its caller gave the
// box its detector found: [FaceEmbedding.BoundingBox] or
// [ImportRecord.BoundingBox] in Go, the .npy header key
// 'facesearch:bounding_boxes' on the wire. The box is kept with the face
// and returned wherever the face appears.

// wholeImage is the bounding box of a face given without one.
func wholeImage() *BoundingBox { return &BoundingBox{Width: 1, Height: 1} }

// boxOrWhole returns a copy of b, or the whole image when b is nil: callers
// may change what they get without touching the face.
func boxOrWhole(b *store.Box) *BoundingBox {
	if b == nil {
		return wholeImage()
	}
	return &BoundingBox{Width: b.Width, Height: b.Height, Left: b.Left, Top: b.Top}
}

// storeBox is b as the store keeps it; nil (the whole image) stays nil, so
// such faces keep the record format they had before boxes.
func storeBox(b *BoundingBox) *store.Box {
	if b == nil {
		return nil
	}
	return &store.Box{Width: b.Width, Height: b.Height, Left: b.Left, Top: b.Top}
}

// faceDetail is what facesearch can say about a face it did not detect: its
// box and full confidence. The other members of Rekognition's FaceDetail
// (landmarks, pose, quality, attributes) need the image, which facesearch
// never sees.
func faceDetail(b *store.Box) *FaceDetail {
	return &FaceDetail{Confidence: 100, BoundingBox: boxOrWhole(b)}
}

// boundingBox checks a caller's box: finite ratios and a positive width
// and height. Left and Top may be negative and any value may pass 1, as
// Rekognition's are for faces at the image's edge.
func (v *validator) boundingBox(name string, b *BoundingBox) {
	if b == nil {
		return
	}
	for _, x := range [4]float32{b.Width, b.Height, b.Left, b.Top} {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			v.addf("Value at '%s' failed to satisfy constraint: Width, Height, Left and Top must be finite numbers", name)
			return
		}
	}
	if !(b.Width > 0 && b.Height > 0) {
		v.addf("Value at '%s' failed to satisfy constraint: Width (%g) and Height (%g) must be greater than 0", name, b.Width, b.Height)
	}
}

// imageBoxes converts the boxes of an image's header, one per row, into
// store boxes, checking each; boxes is nil when the header had none.
func imageBoxes(boxes []npy.Box) ([]*store.Box, error) {
	if boxes == nil {
		return nil, nil
	}
	var v validator
	out := make([]*store.Box, len(boxes))
	for i, b := range boxes {
		bb := &BoundingBox{Width: float32(b.Width), Height: float32(b.Height), Left: float32(b.Left), Top: float32(b.Top)}
		v.boundingBox(npy.BoxesKey+"["+strconv.Itoa(i)+"] in Image.Bytes", bb)
		out[i] = storeBox(bb)
	}
	return out, v.err()
}
