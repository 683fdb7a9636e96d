package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/internal/report"
	"github.com/org/anomnet/metrics"
	xdraw "golang.org/x/image/draw"
)

func eval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "MODEL DATA/CATEGORY",
		"Scores the test images of DATA/CATEGORY with MODEL and prints the image AUROC, pixel AUROC\n"+
			"and AUPRO per defect type and overall. Writes report.json, report.md, roc.png and overlays.png\n"+
			"(input, ground truth, anomaly map and predicted mask of a sample of test images) to -out.")
	out := fs.String("out", "", "report folder (default: next to MODEL, its name with .eval for the extension)")
	jsonOut := fs.String("json", "", "also write the JSON report to this file")
	mode := fs.String("input", "", "the input the model must have been fitted with, crop, full or tile (\"\": the model's own); full and tile compare with the whole, uncropped masks")
	rate := fs.rateFlag()
	cache := fs.cacheFlag()
	pos, err := fs.parse(args, 2, stdout)
	if err != nil {
		return err
	}
	if err := checkRate("eval", *rate); err != nil {
		return err
	}
	if err := checkInputFlag(*mode); err != nil {
		return err
	}
	modelPath, data := pos[0], pos[1]
	if *out == "" {
		*out = strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".eval"
	}
	// Everything that can be checked without the backbone comes first.
	f, err := os.Open(modelPath)
	if err != nil {
		return err
	}
	f.Close()
	cat, err := openCategory(data)
	if err != nil {
		return err
	}
	if err := outputDir(*out); err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := checkOutputFile(*jsonOut); err != nil {
			return err
		}
	}
	m, err := loadModel(ctx, *cache, modelPath, stderr)
	if err != nil {
		return err
	}
	if err := checkInputMode(*mode, m, modelPath); err != nil {
		return err
	}
	if err := rethreshold(m, *rate, modelPath, stderr); err != nil {
		return err
	}
	ev, err := evaluateModel(ctx, m, cat, stderr)
	if err != nil {
		return err
	}
	ev.rep.Model, ev.rep.Data = modelPath, data
	ev.printTable(stdout)
	files, err := ev.write(*out, nil)
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, ev.rep); err != nil {
			return err
		}
		files = append(files, *jsonOut)
	}
	fmt.Fprintf(stdout, "report: %s\n", strings.Join(files, ", "))
	return nil
}

// evalReport is eval's result, written as report.json.
type evalReport struct {
	Model    string `json:"model"`
	Data     string `json:"data"`
	Category string `json:"category"`
	// Input is the protocol: "crop" (images and masks resized to Resize,
	// then the centred Crop square: MVTec AD's), "full" (whole images
	// and masks resized to the Width x Height frame, nothing cut) or
	// "tile" (whole images and masks at their own size; Width x Height is
	// the tile).
	Input       string              `json:"input"`
	Resize      int                 `json:"resize,omitempty"`
	Crop        int                 `json:"crop,omitempty"`
	Width       int                 `json:"width"`
	Height      int                 `json:"height"`
	Calibration anomnet.Calibration `json:"calibration"`
	Images      int                 `json:"images"`
	PredictSec  float64             `json:"predict_seconds"`
	// Rows hold the metrics over all test images ("all") and over the
	// normal ones with each defect type; null where a metric does not
	// exist (one class only, no masks).
	Rows   []evalRow    `json:"rows"`
	Scores []imageScore `json:"scores"`
	// FalseAlarms compares the target rate with the test's normal images
	// (absent when the model was not calibrated for a rate).
	FalseAlarms *falseAlarms `json:"false_alarms,omitempty"`
}

type evalRow struct {
	Defect string   `json:"defect"`
	Images int      `json:"images"`
	IAUROC *float64 `json:"image_auroc"`
	PAUROC *float64 `json:"pixel_auroc"`
	AUPRO  *float64 `json:"aupro"`
	// The decisions at the model's image threshold: defective images
	// caught of all defective, normal images flagged of all normal,
	// precision and F1 (null without a flagged or a defective image),
	// and F1-max, the best F1 of any threshold (an oracle: it looks at
	// the labels).
	Caught    int      `json:"caught"`
	Defective int      `json:"defective"`
	Flagged   int      `json:"flagged"`
	Normal    int      `json:"normal"`
	Precision *float64 `json:"precision"`
	F1        *float64 `json:"f1"`
	F1Max     *float64 `json:"f1_max"`
}

