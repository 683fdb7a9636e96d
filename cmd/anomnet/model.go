package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/metrics"
)

// configFlags registers a flag for each Config knob, with DefaultConfig's
// values, and returns a function that reads them back.
func configFlags(fs *flag.FlagSet) func() (anomnet.Config, error) {
	c := anomnet.DefaultConfig()
	taps := fs.String("taps", strings.Join(c.Taps, ","), "backbone taps, comma-separated")
	fs.IntVar(&c.Resize, "resize", c.Resize, "resize images to this square size")
	fs.IntVar(&c.Crop, "crop", c.Crop, "then crop this centred square")
	fs.IntVar(&c.K, "k", c.K, "number of centroids")
	fs.BoolVar(&c.KMeansPP, "kmeanspp", false, "seed the centroids with k-means++ instead of mean + jitter")
	fs.Float64Var(&c.Jitter, "jitter", c.Jitter, "initial jitter, fraction of the features' mean std")
	fs.Float64Var(&c.Delta, "delta", 0, "separation threshold (0: mean distance of the features to their mean)")
	fs.IntVar(&c.Adapter.Kernel, "adapter-kernel", 1, "adapter convolution kernel, 1 or 3")
	fs.BoolVar(&c.Adapter.NoPool, "no-pool", false, "turn off the adapter's 3x3 average aggregation")
	fs.IntVar(&c.Epochs1, "epochs1", c.Epochs1, "stage 1 epochs")
	fs.IntVar(&c.Epochs2, "epochs2", c.Epochs2, "stage 2 epochs")
	fs.IntVar(&c.BatchSize, "batch", c.BatchSize, "images per training step")
	fs.Float64Var(&c.LR, "lr", c.LR, "Adam learning rate of the adapter")
	fs.Float64Var(&c.LRCentroids, "lr-centroids", 0, "Adam learning rate of the centroids (0: -lr)")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "adapter weight decay")
	fs.Float64Var(&c.LambdaAtt, "lambda-att", c.LambdaAtt, "attraction loss weight")
	fs.Float64Var(&c.LambdaSep, "lambda-sep", c.LambdaSep, "separation loss weight")
	fs.Float64Var(&c.LambdaEnt, "lambda-ent", c.LambdaEnt, "entropy loss weight")
	fs.Float64Var(&c.LambdaCon, "lambda-con", c.LambdaCon, "contrastive loss weight")
	fs.Float64Var(&c.Margin, "margin", c.Margin, "contrastive negative margin")
	fs.IntVar(&c.Sample, "sample", c.Sample, "feature vectors per batch in the contrastive pairs")
	fs.BoolVar(&c.NoSep, "no-sep", false, "ablation: no separation loss in stage 1")
	fs.BoolVar(&c.NoEnt, "no-ent", false, "ablation: no entropy loss in stage 1")
	fs.BoolVar(&c.NoStage2, "no-stage2", false, "ablation: skip stage 2")
	fs.BoolVar(&c.SingleStage, "single-stage", false, "ablation: all losses jointly for -epochs1 epochs")
	fs.BoolVar(&c.NoCon, "no-con", false, "ablation: single stage without the contrastive loss")
	fs.Float64Var(&c.Sigma, "sigma", c.Sigma, "Gaussian blur of the anomaly map, pixels")
	fs.Float64Var(&c.ImageQuantile, "image-quantile", c.ImageQuantile, "image threshold: this quantile of the training images' scores")
	fs.Float64Var(&c.PixelQuantile, "pixel-quantile", c.PixelQuantile, "pixel threshold: this quantile of the training pixels' scores")
	fs.Float64Var(&c.ImageThreshold, "image-threshold", 0, "image threshold, raw score (0: calibrate)")
	fs.Float64Var(&c.PixelThreshold, "pixel-threshold", 0, "pixel threshold, raw score (0: calibrate)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.IntVar(&c.BackboneBatch, "backbone-batch", c.BackboneBatch, "images per backbone pass")
	cacheMB := fs.Int64("feature-cache-mb", c.CacheBytes>>20, "memory for cached backbone features, MiB; the rest spills to a temporary file")
	return func() (anomnet.Config, error) {
		c.Taps = strings.Split(*taps, ",")
		c.CacheBytes = *cacheMB << 20
		if c.Epochs1 == 0 && c.Epochs2 == 0 {
			return c, usageError{"-epochs1 and -epochs2 are both 0"}
		}
		return c, nil
	}
}

