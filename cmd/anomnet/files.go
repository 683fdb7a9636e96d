package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/internal/atomicfile"
)

// openCategory lists DATA/CAT as an MVTec AD category; errors name the
// folder or file at fault.
func openCategory(path string) (*dataset.Category, error) {
	path = filepath.Clean(path)
	return dataset.MVTec(filepath.Dir(path), filepath.Base(path))
}

// loadBackbone loads the default backbone, fetching the weights on first
// use. A variable so that tests can check which failures come before it.
var loadBackbone = func(ctx context.Context, cache string, stderr io.Writer) (anomnet.Backbone, error) {
	return backbone.LoadResNet50(ctx, backbone.FetchOptions{CacheDir: cache, Progress: stderr})
}

// checkInputFlag refuses an -input that names no input ("" is any), before
// the slow work.
func checkInputFlag(mode string) error {
	switch mode {
	case "", anomnet.InputCrop, anomnet.InputFull, anomnet.InputTile:
		return nil
	}
	return usageError{msg: fmt.Sprintf("-input %q: want %s, %s or %s", mode, anomnet.InputCrop, anomnet.InputFull, anomnet.InputTile)}
}

// checkInputMode refuses a model fitted with another input than mode (""
// accepts any; checkInputFlag has checked mode).
func checkInputMode(mode string, m *anomnet.Model, path string) error {
	if got := m.Config().Input; mode != "" && got != mode {
		return fmt.Errorf("%s was fitted with -input %s, not %s: fit a model with -input %s for this", path, got, mode, mode)
	}
	return nil
}

// withFrame returns cfg with the input auto resolved and, for the full
// input, the frame of the samples' median size (Config.Frame), read from
// their headers. Errors name the file. A note on stderr says when auto
// chose the full input, and how many images the frame distorts.
func withFrame(cfg anomnet.Config, samples []dataset.Sample, stderr io.Writer) (anomnet.Config, error) {
	auto := cfg.Input == anomnet.InputAuto
	if !auto && (cfg.Input != anomnet.InputFull || cfg.Width > 0) {
		return cfg, nil
	}
	sizes := make([]image.Point, len(samples))
	for i, s := range samples {
		w, h, err := dataset.CheckHeader(s.Path, cfg.MaxPixels)
		if err != nil {
			return cfg, err
		}
		sizes[i] = image.Pt(w, h)
	}
	cfg = cfg.Frame(sizes)
	if auto && cfg.Input == anomnet.InputFull {
		fmt.Fprintf(stderr, "input auto: full, frame %dx%d (the training images' median elongation, %.2f, is beyond 4:3; -input crop squashes them to squares)\n",
			cfg.Width, cfg.Height, anomnet.Elongation(sizes))
	}
	noteOffFrame(stderr, cfg, sizes, "training images")
	return cfg, nil
}

// offFrame reports whether an image of size p differs in aspect ratio
// from the w x h frame by more than 5% (the frame's rounding to 16
// pixels moves it by less).
func offFrame(p image.Point, w, h int) bool {
	r := float64(p.X) * float64(h) / (float64(p.Y) * float64(w))
	return r < 1/1.05 || r > 1.05
}

// noteOffFrame writes a note when some of the images of sizes have
// another shape than the full input's frame, once turned to its
// orientation where the model turns them: they are resized to it, and
// their aspect ratio is lost.
func noteOffFrame(stderr io.Writer, cfg anomnet.Config, sizes []image.Point, what string) {
	if cfg.Input != anomnet.InputFull || cfg.Width < 1 {
		return
	}
	n, example := 0, image.Point{}
	pre := cfg.Preprocess()
	for _, p := range sizes {
		q := p // in the frame's orientation, where the model turns it
		if pre.Turns(p.X, p.Y) {
			q = image.Pt(p.Y, p.X)
		}
		if p.X > 0 && p.Y > 0 && offFrame(q, cfg.Width, cfg.Height) {
			if n == 0 {
				example = p
			}
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(stderr, "note: %d of %d %s (for example %dx%d) have another shape than the %dx%d frame: they are resized to it and lose their aspect ratio (-input tile keeps each image's own)\n",
			n, len(sizes), what, example.X, example.Y, cfg.Width, cfg.Height)
	}
}

// loadImages decodes and preprocesses samples as cfg says, in parallel,
// showing progress, and returns them also as images marked Prepared for
// the model. Errors name the file.
func loadImages(ctx context.Context, cfg anomnet.Config, samples []dataset.Sample, p *progress, what string) ([]dataset.Item, []image.Image, error) {
	p.begin(what, "img", len(samples))
	l := &dataset.Loader{Pre: cfg.Preprocess(), CacheBytes: -1,
		Progress: func(done, total int) { p.update(done, "") }}
	var items []dataset.Item
	var err error
	pprof.Do(ctx, pprof.Labels("stage", "decode"), func(ctx context.Context) { items, err = l.Load(ctx, samples) })
	p.end()
	if err != nil {
		return nil, nil, err
	}
	imgs := make([]image.Image, len(items))
	for i, it := range items {
		imgs[i] = anomnet.Prepared{RGBA: it.Image}
	}
	return items, imgs, nil
}

// checkOutputFile fails early, before minutes of work, when path cannot
// become a file: its folder is missing, is a file, or refuses writes, or
// path is a folder. It leaves nothing behind.
func checkOutputFile(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("cannot write %s: it is a folder", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".anomnet-check-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// outputDir creates dir (and its parents) and checks that it takes files.
func outputDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create the output folder %s: %w", dir, unwrapPath(err))
	}
	return checkOutputFile(filepath.Join(dir, "x"))
}

// unwrapPath drops the *PathError's path and operation, which name a
// temporary file, and keeps the reason.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadModel loads the backbone (from the weights cache) and then the model
// saved at path for it.
func loadModel(ctx context.Context, cache, path string, stderr io.Writer) (m *anomnet.Model, err error) {
	pprof.Do(ctx, pprof.Labels("stage", "load"), func(ctx context.Context) {
		var bb anomnet.Backbone
		if bb, err = loadBackbone(ctx, cache, stderr); err == nil {
			m, err = anomnet.LoadFile(path, bb)
		}
	})
	return m, err
}

// writeFile writes a file through a temporary file in its folder, renamed
// into place once complete, so that path never holds a partial file.
func writeFile(path string, write func(w io.Writer) error) error {
	if err := atomicfile.Write(path, 0o644, write); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	return nil
}