// falseAlarms is the false-alarm rate the model targets beside the one
// measured on the normal test images, with its 95% Clopper-Pearson
// interval.
type falseAlarms struct {
	Target   float64 `json:"target"`
	Measured float64 `json:"measured"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
	Flagged  int     `json:"flagged"`
	Normal   int     `json:"normal"`
}

// clopperPearson is the exact 95% binomial interval of k successes in n.
func clopperPearson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	if k > 0 {
		lo = distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(0.025)
	}
	hi = 1
	if k < n {
		hi = distuv.Beta{Alpha: float64(k + 1), Beta: float64(n - k)}.Quantile(0.975)
	}
	return lo, hi
}

// imageScore is one test image's verdict.
type imageScore struct {
	Path      string  `json:"path"`
	Defect    string  `json:"defect"`
	Score     float64 `json:"score"`
	Anomalous bool    `json:"predicted_anomalous"`
}

// evaluation is a scored test set.
type evaluation struct {
	rep     evalReport
	cal     anomnet.Calibration
	items   []dataset.Item
	results []anomnet.Result
}

// evaluateModel scores cat's test images and computes the metrics.
func evaluateModel(ctx context.Context, m *anomnet.Model, cat *dataset.Category, stderr io.Writer) (*evaluation, error) {
	cfg := m.Config()
	p := newProgress(stderr)
	items, imgs, err := loadImages(ctx, cfg, cat.Test, p, "load")
	if err != nil {
		return nil, err
	}
	p.begin("predict", "img", len(imgs))
	start := time.Now()
	var results []anomnet.Result
	const chunk = 32 // progress granularity; PredictBatch batches by BackboneBatch
	for lo := 0; lo < len(imgs); lo += chunk {
		hi := min(lo+chunk, len(imgs))
		rs, err := m.PredictBatch(ctx, imgs[lo:hi])
		if err != nil {
			p.end()
			return nil, fmt.Errorf("predict %s to %s: %w", items[lo].Path, items[hi-1].Path, err)
		}
		results = append(results, rs...)
		p.update(len(results), "")
	}
	ev := &evaluation{cal: m.Calibration(), items: items, results: results}
	w, h := cfg.InputSize()
	ev.rep = evalReport{Category: cat.Name, Input: cfg.Input, Width: w, Height: h, Calibration: ev.cal,
		Images: len(imgs), PredictSec: time.Since(start).Seconds()}
	if cfg.Input != anomnet.InputFull {
		ev.rep.Resize, ev.rep.Crop = cfg.Resize, cfg.Crop
	}
	for _, g := range append([]string{"all"}, cat.Defects()...) {
		row, err := evaluate(items, results, g, cat.HasMasks)
		if err != nil {
			return nil, err
		}
		ev.rep.Rows = append(ev.rep.Rows, row)
	}
	for i, it := range items {
		ev.rep.Scores = append(ev.rep.Scores, imageScore{Path: it.Path, Defect: it.Defect, Score: results[i].Score, Anomalous: results[i].Anomalous})
	}
	if all := ev.rep.Rows[0]; ev.cal.FalseAlarms > 0 && all.Normal > 0 {
		lo, hi := clopperPearson(all.Flagged, all.Normal)
		ev.rep.FalseAlarms = &falseAlarms{Target: ev.cal.FalseAlarms, Measured: float64(all.Flagged) / float64(all.Normal),
			Low: lo, High: hi, Flagged: all.Flagged, Normal: all.Normal}
	}
	return ev, nil
}

// evaluate computes the metrics over the normal test images and those of
// one defect type ("all": every test image).
func evaluate(items []dataset.Item, rs []anomnet.Result, defect string, masks bool) (evalRow, error) {
	row := evalRow{Defect: defect}
	var scores []float64
	var labels []bool
	var px metrics.Pixels
	for i, it := range items {
		if defect != "all" && it.Defect != dataset.Good && it.Defect != defect {
			continue
		}
		row.Images++
		scores = append(scores, rs[i].Score)
		labels = append(labels, it.Anomalous)
		switch {
		case it.Anomalous:
			row.Defective++
			if rs[i].Anomalous {
				row.Caught++
			}
		default:
			row.Normal++
			if rs[i].Anomalous {
				row.Flagged++
			}
		}
		if masks {
			if err := px.Add(rs[i].Map, it.Mask, rs[i].Width); err != nil {
				return row, fmt.Errorf("%s: %w", it.Path, err)
			}
		}
	}
	set := func(dst **float64, v float64, err error) error {
		if errors.Is(err, metrics.ErrOneClass) {
			return nil
		}
		if err == nil {
			*dst = &v
		}
		return err
	}
	v, err := metrics.AUROC(scores, labels)
	if err := set(&row.IAUROC, v, err); err != nil {
		return row, err
	}
	if flagged := row.Caught + row.Flagged; flagged > 0 {
		p := float64(row.Caught) / float64(flagged)
		row.Precision = &p
	}
	if row.Defective > 0 {
		f1 := 2 * float64(row.Caught) / float64(row.Defective+row.Caught+row.Flagged)
		row.F1 = &f1
		if row.Normal > 0 {
			v, _, err := metrics.F1Max(scores, labels)
			if err != nil {
				return row, err
			}
			row.F1Max = &v
		}
	}
	if masks {
		v, err := px.AUROC()
		if err := set(&row.PAUROC, v, err); err != nil {
			return row, err
		}
		v, err = px.AUPRO(0.3)
		if err == nil {
			row.AUPRO = &v
		}
	}
	return row, nil
}

func fmtMetric(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *v)
}

func (ev *evaluation) printTable(w io.Writer) {
	rep := ev.rep
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\timages\tI-AUROC\tP-AUROC\tAUPRO\t\n", rep.Category)
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", r.Defect, r.Images, fmtMetric(r.IAUROC), fmtMetric(r.PAUROC), fmtMetric(r.AUPRO))
	}
	tw.Flush()
	ev.printDecisions(w)
	fmt.Fprintf(w, "predict: %d images in %s (%.2f img/s)\n", rep.Images, fmtDuration(time.Duration(rep.PredictSec*float64(time.Second))), float64(rep.Images)/rep.PredictSec)
}

// printDecisions prints the decision quality at the model's threshold.
func (ev *evaluation) printDecisions(w io.Writer) {
	rep := ev.rep
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "at threshold	caught	good flagged	precision	F1	F1-max	\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s	%d/%d	%d/%d	%s	%s	%s	\n", r.Defect, r.Caught, r.Defective, r.Flagged, r.Normal,
			fmtMetric(r.Precision), fmtMetric(r.F1), fmtMetric(r.F1Max))
	}
	tw.Flush()
	if fa := rep.FalseAlarms; fa != nil {
		fmt.Fprintf(w, "false alarms: target %.4g, measured %.4g on %d normal test images (95%% interval %.4f - %.4f)\n",
			fa.Target, fa.Measured, fa.Normal, fa.Low, fa.High)
	}
}

// write writes report.json, report.md, roc.png and overlays.png to dir
// and returns their paths. fitPlots are pictures of the training already
// in dir, which report.md shows too.
func (ev *evaluation) write(dir string, fitPlots []string) ([]string, error) {
	var files []string
	p := filepath.Join(dir, "report.json")
	if err := writeJSON(p, ev.rep); err != nil {
		return files, err
	}
	files = append(files, p)

	var pictures []string
	p = filepath.Join(dir, "roc.png")
	switch ok, err := ev.writeROC(p); {
	case err != nil:
		return files, err
	case ok:
		pictures = append(pictures, p)
	}
	p = filepath.Join(dir, "overlays.png")
	if err := ev.writeOverlays(p); err != nil {
		return files, err
	}
	pictures = append(pictures, p)
	pictures = append(pictures, fitPlots...)

	p = filepath.Join(dir, "report.md")
	if err := writeFile(p, func(w io.Writer) error { return ev.markdown(w, dir, pictures) }); err != nil {
		return files, err
	}
	files = append(files, p)
	return append(files, pictures...), nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// writeROC draws the image-level ROC curve over all test images; it
// draws nothing (false) when the test set has one class only.
func (ev *evaluation) writeROC(path string) (bool, error) {
	scores := make([]float64, len(ev.items))
	labels := make([]bool, len(ev.items))
	for i, it := range ev.items {
		scores[i], labels[i] = ev.results[i].Score, it.Anomalous
	}
	c, err := metrics.ROC(scores, labels)
	if errors.Is(err, metrics.ErrOneClass) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	curve := report.Curve{Label: fmt.Sprintf("%s, %d images", ev.rep.Category, len(scores)), X: c.FPR, Y: c.TPR}
	if all := ev.rep.Rows[0]; all.Normal > 0 && all.Defective > 0 {
		// The model's decisions: where its threshold sits on the curve.
		curve.Mark = &[2]float64{float64(all.Flagged) / float64(all.Normal), float64(all.Caught) / float64(all.Defective)}
		curve.MarkLabel = fmt.Sprintf("at the threshold %.4g", ev.cal.ImageThreshold)
	}
	return true, report.ROC(path, "Image-level ROC: "+ev.rep.Category, []report.Curve{curve}, 640, 600)
}

// overlaySample is the most test images the overlay grid shows.
const overlaySample = 8

// sampleItems picks up to n test images, taking in turn one of the normal
// images and one of each defect type, each group's picks spread evenly
// over it, so that every kind appears; deterministic.
func sampleItems(items []dataset.Item, n int) []int {
	var groups []string // normal images first, then the defects in order of appearance
	members := map[string][]int{}
	for i, it := range items {
		if _, ok := members[it.Defect]; !ok && it.Defect != dataset.Good {
			groups = append(groups, it.Defect)
		}
		members[it.Defect] = append(members[it.Defect], i)
	}
	if len(members[dataset.Good]) > 0 {
		groups = append([]string{dataset.Good}, groups...)
	}
	quota := map[string]int{}
	for left := min(n, len(items)); left > 0; {
		for _, g := range groups {
			if left > 0 && quota[g] < len(members[g]) {
				quota[g]++
				left--
			}
		}
	}
	var out []int
	for _, g := range groups {
		m, q := members[g], quota[g]
		for k := range q {
			out = append(out, m[(2*k+1)*len(m)/(2*q)])
		}
	}
	return out
}

// truthColor outlines the ground truth: green reads against both the
// grey of most parts and the inferno colours of the heat maps.
var truthColor = color.RGBA{0, 230, 64, 255}

// writeOverlays draws a grid with one row per sampled test image: the
// input, the ground truth outlined on it, the anomaly map over it, and
// the predicted mask.
func (ev *evaluation) writeOverlays(path string) error {
	lo, hi := ev.cal.HeatRange()
	var rows [][]image.Image
	var captions []string
	var cell image.Rectangle
	for _, i := range sampleItems(ev.items, overlaySample) {
		it, r := ev.items[i], ev.results[i]
		truth := it.Mask
		if truth == nil {
			truth = make([]bool, r.Width*r.Height)
		}
		row := []image.Image{
			it.Image,
			report.Contour(it.Image, truth, r.Width, r.Height, truthColor),
			report.Overlay(it.Image, r.Map, r.Width, r.Height, lo, hi, 0.6),
			framed(report.MaskImage(r.Mask, r.Width, r.Height)),
		}
		if cell.Empty() {
			cell = overlayCell(r.Width, r.Height)
		}
		if row[0].Bounds().Size() != cell.Size() {
			// Images of their own sizes (the full and tiled inputs): each
			// picture drawn into the first one's cell.
			for j, img := range row {
				fit := image.NewRGBA(cell)
				var scaler xdraw.Interpolator = xdraw.BiLinear
				if j%2 == 1 { // the outlines and the mask stay crisp
					scaler = xdraw.NearestNeighbor
				}
				scaler.Scale(fit, cell, img, img.Bounds(), xdraw.Src, nil)
				row[j] = fit
			}
		}
		rows = append(rows, row)
		verdict := "normal"
		if r.Anomalous {
			verdict = "ANOMALOUS"
		}
		if it.Anomalous && it.Mask == nil {
			verdict += " (no ground-truth mask)"
		}
		captions = append(captions, fmt.Sprintf("%s/%s: score %.4g (threshold %.4g), %s",
			it.Defect, filepath.Base(it.Path), r.Score, ev.cal.ImageThreshold, verdict))
	}
	headers := []string{"input", "ground truth", fmt.Sprintf("map %.3g..%.3g", lo, hi), "predicted mask"}
	return report.WritePNG(path, report.Grid(rows, captions, headers))
}

// overlayCell is the size of a picture on the overlay grid for a w x h
// map: its own, shrunk to at most 512 pixels a side.
func overlayCell(w, h int) image.Rectangle {
	if s := 512 / float64(max(w, h)); s < 1 {
		w, h = max(1, int(float64(w)*s+0.5)), max(1, int(float64(h)*s+0.5))
	}
	return image.Rect(0, 0, w, h)
}

// framed returns a copy of img with a one-pixel grey border, so that a
// mostly white mask stays a tile on the grid's white page.
func framed(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	grey := color.RGBA{160, 160, 160, 255}
	for x := range b.Dx() {
		out.SetRGBA(x, 0, grey)
		out.SetRGBA(x, b.Dy()-1, grey)
	}
	for y := range b.Dy() {
		out.SetRGBA(0, y, grey)
		out.SetRGBA(b.Dx()-1, y, grey)
	}
	return out
}

// markdown writes report.md: the table, the thresholds and the pictures
// (linked relative to dir).
func (ev *evaluation) markdown(w io.Writer, dir string, pictures []string) error {
	rep := ev.rep
	var b strings.Builder
	fmt.Fprintf(&b, "# anomnet evaluation: %s\n\n", rep.Category)
	var protocol string
	switch rep.Input {
	case anomnet.InputFull:
		protocol = fmt.Sprintf("the whole image and mask resized to %d x %d (input full)", rep.Width, rep.Height)
	case anomnet.InputTile:
		protocol = fmt.Sprintf("the whole image and mask at their own size, scored in tiles of %d x %d (input tile)", rep.Width, rep.Height)
	default:
		protocol = fmt.Sprintf("resized to %d, the centred %d x %d kept (input crop)", rep.Resize, rep.Crop, rep.Crop)
	}
	fmt.Fprintf(&b, "Model `%s` on `%s`: %d test images, %s, scored in %.1f s.\n\n",
		rep.Model, rep.Data, rep.Images, protocol, rep.PredictSec)
	b.WriteString("| defect | images | image AUROC | pixel AUROC | AUPRO (FPR 0.3) |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", r.Defect, r.Images, fmtMetric(r.IAUROC), fmtMetric(r.PAUROC), fmtMetric(r.AUPRO))
	}
	b.WriteString("\nDecisions at the image threshold (F1-max: the best F1 of any threshold, an oracle):\n\n" +
		"| defect | caught | good flagged | precision | F1 | F1-max |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "| %s | %d / %d | %d / %d | %s | %s | %s |\n", r.Defect, r.Caught, r.Defective, r.Flagged, r.Normal,
			fmtMetric(r.Precision), fmtMetric(r.F1), fmtMetric(r.F1Max))
	}
	if fa := rep.FalseAlarms; fa != nil {
		fmt.Fprintf(&b, "\nFalse alarms: target %.4g, measured on the normal test images %.4g (%d of %d; 95%% interval %.4f to %.4f).\n",
			fa.Target, fa.Measured, fa.Flagged, fa.Normal, fa.Low, fa.High)
	}
	c := ev.cal
	fmt.Fprintf(&b, "\nEach row but \"all\" holds the normal test images and those of one defect type. "+
		"Thresholds: image %.4g, pixel %.4g (raw scores; the normal training images score %.4g to %.4g).\n",
		c.ImageThreshold, c.PixelThreshold, c.Min, c.Max)
	captions := map[string]string{
		"roc.png":       "Image-level ROC curve over all test images.",
		"overlays.png":  "A sample of test images: input, ground truth (outlined), anomaly map over the input, predicted mask.",
		"centroids.png": "Stage 1: the centroids (crosses) and a fixed sample of adapted features (dots), PCA of the initial features.",
		"losses.png":    "Training losses per step.",
	}
	for _, p := range pictures {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			rel = p
		}
		name := filepath.Base(p)
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n![%s](%s)\n", strings.TrimSuffix(name, ".png"), captions[name], name, filepath.ToSlash(rel))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
