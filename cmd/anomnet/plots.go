package main

import (
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/internal/report"
)

// fitLog records what a training run's plots need: every step's losses
// and, per stage-1 epoch, the centroids and a fixed feature sample
// projected to 2-D.
type fitLog struct {
	cfg   anomnet.Config
	steps []stepLosses
	snaps []snapshot2D
	basis [2][]float64 // the PCA frame of the first snapshot's features
	mean  []float64
	err   error
}

type stepLosses struct {
	stage  anomnet.Stage
	epoch  int
	losses anomnet.Losses
}

// snapshot2D is a Snapshot projected onto the PCA frame.
type snapshot2D struct {
	stage      anomnet.Stage
	epoch      int
	features   [2][]float64
	centroids  [2][]float64
	nCentroids int
}

// snapshot is the Config.Snapshot callback. The first snapshot (the
// initialisation) fixes the frame, as in the paper's figure 4, so that
// later ones show movement rather than a rotating basis; only the 2-D
// points are kept, not the features.
func (l *fitLog) snapshot(s anomnet.Snapshot) {
	if l.err != nil {
		return
	}
	if len(l.snaps) == 0 {
		basis, mean, _ := report.PCA2(s.Features, s.D)
		l.basis, l.mean = basis, mean
	}
	if len(l.mean) != s.D {
		l.err = fmt.Errorf("snapshot of dimension %d after one of %d", s.D, len(l.mean))
		return
	}
	l.snaps = append(l.snaps, snapshot2D{stage: s.Stage, epoch: s.Epoch,
		features: l.project(s.Features, s.D), centroids: l.project(s.Centroids, s.D), nCentroids: len(s.Centroids) / s.D})
}

// project returns the coordinates of rows (n x dim) in the frame.
func (l *fitLog) project(rows []float32, dim int) [2][]float64 {
	n := len(rows) / dim
	var out [2][]float64
	for a := range 2 {
		out[a] = make([]float64, n)
		for i := range n {
			var s float64
			for j, v := range rows[i*dim : (i+1)*dim] {
				s += (float64(v) - l.mean[j]) * l.basis[a][j]
			}
			out[a][i] = s
		}
	}
	return out
}

// Plot sizes: one panel of the centroid figure, and the loss plot.
const (
	panelW, panelH = 520, 440
	lossW, lossH   = 520, 300
	maxPanels      = 4
)

// write draws centroids.png (when there were snapshots) and losses.png
// into dir and returns their paths.
func (l *fitLog) write(dir string) ([]string, error) {
	var paths []string
	if len(l.snaps) > 0 {
		p := filepath.Join(dir, "centroids.png")
		if err := l.writeCentroids(p); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	if len(l.steps) > 0 {
		p := filepath.Join(dir, "losses.png")
		if err := l.writeLosses(p); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// panelSnapshots picks up to maxPanels snapshots evenly spread from the
// initialisation to the last epoch.
func panelSnapshots(n int) []int {
	if n <= maxPanels {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	var idx []int
	for i := range maxPanels {
		j := (i*(n-1) + (maxPanels-1)/2) / (maxPanels - 1)
		if len(idx) == 0 || idx[len(idx)-1] != j {
			idx = append(idx, j)
		}
	}
	return idx
}

// writeCentroids draws one scatter panel per chosen epoch (features as
// dots, centroids as crosses, all in the initialisation's PCA frame) and
// lays the panels out in a grid, two per row.
func (l *fitLog) writeCentroids(path string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".centroids-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	defer os.RemoveAll(tmp)
	var tiles []image.Image
	for _, i := range panelSnapshots(len(l.snaps)) {
		s := l.snaps[i]
		title := fmt.Sprintf("after initialisation (%d centroids)", s.nCentroids)
		if s.epoch > 0 {
			title = fmt.Sprintf("%s, after epoch %d", s.stage, s.epoch)
		}
		// Where the centroids started, for the eye to follow them; left
		// empty (and out) in the first panel, so that each series keeps
		// its colour in every panel.
		var init snapshot2D
		if i > 0 {
			init = l.snaps[0]
		}
		series := []report.Series{
			{Label: fmt.Sprintf("features (%d)", len(s.features[0])), X: s.features[0], Y: s.features[1]},
			{Label: "centroids at init", X: init.centroids[0], Y: init.centroids[1], Big: true},
			{Label: "centroids", X: s.centroids[0], Y: s.centroids[1], Big: true},
		}
		p := filepath.Join(tmp, fmt.Sprintf("%d.png", i))
		if err := report.Scatter2D(p, title, series, panelW, panelH); err != nil {
			return err
		}
		img, err := dataset.Open(p)
		if err != nil {
			return err
		}
		tiles = append(tiles, img)
	}
	var rows [][]image.Image
	for i := 0; i < len(tiles); i += 2 {
		rows = append(rows, tiles[i:min(i+2, len(tiles))])
	}
	captions := []string{"Centroids (green) and a fixed sample of adapted features (dots), in the PCA frame of the features at initialisation.",
		"Orange: the centroids at initialisation, seen where a centroid has moved off its start."}
	return report.WritePNG(path, report.Grid(rows, captions[:min(len(rows), 2)], nil))
}

// writeLosses plots every training step's loss terms against the step
// number, counted across stages: one panel per term, since the terms
// differ by orders of magnitude, with a curve per stage that has it.
func (l *fitLog) writeLosses(path string) error {
	var stages []anomnet.Stage
	var terms []string
	for _, s := range l.steps {
		if len(stages) == 0 || stages[len(stages)-1] != s.stage {
			stages = append(stages, s.stage)
			for _, t := range s.losses.Terms(l.cfg.Plan(s.stage)) {
				if !slices.Contains(terms, t.Name) {
					terms = append(terms, t.Name)
				}
			}
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".losses-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	defer os.RemoveAll(tmp)
	var tiles []image.Image
	for k, term := range terms {
		var curves []report.Curve
		for _, stage := range stages {
			c := report.Curve{Label: stage.String()}
			plan := l.cfg.Plan(stage)
			k := slices.IndexFunc(anomnet.Losses{}.Terms(plan), func(t anomnet.Term) bool { return t.Name == term })
			if k < 0 {
				// An empty curve without a legend entry, so that each
				// stage keeps its colour in every panel.
				curves = append(curves, report.Curve{})
				continue
			}
			for i, s := range l.steps {
				if s.stage == stage {
					c.X = append(c.X, float64(i+1))
					c.Y = append(c.Y, s.losses.Terms(plan)[k].Value)
				}
			}
			curves = append(curves, c)
		}
		title := term + " loss"
		if term == "total" {
			title = "weighted total loss"
		}
		p := filepath.Join(tmp, fmt.Sprintf("%d.png", k))
		if err := report.PlotCurves(p, title, "step", "", curves, lossW, lossH); err != nil {
			return err
		}
		img, err := dataset.Open(p)
		if err != nil {
			return err
		}
		tiles = append(tiles, img)
	}
	var rows [][]image.Image
	for i := 0; i < len(tiles); i += 2 {
		rows = append(rows, tiles[i:min(i+2, len(tiles))])
	}
	caption := []string{fmt.Sprintf("Loss terms per training step (%d steps), unweighted; the total is the weighted sum minimised", len(l.steps))}
	return report.WritePNG(path, report.Grid(rows, caption, nil))
}
