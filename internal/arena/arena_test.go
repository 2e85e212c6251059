package arena

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestArena: each allocation has exactly the room asked for, large
// requests get a chunk of their own, and after Reset the same memory is
// handed out again, in the same order.
func TestArena(t *testing.T) {
	t.Run("bytes", func(t *testing.T) { testArena[byte](t, chunkBytes) })
	t.Run("float32s", func(t *testing.T) { testArena[float32](t, chunkBytes/4) })
}

func testArena[T byte | float32](t *testing.T, chunk int) {
	var a Arena[T]
	sizes := []int{3, 8, 1, chunk - 64, 5 * chunk, 12}
	var first [][]T
	for _, n := range sizes {
		b := a.Alloc(n)
		require.Len(t, b, n)
		require.Equal(t, n, cap(b), "an append must not run into the next allocation")
		first = append(first, b)
	}
	require.Len(t, a.chunks, 3, "the large request has a chunk of its own, and the last request a new one after it")
	require.Empty(t, a.Alloc(0))

	a.Reset()
	for i, n := range sizes {
		require.Same(t, unsafe.SliceData(first[i]), unsafe.SliceData(a.Alloc(n)), "allocation %d after Reset", i)
	}
	require.Len(t, a.chunks, 3, "Reset reuses the chunks")
}
