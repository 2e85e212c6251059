package index_test

import (
	"context"
	"fmt"

	"github.com/facesearch/facesearch/index"
)

func ExampleMatrix_Search() {
	m := index.NewMatrix(2)
	m.Upsert(1, []float32{1, 0})
	m.Upsert(2, []float32{0.6, 0.8})
	m.Upsert(3, []float32{0, 1})
	m.Upsert(4, []float32{1, 0}) // the same vector as key 1: ties go to the smaller key

	hits, err := m.Search(context.Background(), []float32{1, 0}, 3, 0.5)
	if err != nil {
		panic(err)
	}
	for _, h := range hits {
		fmt.Printf("key %d score %.2f\n", h.Key, h.Score)
	}
	// Output:
	// key 1 score 1.00
	// key 4 score 1.00
	// key 2 score 0.60
}
