package engine

// The inputs and outputs of the collection operations.

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
