package engine

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Member names and JSON tags below are Rekognition's, so the server decodes
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

// CreateCollectionInput creates a collection.
type CreateCollectionInput struct {
	CollectionId string `json:"CollectionId"`
	// Tags may carry the reserved settings "facesearch:dimension",
	// "facesearch:similarity" and "facesearch:tier"; other tags are
	// accepted and not kept.
	Tags map[string]string `json:"Tags,omitempty"`
	// Dimension fixes the embedding length (1-4096). The default value is 0:
	// the first indexed face fixes it.
	Dimension int `json:"-"`
	// Similarity names the curve from cosine to percentage: "arcface",
	// "cosine" or a list of points "c:p,c:p,...". The default value is "arcface".
	Similarity string `json:"-"`
	// Tier is what searches scan: "float32" (the vectors themselves),
	// "int8" or "float16" (a compressed copy kept beside them, 1/4 or 1/2
	// of the bytes to read per search, at 25% or 50% more memory). The
	// compressed tiers return exactly what float32 returns: they re-score
	// their candidates with the float32 vectors and fall back to a float32
	// scan when they cannot prove the candidates complete. The default
	// value is "float32".
	Tier string `json:"-"`
}

// CreateCollectionOutput answers CreateCollection.
type CreateCollectionOutput struct {
	CollectionArn    string `json:"CollectionArn"`
	FaceModelVersion string `json:"FaceModelVersion"`
	StatusCode       int32  `json:"StatusCode"`
}

// DeleteCollectionInput deletes a collection and everything in it.
type DeleteCollectionInput struct {
	CollectionId string `json:"CollectionId"`
}

// DeleteCollectionOutput answers DeleteCollection.
type DeleteCollectionOutput struct {
	StatusCode int32 `json:"StatusCode"`
}

// DescribeCollectionInput describes a collection.
type DescribeCollectionInput struct {
	CollectionId string `json:"CollectionId"`
}

// DescribeCollectionOutput answers DescribeCollection.
type DescribeCollectionOutput struct {
	CollectionARN     string    `json:"CollectionARN"`
	CreationTimestamp Timestamp `json:"CreationTimestamp"`
	FaceCount         int64     `json:"FaceCount"`
	UserCount         int64     `json:"UserCount"`
	FaceModelVersion  string    `json:"FaceModelVersion"`
	// Dimension, Similarity and Tier are facesearch's collection settings.
	Dimension  int    `json:"-"`
	Similarity string `json:"-"`
	Tier       string `json:"-"`
}

// ListCollectionsInput lists collections in creation order.
type ListCollectionsInput struct {
	// MaxResults is the page size, 0-4096; 0 or absent means 1000.
	MaxResults *int32 `json:"MaxResults,omitempty"`
	NextToken  string `json:"NextToken,omitempty"`
}

// ListCollectionsOutput answers ListCollections.
type ListCollectionsOutput struct {
	CollectionIds     []string `json:"CollectionIds"`
	FaceModelVersions []string `json:"FaceModelVersions"`
	NextToken         string   `json:"NextToken,omitempty"`
}

// IndexFacesInput adds faces to a collection: either Image (a .npy array,
// the wire form) or Faces (the Go form).
type IndexFacesInput struct {
	CollectionId        string   `json:"CollectionId"`
	Image               *Image   `json:"Image,omitempty"`
	ExternalImageId     string   `json:"ExternalImageId,omitempty"`
	MaxFaces            *int32   `json:"MaxFaces,omitempty"`
	QualityFilter       string   `json:"QualityFilter,omitempty"`
	DetectionAttributes []string `json:"DetectionAttributes,omitempty"`
	// Faces are the embeddings to index when Image is nil.
	Faces []FaceEmbedding `json:"-"`
}

// FaceRecord is one indexed face.
type FaceRecord struct {
	Face       *Face       `json:"Face"`
	FaceDetail *FaceDetail `json:"FaceDetail"`
}

// UnindexedFace is a face that was not indexed, with why.
type UnindexedFace struct {
	FaceDetail *FaceDetail `json:"FaceDetail,omitempty"`
	Reasons    []string    `json:"Reasons"`
}

// IndexFacesOutput answers IndexFaces.
type IndexFacesOutput struct {
	FaceModelVersion string          `json:"FaceModelVersion"`
	FaceRecords      []FaceRecord    `json:"FaceRecords"`
	UnindexedFaces   []UnindexedFace `json:"UnindexedFaces"`
}

// ListFacesInput lists faces in the order they were indexed, optionally
// only one user's faces or only the given FaceIds.
type ListFacesInput struct {
	CollectionId string   `json:"CollectionId"`
	FaceIds      []string `json:"FaceIds,omitempty"`
	UserId       string   `json:"UserId,omitempty"`
	// MaxResults is the page size, 0-4096; 0 or absent means 1000.
	MaxResults *int32 `json:"MaxResults,omitempty"`
	NextToken  string `json:"NextToken,omitempty"`
}

