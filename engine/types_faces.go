package engine

// The inputs and outputs of the face operations: indexing, listing,
// deleting.

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
