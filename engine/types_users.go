package engine

// The inputs and outputs of the user operations: creating, deleting,
// listing, associating and disassociating faces.

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
