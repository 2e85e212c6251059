package engine

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Built-in similarity curve names.
const (
	SimilarityArcFace = "arcface"
	SimilarityCosine  = "cosine"
)

// curve maps a cosine to Rekognition's Similarity percentage: piecewise
// linear and non-decreasing through its points, with cosines sorted
// ascending from -1 to 1.
type curve struct {
	name string
	cos  []float64
	pct  []float64
}

var builtinCurves = map[string]string{
	// Chosen so the default threshold 80 sits at cosine 0.38, near a 1e-4..1e-6
	// false-accept rate for ArcFace-family models.
	SimilarityArcFace: "-1:0,0:0,0.10:10,0.25:50,0.38:80,0.60:99,1:100",
	SimilarityCosine:  "-1:0,0:0,1:100",
}

// parseCurve accepts a built-in name or a point list "c:p,c:p,...": cosines
// strictly increasing from -1 to 1, percentages non-decreasing from 0 to 100.
func parseCurve(spec string) (*curve, error) {
	name := spec
	if points, ok := builtinCurves[spec]; ok {
		spec = points
	}
	c := &curve{name: name}
	for i, part := range strings.Split(spec, ",") {
		cs, ps, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("similarity %s: point %d %s is not cosine:percent (or use %q or %q)", quoted(name), i+1, quoted(part), SimilarityArcFace, SimilarityCosine)
		}
		x, err1 := strconv.ParseFloat(cs, 64)
		y, err2 := strconv.ParseFloat(ps, 64)
		if err1 != nil || err2 != nil || math.IsNaN(x) || math.IsNaN(y) {
			return nil, fmt.Errorf("similarity %s: point %d %s has a value that is not a number", quoted(name), i+1, quoted(part))
		}
		if n := len(c.cos); n > 0 && (x <= c.cos[n-1] || y < c.pct[n-1]) {
			return nil, fmt.Errorf("similarity %s: point %d: cosines must increase and percentages must not decrease", quoted(name), i+1)
		}
		c.cos = append(c.cos, x)
		c.pct = append(c.pct, y)
	}
	n := len(c.cos)
	if n < 2 || c.cos[0] != -1 || c.cos[n-1] != 1 || c.pct[0] < 0 || c.pct[n-1] > 100 {
		return nil, fmt.Errorf("similarity %s: points must run from cosine -1 to cosine 1 with percentages within 0-100", quoted(name))
	}
	return c, nil
}

// percent is the Similarity of cosine x.
func (c *curve) percent(x float64) float64 {
	if x <= -1 {
		return c.pct[0]
	}
	if x >= 1 {
		return c.pct[len(c.pct)-1]
	}
	for i := 1; i < len(c.cos); i++ {
		if x <= c.cos[i] {
			x0, x1, y0, y1 := c.cos[i-1], c.cos[i], c.pct[i-1], c.pct[i]
			return y0 + (x-x0)*(y1-y0)/(x1-x0)
		}
	}
	return c.pct[len(c.pct)-1]
}

// cutoff is the smallest cosine whose percent reaches threshold, lowered a
// hair so float32 rounding in the scan never drops a match: the exact test
// on percent is applied to the scan's candidates afterwards.
func (c *curve) cutoff(threshold float64) float32 {
	if threshold <= c.pct[0] {
		return -2 // every vector, whatever its rounding
	}
	for i := 1; i < len(c.cos); i++ {
		if threshold <= c.pct[i] {
			x0, x1, y0, y1 := c.cos[i-1], c.cos[i], c.pct[i-1], c.pct[i]
			x := x0 + (threshold-y0)*(x1-x0)/(y1-y0)
			return float32(x) - 1e-5
		}
	}
	return 2 // above the curve's maximum: nothing matches
}

// similarity is the percentage reported for a scan score.
func (c *curve) similarity(score float32) float32 {
	return float32(c.percent(float64(score)))
}
