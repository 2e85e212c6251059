//go:build !amd64 || purego

package index

// This build has no assembly kernels: every scan uses the pure-Go kernels,
// and the floor vek32's sum where vek has SIMD.
const (
	haveAsm  = false
	have512  = false
	haveF16C = false
)

func useAsm(*kernelSet, cpuFeatures) {}
