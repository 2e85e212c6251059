package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// npyVector returns v as a NumPy .npy array of shape (len(v),), little-endian
// float32: the bytes numpy.save writes, and what Image.Bytes carries.
func npyVector(v []float32) []byte {
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }", len(v))
	// Pad so magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(header)), byte(len(header)>>8))
	b = append(b, header...)
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// Serve an engine over HTTP and use it with the unmodified AWS SDK for Go:
// only BaseEndpoint differs from calling Amazon Rekognition.
func Example() {
	dir, _ := os.MkdirTemp("", "facesearch-example")
	defer os.RemoveAll(dir)
	db, err := engine.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	srv, err := server.New(db, &server.Options{
		Credentials: map[string]string{"AKIDEXAMPLE": "example-secret"},
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv) // facesearch serve does the same with an http.Server
	defer ts.Close()

	ctx := context.Background()
	client := rekognition.New(rekognition.Options{
		BaseEndpoint: aws.String(ts.URL),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "example-secret", ""),
	})
	_, err = client.CreateCollection(ctx, &rekognition.CreateCollectionInput{
		CollectionId: aws.String("staff"),
		Tags:         map[string]string{"facesearch:similarity": "cosine"},
	})
	if err != nil {
		log.Fatal(err)
	}
	var faceIDs []string
	for _, v := range [][]float32{{0.9, 0.1, 0.0, 0.1}, {0.8, 0.2, 0.1, 0.0}} {
		out, err := client.IndexFaces(ctx, &rekognition.IndexFacesInput{
			CollectionId: aws.String("staff"),
			Image:        &types.Image{Bytes: npyVector(v)},
		})
		if err != nil {
			log.Fatal(err)
		}
		faceIDs = append(faceIDs, *out.FaceRecords[0].Face.FaceId)
	}
	if _, err := client.CreateUser(ctx, &rekognition.CreateUserInput{CollectionId: aws.String("staff"), UserId: aws.String("alice")}); err != nil {
		log.Fatal(err)
	}
	if _, err := client.AssociateFaces(ctx, &rekognition.AssociateFacesInput{CollectionId: aws.String("staff"), UserId: aws.String("alice"), FaceIds: faceIDs}); err != nil {
		log.Fatal(err)
	}
	found, err := client.SearchUsersByImage(ctx, &rekognition.SearchUsersByImageInput{
		CollectionId: aws.String("staff"),
		Image:        &types.Image{Bytes: npyVector([]float32{0.7, 0.3, 0.3, 0.1})},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range found.UserMatches {
		fmt.Printf("%s %s %.0f%%\n", *m.User.UserId, m.User.UserStatus, *m.Similarity)
	}
	// Output: alice ACTIVE 93%
}
