//go:build !amd64 || purego

package index

// This build has no batched int8 kernel in assembly: batches of the int8
// tier scan the float32 rows (batchI8Min stays noDim).
const haveVNNI = false

func useVNNI(*kernelSet) {}
