package engine

import "encoding/json"

// The request of an Apply carries every field of the operation's input,
// the Go-only ones (json:"-" on the wire) too: a command built from a Go
// call must apply as that call would on one engine.

// createCollectionRequest is CreateCollection's request with its Go-only
// settings, under names no Rekognition field has.
type createCollectionRequest struct {
	*CreateCollectionInput
	Dimension  int    `json:"facesearch:Dimension,omitempty"`
	Similarity string `json:"facesearch:Similarity,omitempty"`
	Tier       string `json:"facesearch:Tier,omitempty"`
}

// indexFacesRequest is IndexFaces' request with its Go-only embeddings.
type indexFacesRequest struct {
	*IndexFacesInput
	Faces []FaceEmbedding `json:"facesearch:Faces,omitempty"`
}

// MutationRequest returns the request [Engine.Apply] takes for in, the
// input of the mutation op: in as JSON, with its Go-only fields. An input
// that cannot be JSON (an embedding value that is not a finite number) is
// an InvalidParameterException, as the engine would answer it.
func MutationRequest(op string, in any) ([]byte, error) {
	if !IsMutation(op) {
		return nil, notMutation(op)
	}
	var w any = in
	switch in := in.(type) {
	case *CreateCollectionInput:
		if in != nil {
			w = &createCollectionRequest{CreateCollectionInput: in, Dimension: in.Dimension, Similarity: in.Similarity, Tier: in.Tier}
		}
	case *IndexFacesInput:
		if in != nil {
			w = &indexFacesRequest{IndexFacesInput: in, Faces: in.Faces}
		}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, invalid("the %s request cannot be encoded: %v", op, err)
	}
	return b, nil
}

// requestTarget returns what a request decodes into for in, and the step
// that moves its Go-only fields into in once it has.
func requestTarget(in any) (target any, done func()) {
	switch in := in.(type) {
	case *CreateCollectionInput:
		w := &createCollectionRequest{CreateCollectionInput: in}
		return w, func() { in.Dimension, in.Similarity, in.Tier = w.Dimension, w.Similarity, w.Tier }
	case *IndexFacesInput:
		w := &indexFacesRequest{IndexFacesInput: in}
		return w, func() { in.Faces = w.Faces }
	}
	return in, func() {}
}
