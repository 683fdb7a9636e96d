package main

import (
	"context"
	"fmt"
	"image"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
)

// The demo's data, chosen to finish in a minute or two on two CPU cores,
// weights fetch aside: one category, fitted with the library's defaults
// (DefaultConfig), so that the demo shows what a user gets.
var demoSynth = dataset.SynthOptions{Categories: []string{"washer"}, Train: 40, TestGood: 16, TestDefect: 30}

func demoConfig() anomnet.Config {
	cfg := anomnet.DefaultConfig()
	cfg.BatchSize = 8 // several steps per epoch on 40 images
	return cfg
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "",
		"Writes the built-in synthetic data set (dataset.WriteSynthetic) to DIR/data, fits a model on it,\n"+
			"evaluates it, and writes the report with its pictures and the training plots to DIR.\n"+
			"The ResNet-50 weights are fetched on first use.")
	out := fs.String("out", "anomnet-demo", "output folder DIR")
	input := fs.String("input", anomnet.DefaultConfig().Input, "input: auto (full for images wider or taller than 4:3, else crop), crop (resize, then the centred crop), full (the whole image, its aspect ratio kept) or tile (the image at its own resolution, in tiles)")
	cache := fs.cacheFlag()
	if _, err := fs.parse(args, 0, stdout); err != nil {
		return err
	}
	start := time.Now()
	cfg := demoConfig()
	cfg.Input = *input
	if err := cfg.Validate(); err != nil {
		return usageError{msg: err.Error()}
	}
	cat := demoSynth.Categories[0]
	defects, err := dataset.SynthDefects(cat)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo: synthetic %q (defects %s): %d training images, %d normal and %d defective test images, %dx%d px, data seed %d\n",
		cat, strings.Join(defects, ", "), demoSynth.Train, demoSynth.TestGood, demoSynth.TestDefect, dataset.SynthDefaultSize, dataset.SynthDefaultSize, demoSynth.Seed)
	seeding := cfg.Init
	var pre string
	if cfg.Input == anomnet.InputAuto {
		// The synthetic images are square: the crop.
		size := dataset.SynthDefaultSize
		cfg = cfg.Frame([]image.Point{image.Pt(size, size)})
		pre = "input auto: "
	}
	switch cfg.Input {
	case anomnet.InputFull:
		pre += fmt.Sprintf("full frame, shorter side %d, longer side at most %d", cfg.FullSide, cfg.FullMax)
	case anomnet.InputTile:
		pre += fmt.Sprintf("tiles of %d px overlapping by %g", cfg.TileSize, cfg.TileOverlap)
	default:
		pre += fmt.Sprintf("resize %d crop %d", cfg.Resize, cfg.Crop)
	}
	fmt.Fprintf(stdout, "demo: ResNet-50 taps %s, K %d seeded by %s, %d+%d epochs (METHOD.md: 10+10), batch %d, lr %g, %s, seed %d\n",
		strings.Join(cfg.Taps, "+"), cfg.K, seeding, cfg.Epochs1, cfg.Epochs2, cfg.BatchSize, cfg.LR, pre, cfg.Seed)
	if err := outputDir(*out); err != nil {
		return err
	}
	dataDir := filepath.Join(*out, "data")
	p := newProgress(stderr)
	p.begin("data", "img", len(demoSynth.Categories)*(demoSynth.Train+demoSynth.TestGood+demoSynth.TestDefect))
	err = dataset.WriteSynthetic(dataDir, demoSynth, func(done, _ int) { p.update(done, "") })
	p.end()
	if err != nil {
		return err
	}
	job := fitJob{data: filepath.Join(dataDir, cat), out: filepath.Join(*out, "model.anm"), plots: *out, cache: *cache, cfg: cfg}
	res, err := job.run(ctx, stdout, stderr)
	if err != nil {
		return err
	}
	tc, err := openCategory(job.data)
	if err != nil {
		return err
	}
	ev, err := evaluateModel(ctx, res.model, tc, stderr)
	if err != nil {
		return err
	}
	ev.rep.Model, ev.rep.Data = job.out, job.data
	ev.printTable(stdout)
	if _, err := ev.write(*out, res.plots); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo: done in %s; open %s (pictures beside it in %s)\n",
		fmtDuration(time.Since(start)), filepath.Join(*out, "report.md"), *out)
	return nil
}
