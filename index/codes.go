package index

// codeBlocks is a compressed tier's copy of the rows: blocks parallel to
// the float32 blocks (same rows per block), each row stride values long,
// zero-padded so the kernels need no tail.
type codeBlocks[T int8 | uint16] struct {
	stride     int
	blockRows  int  // the matrix's
	blockShift uint // the matrix's
	blocks     [][]T
}

func newCodeBlocks[T int8 | uint16](dim, blockRows int, blockShift uint) codeBlocks[T] {
	return codeBlocks[T]{stride: paddedDim(dim), blockRows: blockRows, blockShift: blockShift}
}

// paddedDim is the length of a compressed row: dim rounded up to the
// kernels' 32-value step.
func paddedDim(dim int) int { return (dim + 31) &^ 31 }

// codeBlock is one block of a compressed copy, as it travels between a
// matrix's allocation, prefetch and GiveRoom and the copy's blocks.
type codeBlock[T int8 | uint16] []T

func (b codeBlock[T]) touch() { touchPages(b) }

// newBlock allocates a block of the given rows. It reads only fields that
// never change, so a prefetch goroutine may call it.
func (c *codeBlocks[T]) newBlock(rows int) pages {
	return codeBlock[T](make([]T, rows*c.stride))
}

// addBlock appends a block newBlock allocated.
func (c *codeBlocks[T]) addBlock(b pages) { c.blocks = append(c.blocks, b.(codeBlock[T])) }

// block returns block b, as addBlock took it.
func (c *codeBlocks[T]) block(b int) pages { return codeBlock[T](c.blocks[b]) }

// growFirst re-allocates the first block (the only one ever short) to hold
// rows rows.
func (c *codeBlocks[T]) growFirst(rows int) {
	c.blocks[0] = append(make([]T, 0, rows*c.stride), c.blocks[0]...)[:rows*c.stride]
}

// dropBlocks frees the blocks past the first keep.
func (c *codeBlocks[T]) dropBlocks(keep int) {
	clear(c.blocks[keep:])
	c.blocks = c.blocks[:keep]
}

func (c *codeBlocks[T]) blockCount() int { return len(c.blocks) }

// row returns row r of the copy.
func (c *codeBlocks[T]) row(r int) []T {
	b := c.blocks[r>>c.blockShift]
	off := (r & (c.blockRows - 1)) * c.stride
	return b[off : off+c.stride : off+c.stride]
}

// run returns rows [lo, hi) of the copy as one slice; they must lie in one
// block, as the rows of a chunk do.
func (c *codeBlocks[T]) run(lo, hi int) []T {
	b := c.blocks[lo>>c.blockShift]
	off := (lo & (c.blockRows - 1)) * c.stride
	return b[off : off+(hi-lo)*c.stride]
}

// moveRow copies row from into row to.
func (c *codeBlocks[T]) moveRow(to, from int) { copy(c.row(to), c.row(from)) }