// ListFacesOutput answers ListFaces.
type ListFacesOutput struct {
	Faces            []Face `json:"Faces"`
	FaceModelVersion string `json:"FaceModelVersion"`
	NextToken        string `json:"NextToken,omitempty"`
}

// DeleteFacesInput deletes faces that belong to no user.
type DeleteFacesInput struct {
	CollectionId string   `json:"CollectionId"`
	FaceIds      []string `json:"FaceIds"`
}

// UnsuccessfulFaceDeletion is a face that was not deleted, with why.
type UnsuccessfulFaceDeletion struct {
	FaceId  string   `json:"FaceId,omitempty"`
	UserId  string   `json:"UserId,omitempty"`
	Reasons []string `json:"Reasons"`
}

// DeleteFacesOutput answers DeleteFaces.
type DeleteFacesOutput struct {
	DeletedFaces              []string                   `json:"DeletedFaces"`
	UnsuccessfulFaceDeletions []UnsuccessfulFaceDeletion `json:"UnsuccessfulFaceDeletions"`
}

// SearchFacesInput searches faces similar to an indexed face.
type SearchFacesInput struct {
	CollectionId       string   `json:"CollectionId"`
	FaceId             string   `json:"FaceId"`
	FaceMatchThreshold *float32 `json:"FaceMatchThreshold,omitempty"`
	MaxFaces           *int32   `json:"MaxFaces,omitempty"`
}

// FaceMatch is one face search result.
type FaceMatch struct {
	Face       *Face   `json:"Face"`
	Similarity float32 `json:"Similarity"`
}

// SearchFacesOutput answers SearchFaces.
type SearchFacesOutput struct {
	SearchedFaceId   string      `json:"SearchedFaceId"`
	FaceMatches      []FaceMatch `json:"FaceMatches"`
	FaceModelVersion string      `json:"FaceModelVersion"`
}

// SearchFacesByImageInput searches faces similar to an embedding: Image (a
// .npy array; with several rows the first is searched) or Vector.
type SearchFacesByImageInput struct {
	CollectionId       string   `json:"CollectionId"`
	Image              *Image   `json:"Image,omitempty"`
	FaceMatchThreshold *float32 `json:"FaceMatchThreshold,omitempty"`
	MaxFaces           *int32   `json:"MaxFaces,omitempty"`
	QualityFilter      string   `json:"QualityFilter,omitempty"`
	// Vector is the query embedding when Image is nil.
	Vector []float32 `json:"-"`
}

// SearchFacesByImageOutput answers SearchFacesByImage.
type SearchFacesByImageOutput struct {
	SearchedFaceBoundingBox *BoundingBox `json:"SearchedFaceBoundingBox,omitempty"`
	SearchedFaceConfidence  float32      `json:"SearchedFaceConfidence"`
	FaceMatches             []FaceMatch  `json:"FaceMatches"`
	FaceModelVersion        string       `json:"FaceModelVersion"`
}

// CreateUserInput creates a user.
type CreateUserInput struct {
	CollectionId       string `json:"CollectionId"`
	UserId             string `json:"UserId"`
	ClientRequestToken string `json:"ClientRequestToken,omitempty"`
}

// CreateUserOutput answers CreateUser.
type CreateUserOutput struct{}

// DeleteUserInput deletes a user after disassociating its faces.
type DeleteUserInput struct {
	CollectionId       string `json:"CollectionId"`
	UserId             string `json:"UserId"`
	ClientRequestToken string `json:"ClientRequestToken,omitempty"`
}

// DeleteUserOutput answers DeleteUser.
type DeleteUserOutput struct{}

// ListUsersInput lists users in primary-key (creation) order.
type ListUsersInput struct {
	CollectionId string `json:"CollectionId"`
	// MaxResults is the page size, 1-500. The default value is 100.
	MaxResults *int32 `json:"MaxResults,omitempty"`
	NextToken  string `json:"NextToken,omitempty"`
}

// User is a user in a listing.
type User struct {
	UserId     string `json:"UserId"`
	UserStatus string `json:"UserStatus"`
}

// ListUsersOutput answers ListUsers.
type ListUsersOutput struct {
	Users     []User `json:"Users"`
	NextToken string `json:"NextToken,omitempty"`
}

// AssociateFacesInput adds faces to a user.
type AssociateFacesInput struct {
	CollectionId       string   `json:"CollectionId"`
	UserId             string   `json:"UserId"`
	FaceIds            []string `json:"FaceIds"`
	UserMatchThreshold *float32 `json:"UserMatchThreshold,omitempty"`
	ClientRequestToken string   `json:"ClientRequestToken,omitempty"`
}

