package main

import (
	"fmt"
	"image/color"
	"math"
	"os"

	"github.com/facesearch/facesearch/internal/roc"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	genuineColor  = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	impostorColor = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	pointColor    = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
)

// writeEvalPlot draws eval's PNG: the ROC curve (TAR against FAR, FAR on a
// log scale) with the reported operating points, and the genuine and
// impostor score histograms with the thresholds.
func writeEvalPlot(path string, ps roc.Scores, points []roc.OperatingPoint) error {
	rocChart, err := rocPlot(ps, points)
	if err != nil {
		return err
	}
	hist, err := histPlot(ps, points)
	if err != nil {
		return err
	}
	img := vgimg.New(28*vg.Centimeter, 12*vg.Centimeter)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3,
		PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	plots := [][]*plot.Plot{{rocChart, hist}}
	canvases := plot.Align(plots, tiles, dc)
	rocChart.Draw(canvases[0][0])
	hist.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func rocPlot(ps roc.Scores, points []roc.OperatingPoint) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "ROC"
	p.X.Label.Text = "false accept rate (impostor pairs)"
	p.Y.Label.Text = "true accept rate (genuine pairs)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	minFAR := 1 / math.Max(float64(ps.Impostors), 1)
	p.X.Min, p.X.Max = math.Max(minFAR, 1e-7), 1
	p.Y.Min, p.Y.Max = 0, 1
	// Sweep the threshold down the histogram bins: each bin edge gives the
	// share of each kind of pair at or above it.
	var xys plotter.XYs
	var gen, imp int64
	for b := roc.Bins - 1; b >= 0; b-- {
		gen += ps.GenuineHist[b]
		imp += ps.ImpostorHist[b]
		if imp == 0 || len(ps.Genuine) == 0 {
			continue
		}
		xys = append(xys, plotter.XY{X: float64(imp) / float64(ps.Impostors), Y: float64(gen) / float64(len(ps.Genuine))})
	}
	if len(xys) > 0 {
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		line.Color = genuineColor
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add("ROC", line)
	}
	var ops plotter.XYs
	for _, op := range points {
		ops = append(ops, plotter.XY{X: math.Max(op.FAR, p.X.Min), Y: op.TAR})
	}
	sc, err := plotter.NewScatter(ops)
	if err != nil {
		return nil, err
	}
	sc.Color = pointColor
	sc.Radius = vg.Points(3)
	p.Add(sc, plotter.NewGrid())
	p.Legend.Add("FAR 1e-2, 1e-3, 1e-4", sc)
	p.Legend.Top = false // bottom right, where the ROC is not
	return p, nil
}

func histPlot(ps roc.Scores, points []roc.OperatingPoint) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "scores"
	p.X.Label.Text = "cosine"
	p.Y.Label.Text = "share of pairs per bin"
	// Coarsen the fine bins over the range the scores occupy.
	lo, hi := roc.Bins, -1
	for b := range roc.Bins {
		if ps.GenuineHist[b] > 0 || ps.ImpostorHist[b] > 0 {
			lo, hi = min(lo, b), max(hi, b)
		}
	}
	if hi < 0 {
		return p, nil
	}
	const bins = 80
	width := max((hi-lo+1+bins-1)/bins, 1)
	toXY := func(h []int64, total int64) plotter.XYs {
		var xys plotter.XYs
		for b := lo; b <= hi; b += width {
			var n int64
			for i := b; i < min(b+width, roc.Bins); i++ {
				n += h[i]
			}
			x := float64(b)/roc.Bins*2 - 1
			xys = append(xys, plotter.XY{X: x, Y: float64(n) / math.Max(float64(total), 1)})
		}
		return xys
	}
	var ymax float64
	for _, kind := range []struct {
		name  string
		h     []int64
		total int64
		c     color.Color
	}{
		{"impostor pairs", ps.ImpostorHist, ps.Impostors, impostorColor},
		{"genuine pairs", ps.GenuineHist, int64(len(ps.Genuine)), genuineColor},
	} {
		xys := toXY(kind.h, kind.total)
		for _, xy := range xys {
			ymax = math.Max(ymax, xy.Y)
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		line.StepStyle = plotter.PostStep
		line.Color = kind.c
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(kind.name, line)
	}
	for i, op := range points {
		l, err := plotter.NewLine(plotter.XYs{{X: op.Cosine, Y: 0}, {X: op.Cosine, Y: ymax}})
		if err != nil {
			return nil, err
		}
		l.Color = pointColor
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
		if i == len(points)-1 {
			p.Legend.Add(fmt.Sprintf("thresholds at FAR %.0e..%.0e", points[0].FAR, op.FAR), l)
		}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Left = true // the impostor scores' left tail is thin
	return p, nil
}