// openCategory opens DATA/CAT as an MVTec AD category.
func openCategory(path string) (*dataset.Category, error) {
	path = filepath.Clean(path)
	return dataset.MVTec(filepath.Dir(path), filepath.Base(path))
}

// loadResNet50 loads the default backbone, fetching the weights on first
// use.
func loadResNet50(ctx context.Context, cache string, stderr io.Writer) (*backbone.Net, error) {
	return backbone.LoadResNet50(ctx, backbone.FetchOptions{CacheDir: cache, Progress: stderr})
}

// prepared loads samples preprocessed as cfg says and wraps them for the
// model.
func prepared(ctx context.Context, cfg anomnet.Config, samples []dataset.Sample, stderr io.Writer, what string) ([]dataset.Item, []image.Image, error) {
	p := newProgress(stderr, "load "+what)
	l := &dataset.Loader{Pre: dataset.Preprocess{Resize: cfg.Resize, Crop: cfg.Crop}, CacheBytes: -1,
		Progress: func(done, total int) { p.update(done, total, "") }}
	items, err := l.Load(ctx, samples)
	p.done()
	if err != nil {
		return nil, nil, err
	}
	imgs := make([]image.Image, len(items))
	for i, it := range items {
		imgs[i] = anomnet.Prepared{RGBA: it.Image}
	}
	return items, imgs, nil
}

func fit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fit", flag.ContinueOnError)
	out := fs.String("o", "model.anm", "output model file")
	cache := fs.String("cache", "", "weights cache directory")
	config := configFlags(fs)
	data, err := parseOne(fs, args, stderr, "DATA/CATEGORY")
	if err != nil {
		return err
	}
	cfg, err := config()
	if err != nil {
		return err
	}
	if err := checkWritable(*out); err != nil {
		return err
	}
	cat, err := openCategory(data)
	if err != nil {
		return err
	}
	bb, err := loadResNet50(ctx, *cache, stderr)
	if err != nil {
		return err
	}
	_, imgs, err := prepared(ctx, cfg, cat.Train, stderr, "train/good")
	if err != nil {
		return err
	}
	p := newProgress(stderr, "")
	cfg.Progress = func(pr anomnet.Progress) {
		p.label = pr.Stage
		if pr.Epochs > 1 {
			p.label = fmt.Sprintf("%s epoch %d/%d", pr.Stage, pr.Epoch, pr.Epochs)
		}
		var extra string
		if pr.Losses.Total != 0 {
			l := pr.Losses
			extra = fmt.Sprintf("loss %.4g (att %.4g sep %.4g ent %.4g pos %.4g neg %.4g)", l.Total, l.Att, l.Sep, l.Ent, l.Pos, l.Neg)
		}
		p.update(pr.Step, pr.Steps, extra)
		if pr.Step == pr.Steps {
			p.done()
		}
	}
	m, err := anomnet.New(bb, cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := m.Fit(ctx, imgs); err != nil {
		return fmt.Errorf("fit %s: %w", data, err)
	}
	took := time.Since(start)
	if err := m.SaveFile(*out); err != nil {
		return err
	}
	cal := m.Calibration()
	fmt.Fprintf(stdout, "fitted %s on %d images in %.1f s; image threshold %.4g, pixel threshold %.4g; wrote %s\n",
		cat.Name, len(imgs), took.Seconds(), cal.ImageThreshold, cal.PixelThreshold, *out)
	return nil
}

