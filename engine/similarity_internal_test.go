package engine

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCurvePoints(t *testing.T) {
	arc, err := parseCurve(SimilarityArcFace)
	require.NoError(t, err)
	cos, err := parseCurve(SimilarityCosine)
	require.NoError(t, err)
	tests := []struct {
		c       *curve
		x, want float64
	}{
		{arc, -1, 0}, {arc, -0.3, 0}, {arc, 0, 0}, {arc, 0.05, 5}, {arc, 0.10, 10}, {arc, 0.25, 50},
		{arc, 0.38, 80}, {arc, 0.49, 89.5}, {arc, 0.60, 99}, {arc, 0.80, 99.5}, {arc, 1, 100}, {arc, 1.0001, 100},
		{cos, -0.5, 0}, {cos, 0, 0}, {cos, 0.42, 42}, {cos, 1, 100},
	}
	for _, tt := range tests {
		require.InDelta(t, tt.want, tt.c.percent(tt.x), 1e-9, "%s(%v)", tt.c.name, tt.x)
	}
}

// TestCutoffInvertsPercent: the scan's cut-off admits every cosine whose
// percentage reaches the threshold and, past a hair, nothing below it.
func TestCutoffInvertsPercent(t *testing.T) {
	custom, err := parseCurve("-1:0,0.2:0,0.2001:40,0.5:40,1:100") // flat stretches
	require.NoError(t, err)
	for _, spec := range []string{SimilarityArcFace, SimilarityCosine} {
		c, err := parseCurve(spec)
		require.NoError(t, err)
		for _, cv := range []*curve{c, custom} {
			for th := 0.0; th <= 100; th += 0.25 {
				cut := float64(cv.cutoff(th))
				require.GreaterOrEqual(t, cv.percent(cut+2e-5), th-1e-6, "%s threshold %v cut %v", cv.name, th, cut)
				if cut > -1 {
					require.Less(t, cv.percent(cut-1e-3), th, "%s threshold %v: cut-off too low", cv.name, th)
				}
			}
		}
	}
	require.Equal(t, float32(2), custom.cutoff(100.5), "above the curve nothing matches")
}

func TestParseCurveErrors(t *testing.T) {
	for _, spec := range []string{
		"", "euclid", "0:0,1:100", "-1:0,1:101", "-1:0,0.5:60,0.4:70,1:100", "-1:0,0.5:60,0.6:50,1:100",
		"-1:0,x:5,1:100", "-1:0;1:100", "-1:NaN,1:100",
	} {
		_, err := parseCurve(spec)
		require.Error(t, err, "%q", spec)
	}
	c, err := parseCurve("-1:0, 0:0, 0.3:80, 1:100")
	require.NoError(t, err, "spaces are fine")
	require.InDelta(t, 40, c.percent(0.15), 1e-9)
}