// AssociatedFace is a face that was associated.
type AssociatedFace struct {
	FaceId string `json:"FaceId"`
}

// UnsuccessfulFaceAssociation is a face that was not associated, with why.
type UnsuccessfulFaceAssociation struct {
	FaceId     string   `json:"FaceId"`
	UserId     string   `json:"UserId,omitempty"`
	Confidence *float32 `json:"Confidence,omitempty"`
	Reasons    []string `json:"Reasons"`
}

// AssociateFacesOutput answers AssociateFaces.
type AssociateFacesOutput struct {
	AssociatedFaces              []AssociatedFace              `json:"AssociatedFaces"`
	UnsuccessfulFaceAssociations []UnsuccessfulFaceAssociation `json:"UnsuccessfulFaceAssociations"`
	UserStatus                   string                        `json:"UserStatus"`
}

// DisassociateFacesInput removes faces from a user.
type DisassociateFacesInput struct {
	CollectionId       string   `json:"CollectionId"`
	UserId             string   `json:"UserId"`
	FaceIds            []string `json:"FaceIds"`
	ClientRequestToken string   `json:"ClientRequestToken,omitempty"`
}

// DisassociatedFace is a face that was disassociated.
type DisassociatedFace struct {
	FaceId string `json:"FaceId"`
}

// UnsuccessfulFaceDisassociation is a face that was not disassociated, with why.
type UnsuccessfulFaceDisassociation struct {
	FaceId  string   `json:"FaceId"`
	UserId  string   `json:"UserId,omitempty"`
	Reasons []string `json:"Reasons"`
}

// DisassociateFacesOutput answers DisassociateFaces.
type DisassociateFacesOutput struct {
	DisassociatedFaces              []DisassociatedFace              `json:"DisassociatedFaces"`
	UnsuccessfulFaceDisassociations []UnsuccessfulFaceDisassociation `json:"UnsuccessfulFaceDisassociations"`
	UserStatus                      string                           `json:"UserStatus"`
}

// SearchUsersInput searches users similar to a face (FaceId) or to a user
// (UserId); exactly one of the two.
type SearchUsersInput struct {
	CollectionId       string   `json:"CollectionId"`
	FaceId             string   `json:"FaceId,omitempty"`
	UserId             string   `json:"UserId,omitempty"`
	UserMatchThreshold *float32 `json:"UserMatchThreshold,omitempty"`
	MaxUsers           *int32   `json:"MaxUsers,omitempty"`
}

// MatchedUser is the user of a match.
type MatchedUser struct {
	UserId     string `json:"UserId"`
	UserStatus string `json:"UserStatus"`
}

// UserMatch is one user search result.
type UserMatch struct {
	Similarity float32      `json:"Similarity"`
	User       *MatchedUser `json:"User"`
}

// SearchedFace names the face a SearchUsers call searched with.
type SearchedFace struct {
	FaceId string `json:"FaceId"`
}

// SearchedUser names the user a SearchUsers call searched with.
type SearchedUser struct {
	UserId string `json:"UserId"`
}

// SearchUsersOutput answers SearchUsers.
type SearchUsersOutput struct {
	UserMatches      []UserMatch   `json:"UserMatches"`
	FaceModelVersion string        `json:"FaceModelVersion"`
	SearchedFace     *SearchedFace `json:"SearchedFace,omitempty"`
	SearchedUser     *SearchedUser `json:"SearchedUser,omitempty"`
}

// SearchUsersByImageInput searches users similar to an embedding: Image (a
// .npy array; with several rows the first is searched) or Vector.
type SearchUsersByImageInput struct {
	CollectionId       string   `json:"CollectionId"`
	Image              *Image   `json:"Image,omitempty"`
	UserMatchThreshold *float32 `json:"UserMatchThreshold,omitempty"`
	MaxUsers           *int32   `json:"MaxUsers,omitempty"`
	QualityFilter      string   `json:"QualityFilter,omitempty"`
	// Vector is the query embedding when Image is nil.
	Vector []float32 `json:"-"`
}

// SearchedFaceDetails describes the searched face.
type SearchedFaceDetails struct {
	FaceDetail *FaceDetail `json:"FaceDetail,omitempty"`
}

// UnsearchedFace is a face of the image that was not searched.
type UnsearchedFace struct {
	FaceDetails *FaceDetail `json:"FaceDetails,omitempty"`
	Reasons     []string    `json:"Reasons"`
}

// SearchUsersByImageOutput answers SearchUsersByImage.
type SearchUsersByImageOutput struct {
	UserMatches      []UserMatch          `json:"UserMatches"`
	FaceModelVersion string               `json:"FaceModelVersion"`
	SearchedFace     *SearchedFaceDetails `json:"SearchedFace,omitempty"`
	UnsearchedFaces  []UnsearchedFace     `json:"UnsearchedFaces"`
}