// report is eval's result, also written as JSON.
type report struct {
	Model      string    `json:"model"`
	Category   string    `json:"category"`
	Images     int       `json:"images"`
	PredictSec float64   `json:"predict_seconds"`
	Rows       []evalRow `json:"rows"`
}

type evalRow struct {
	Defect string   `json:"defect"`
	Images int      `json:"images"`
	IAUROC *float64 `json:"image_auroc"`
	PAUROC *float64 `json:"pixel_auroc"`
	AUPRO  *float64 `json:"aupro"`
}

func eval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	cache := fs.String("cache", "", "weights cache directory")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 2 {
		return usageError{"usage: anomnet eval [flags] MODEL DATA/CATEGORY"}
	}
	modelPath, data := fs.Arg(0), fs.Arg(1)
	cat, err := openCategory(data)
	if err != nil {
		return err
	}
	bb, err := loadResNet50(ctx, *cache, stderr)
	if err != nil {
		return err
	}
	m, err := anomnet.LoadFile(modelPath, bb)
	if err != nil {
		return err
	}
	items, imgs, err := prepared(ctx, m.Config(), cat.Test, stderr, "test")
	if err != nil {
		return err
	}
	p := newProgress(stderr, "predict")
	start := time.Now()
	var results []anomnet.Result
	for lo := 0; lo < len(imgs); lo += 32 {
		rs, err := m.PredictBatch(ctx, imgs[lo:min(lo+32, len(imgs))])
		if err != nil {
			return fmt.Errorf("predict %s: %w", items[lo].Path, err)
		}
		results = append(results, rs...)
		p.update(len(results), len(imgs), "")
	}
	p.done()
	rep := report{Model: modelPath, Category: cat.Name, Images: len(imgs), PredictSec: time.Since(start).Seconds()}
	groups := append([]string{"all"}, cat.Defects()...)
	for _, g := range groups {
		row, err := evaluate(items, results, g, cat.HasMasks)
		if err != nil {
			return err
		}
		rep.Rows = append(rep.Rows, row)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\timages\tI-AUROC\tP-AUROC\tAUPRO\t\n", cat.Name)
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", r.Defect, r.Images, fmtMetric(r.IAUROC), fmtMetric(r.PAUROC), fmtMetric(r.AUPRO))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "predict: %d images in %.1f s (%.2f img/s)\n", len(imgs), rep.PredictSec, float64(len(imgs))/rep.PredictSec)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
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
		if masks {
			if err := px.Add(rs[i].Map, it.Mask, rs[i].Size); err != nil {
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

// parseOne parses flags and one positional argument.
func parseOne(fs *flag.FlagSet, args []string, stderr io.Writer, what string) (string, error) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return "", usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return "", usageError{fmt.Sprintf("usage: anomnet %s [flags] %s", fs.Name(), what)}
	}
	return fs.Arg(0), nil
}

// checkWritable fails early, before hours of training, when the output's
// directory cannot take a file.
func checkWritable(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".anomnet-check-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// progress prints a progress line: redrawn in place on a terminal, a line
// every few seconds otherwise.
type progress struct {
	w         io.Writer
	label     string
	tty       bool
	start     time.Time
	last      time.Time
	lastLabel string
}

func newProgress(w io.Writer, label string) *progress {
	p := &progress{w: w, label: label, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(done, total int, extra string) {
	now := time.Now()
	if p.label != p.lastLabel {
		p.start, p.lastLabel = now, p.label
	}
	if !p.tty && now.Sub(p.last) < 5*time.Second && done != total {
		return
	}
	p.last = now
	eta := ""
	if done > 0 && done < total {
		left := time.Duration(float64(now.Sub(p.start)) / float64(done) * float64(total-done))
		eta = " ETA " + left.Round(time.Second).String()
	}
	bar := ""
	if total > 0 {
		n := 20 * done / total
		bar = "[" + strings.Repeat("#", n) + strings.Repeat(".", 20-n) + "] "
	}
	line := fmt.Sprintf("%s %s%d/%d%s %s", p.label, bar, done, total, eta, extra)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
