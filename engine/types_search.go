package engine

// The inputs and outputs of the searches: faces and users, by an indexed
// face or user or by an embedding.

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

// SearchUsersBatchInput asks for the users most similar to each of many
// embeddings, with one threshold and one MaxUsers for all of them.
type SearchUsersBatchInput struct {
	CollectionId       string   `json:"CollectionId"`
	UserMatchThreshold *float32 `json:"UserMatchThreshold,omitempty"`
	MaxUsers           *int32   `json:"MaxUsers,omitempty"`
	// Vectors are the query embeddings, each of the collection's dimension.
	Vectors [][]float32 `json:"-"`
}

// SearchUsersBatchOutput answers SearchUsersBatch: Results[i] is what
// SearchUsersByImage answers for Vectors[i].
type SearchUsersBatchOutput struct {
	Results []SearchUsersByImageOutput `json:"Results"`
}

// SearchFacesBatchInput asks for the faces most similar to each of many
// embeddings, with one threshold and one MaxFaces for all of them.
type SearchFacesBatchInput struct {
	CollectionId       string   `json:"CollectionId"`
	FaceMatchThreshold *float32 `json:"FaceMatchThreshold,omitempty"`
	MaxFaces           *int32   `json:"MaxFaces,omitempty"`
	// Vectors are the query embeddings, each of the collection's dimension.
	Vectors [][]float32 `json:"-"`
}

// SearchFacesBatchOutput answers SearchFacesBatch: Results[i] is what
// SearchFacesByImage answers for Vectors[i].
type SearchFacesBatchOutput struct {
	Results []SearchFacesByImageOutput `json:"Results"`
}
