package npy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/facesearch/facesearch/internal/npy"
)

func ExampleDecode() {
	b := npy.EncodeVector([]float32{0.6, 0.8})
	rows, dim, err := npy.Decode(b)
	fmt.Println(rows, dim, err)

	_, _, err = npy.Decode([]byte("not an array"))
	fmt.Println(errors.Is(err, npy.ErrFormat))
	// Output:
	// [[0.6 0.8]] 2 <nil>
	// true
}

func ExampleReader() {
	var file bytes.Buffer
	_ = npy.Encode(&file, [][]float32{{1, 0}, {0, 1}, {1, 1}}, false)

	r, err := npy.NewReader(&file)
	if err != nil {
		panic(err)
	}
	n, dim := r.Shape()
	fmt.Println("shape", n, dim)
	row := make([]float32, dim)
	for {
		err := r.Next(row)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(row)
	}
	// Output:
	// shape 3 2
	// [1 0]
	// [0 1]
	// [1 1]
}
