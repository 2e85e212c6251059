// Package engine is facesearch's Go API: an embeddable face-similarity user
// search engine with Amazon Rekognition's collection, face and user
// semantics.
//
// Callers bring face embeddings from their own model. [Engine.IndexFaces]
// stores them L2-normalized; [Engine.AssociateFaces] folds a user's faces
// into one user vector (the normalized mean); [Engine.SearchUsers] answers
// with an exact cosine scan. Every method mirrors one Rekognition operation,
// takes and returns structs with Rekognition's member names, and fails with
// an [*Error] carrying Rekognition's error code (test with errors.Is against
// [ErrInvalidParameter], [ErrResourceNotFound], ...).
//
// Every acknowledged mutation is durable (synced to disk in one atomic batch)
// before its method returns, and a search that starts after a write returned
// sees it.
//
// Similarity percentages come from a per-collection curve of the cosine:
// "arcface" (the default) or "cosine"; see [CreateCollectionInput].
package engine
