//go:build !amd64 || purego

package index

// This build has no assembly: FMAPeak runs Go's loop.
var (
	peakKernels = []peakKernel{peakGo}
	hostPeak    = peakGo
)
