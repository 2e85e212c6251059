package engine

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Member names and JSON tags here and in types_*.go (one file per family of
// operations) are Rekognition's, so the server decodes
// requests straight into the inputs and encodes the outputs as they are.
// Optional numbers are pointers so that an absent member takes its default
// while an explicit out-of-range value is an error.

// UserStatus values.
const (
	UserStatusActive  = "ACTIVE"
	UserStatusCreated = "CREATED"
)

// Reasons in Unsuccessful* lists.
const (
	ReasonFaceNotFound                     = "FACE_NOT_FOUND"
	ReasonAssociatedToADifferentUser       = "ASSOCIATED_TO_A_DIFFERENT_USER"
	ReasonLowMatchConfidence               = "LOW_MATCH_CONFIDENCE"
	ReasonAssociatedToAnExistingUser       = "ASSOCIATED_TO_AN_EXISTING_USER"
	ReasonExceedsMaxFaces                  = "EXCEEDS_MAX_FACES"
	ReasonFaceNotLargest                   = "FACE_NOT_LARGEST"
	FaceModelVersion                       = "1.0"
	statusCodeOK                     int32 = 200
)

// Timestamp is a time that travels as epoch seconds, as AWS JSON 1.1 sends
// timestamps.
type Timestamp struct{ time.Time }

// MarshalJSON writes epoch seconds with millisecond precision.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(t.UnixMilli())/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// Image carries embeddings on the wire: Bytes is a NumPy .npy array, shape
// (d,) for one face or (n, d) for n faces, float32 or float64 little-endian.
type Image struct {
	Bytes    []byte    `json:"Bytes,omitempty"`
	S3Object *S3Object `json:"S3Object,omitempty"`
}

// S3Object is accepted for shape compatibility and always refused: S3 is not
// available on-prem.
type S3Object struct {
	Bucket  string `json:"Bucket,omitempty"`
	Name    string `json:"Name,omitempty"`
	Version string `json:"Version,omitempty"`
}

// BoundingBox is where a face lies in its image, as ratios of the image's
// width and height. A face indexed without one has the whole image
// (Width 1, Height 1, Left 0, Top 0): its embedding stands for its image.
type BoundingBox struct {
	Height float32 `json:"Height"`
	Left   float32 `json:"Left"`
	Top    float32 `json:"Top"`
	Width  float32 `json:"Width"`
}

// Face describes an indexed face.
type Face struct {
	FaceId                 string       `json:"FaceId,omitempty"`
	ImageId                string       `json:"ImageId,omitempty"`
	ExternalImageId        string       `json:"ExternalImageId,omitempty"`
	UserId                 string       `json:"UserId,omitempty"`
	Confidence             float32      `json:"Confidence"`
	IndexFacesModelVersion string       `json:"IndexFacesModelVersion,omitempty"`
	BoundingBox            *BoundingBox `json:"BoundingBox,omitempty"`
}

// FaceDetail is the detection detail Rekognition returns. With embeddings
// there is nothing to detect: facesearch sets the face's BoundingBox and
// Confidence (always 100) and none of the members that need the image
// (landmarks, pose, quality, attributes).
type FaceDetail struct {
	Confidence  float32      `json:"Confidence"`
	BoundingBox *BoundingBox `json:"BoundingBox,omitempty"`
}

// FaceEmbedding is one face to index through the Go API.
type FaceEmbedding struct {
	// Vector is the raw embedding; the engine normalizes it.
	Vector []float32
	// ExternalImageId overrides IndexFacesInput.ExternalImageId for this face.
	ExternalImageId string
	// BoundingBox is where the face lies in its image, kept with the face
	// and returned wherever it appears. The default value is nil: the
	// whole image.
	BoundingBox *BoundingBox
}
