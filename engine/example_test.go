package engine_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/facesearch/facesearch/engine"
)

// Index two faces of one person, make them a user, and find that user from a
// third photo's embedding.
func Example() {
	dir, _ := os.MkdirTemp("", "facesearch-example")
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := engine.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	_, err = db.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "staff", Similarity: engine.SimilarityCosine})
	if err != nil {
		log.Fatal(err)
	}
	// Embeddings come from your own model; these are tiny for the example.
	indexed, err := db.IndexFaces(ctx, &engine.IndexFacesInput{
		CollectionId: "staff",
		Faces: []engine.FaceEmbedding{
			{Vector: []float32{0.9, 0.1, 0.0, 0.1}, ExternalImageId: "alice-1.jpg"},
			{Vector: []float32{0.8, 0.2, 0.1, 0.0}, ExternalImageId: "alice-2.jpg"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	var faceIDs []string
	for _, r := range indexed.FaceRecords {
		faceIDs = append(faceIDs, r.Face.FaceId)
	}
	if _, err := db.CreateUser(ctx, &engine.CreateUserInput{CollectionId: "staff", UserId: "alice"}); err != nil {
		log.Fatal(err)
	}
	assoc, err := db.AssociateFaces(ctx, &engine.AssociateFacesInput{CollectionId: "staff", UserId: "alice", FaceIds: faceIDs})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("associated:", len(assoc.AssociatedFaces), assoc.UserStatus)

	found, err := db.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{
		CollectionId: "staff",
		Vector:       []float32{0.7, 0.3, 0.3, 0.1},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range found.UserMatches {
		fmt.Printf("%s %.2f%%\n", m.User.UserId, m.Similarity)
	}
	// Output:
	// associated: 2 ACTIVE
	// alice 92.55%
}
