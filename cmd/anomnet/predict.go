package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/internal/parallel"
	"github.com/org/anomnet/internal/report"
	"golang.org/x/image/draw"
)

func predict(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("predict", "MODEL IMAGE|DIR",
		"Scores an image, or every image under a folder (recursively), with MODEL. For each image it\n"+
			"writes STEM.overlay.png (the anomaly map over the preprocessed image) and STEM.mask.png (the\n"+
			"pixels above the pixel threshold) to -out, mirroring the folders under DIR, and prints a JSON\n"+
			"line: {\"path\", \"score\", \"anomalous\", \"overlay\", \"mask\", \"map\"}. -save-maps also writes\n"+
			"STEM.npy, the raw float32 score map (crop x crop) for numpy.load. Run on DATA/CAT/test it\n"+
			"writes OUT/<defect>/<stem>.npy, the layout scripts/check_metrics.py reads. With a model\n"+
			"fitted with -input full, the overlay, mask and map have each image's own width and height.")
	out := fs.String("out", "predictions", "output folder")
	saveMaps := fs.Bool("save-maps", false, "also write each raw score map as a NumPy .npy file")
	chunk := fs.Int("chunk", 32, "images decoded and scored at a time (bounds memory; a model fitted with -input tile takes one at a time unless set)")
	rate := fs.rateFlag()
	ownSize := fs.Bool("own-size", false, "with a crop model too, write the overlay, mask and map at each image's own size (the map NaN where the crop did not look)")
	mode := fs.String("input", "", "the input the model must have been fitted with, crop, full or tile (\"\": the model's own); with full and tile the outputs have each image's own size")
	cache := fs.cacheFlag()
	pos, err := fs.parse(args, 2, stdout)
	if err != nil {
		return err
	}
	if *chunk < 1 {
		return usageError{msg: "predict: -chunk must be at least 1"}
	}
	if err := checkRate("predict", *rate); err != nil {
		return err
	}
	if err := checkInputFlag(*mode); err != nil {
		return err
	}
	modelPath, input := pos[0], pos[1]
	f, err := os.Open(modelPath)
	if err != nil {
		return err
	}
	f.Close()
	inputs, err := listInputs(input, *out)
	if err != nil {
		return err
	}
	// Every header is read before the backbone loads, so that an
	// unreadable or oversized image fails at once.
	for i, in := range inputs {
		w, h, err := dataset.CheckHeader(in.path, 0)
		if err != nil {
			return err
		}
		inputs[i].size = image.Pt(w, h)
	}
	if err := outputDir(*out); err != nil {
		return err
	}
	m, err := loadModel(ctx, *cache, modelPath, stderr)
	if err != nil {
		return err
	}
	if err := checkInputMode(*mode, m, modelPath); err != nil {
		return err
	}
	sizes := make([]image.Point, len(inputs))
	for i, in := range inputs {
		sizes[i] = in.size
	}
	noteOffFrame(stderr, m.Config(), sizes, "images")
	if m.Config().Input == anomnet.InputCrop && !*ownSize {
		// The crop input's outputs stay over the crop.
		for i := range inputs {
			inputs[i].size = image.Point{}
		}
	}
	if err := rethreshold(m, *rate, modelPath, stderr); err != nil {
		return err
	}
	cfg, cal := m.Config(), m.Calibration()
	lo, hi := cal.HeatRange()
	loader := &dataset.Loader{Pre: cfg.Preprocess(), CacheBytes: -1}
	p := newProgress(stderr)
	p.begin("predict", "img", len(inputs))
	defer p.end()
	enc := json.NewEncoder(stdout)
	write := func(c predictChunk) error {
		lines, err := writePredictions(m, *out, c, lo, hi, *saveMaps)
		if err != nil {
			return err
		}
		for i, line := range lines {
			if err := enc.Encode(line); err != nil {
				return err
			}
			p.update(c.start+i+1, "")
		}
		return nil
	}
	if m.Config().Input == anomnet.InputTile && !fs.isSet("chunk") {
		// Tiled images may be of any size: one decoded at a time.
		*chunk = 1
	}
	return pipeline(ctx, inputs, *chunk, loader, m.PredictBatch, write)
}

// predictChunk is a chunk of predict's inputs on its way through the
// pipeline: decoded (items), then scored (results).
type predictChunk struct {
	start   int
	inputs  []input
	items   []dataset.Item
	results []anomnet.Result
}

// pipeline decodes, scores and writes the inputs chunk by chunk, the three
// at once: while one chunk is scored, the next is decoded and the last
// one's outputs are written, so that decoding and PNG encoding, which the
// scoring would otherwise wait for, fill the cores it leaves idle. Outputs
// are written in input order. The first error stops every stage and is
// returned (a write's before the scoring's it cancelled); no goroutine
// outlives the call.
func pipeline(ctx context.Context, inputs []input, chunk int, loader *dataset.Loader,
	score func(context.Context, []image.Image) ([]anomnet.Result, error), write func(predictChunk) error) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	decoded := make(chan predictChunk, 1)
	var loadErr error // set before decoded closes
	go func() {
		defer close(decoded)
		for start := 0; start < len(inputs); start += chunk {
			c := predictChunk{start: start, inputs: inputs[start:min(start+chunk, len(inputs))]}
			samples := samplesOf(c.inputs)
			var err error
			pprof.Do(ctx, pprof.Labels("stage", "decode"), func(ctx context.Context) { c.items, err = loader.Load(ctx, samples) })
			if err != nil {
				loadErr = err
				return
			}
			select {
			case decoded <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	scored := make(chan predictChunk, 1)
	written := make(chan error, 1)
	go func() {
		var err error
		for c := range scored {
			if err == nil {
				pprof.Do(ctx, pprof.Labels("stage", "write"), func(context.Context) { err = write(c) })
				if err != nil {
					cancel()
				}
			}
		}
		written <- err
	}()
	var scoreErr error
	for c := range decoded {
		imgs := make([]image.Image, len(c.items))
		for i, it := range c.items {
			imgs[i] = anomnet.Prepared{RGBA: it.Image}
		}
		rs, err := score(ctx, imgs)
		if err != nil {
			scoreErr = fmt.Errorf("predict %s to %s: %w", c.inputs[0].path, c.inputs[len(c.inputs)-1].path, err)
			cancel()
			break
		}
		c.results = rs
		select {
		case scored <- c:
		case <-ctx.Done():
		}
	}
	close(scored)
	writeErr := <-written
	cancel()
	for range decoded { // the decoder sees the cancel and closes
	}
	switch {
	case writeErr != nil:
		return writeErr
	case scoreErr != nil:
		return scoreErr
	case loadErr != nil:
		return loadErr
	}
	return parent.Err()
}

// writePredictions writes the outputs of a scored chunk, images in
// parallel, and returns their JSON lines in order.
func writePredictions(m *anomnet.Model, out string, c predictChunk, lo, hi float64, saveMaps bool) ([]prediction, error) {
	lines := make([]prediction, len(c.results))
	errs := make([]error, len(c.results))
	parallel.For(runtime.GOMAXPROCS(0), len(c.results), func(_, lo0, hi0 int) {
		for i := lo0; i < hi0; i++ {
			lines[i], errs[i] = writePrediction(m, out, c.inputs[i], c.items[i].Image, c.results[i], lo, hi, saveMaps)
		}
	})
	return lines, errors.Join(errs...)
}

// samplesOf is the dataset samples that load inputs.
func samplesOf(inputs []input) []dataset.Sample {
	samples := make([]dataset.Sample, len(inputs))
	for i, in := range inputs {
		samples[i] = dataset.Sample{Path: in.path}
	}
	return samples
}

// input is an image to score and where its outputs go, relative to -out
// and without an extension.
type input struct {
	path, stem string
	// size is the image's own, where the outputs are resampled to it (the
	// full input); zero otherwise.
	size image.Point
}

// listInputs returns the image at path, or the images under the folder
// path (hidden entries and the output folder outDir skipped, so that a second
// run does not score the first one's pictures), sorted; each output stem
// mirrors the image's place under the folder.
func listInputs(path, outDir string) ([]input, error) {
	outAbs, err := filepath.Abs(outDir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if !isImageFile(path) {
			return nil, fmt.Errorf("%s: not an image file (want %s)", path, strings.Join(imageExts, ", "))
		}
		return []input{{path: path, stem: stemOf(filepath.Base(path))}}, nil
	}
	var out []input
	taken := map[string]string{}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if abs, err := filepath.Abs(p); err == nil && abs == outAbs {
				return filepath.SkipDir
			}
		}
		if d.IsDir() || !isImageFile(p) {
			return nil
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		stem := stemOf(rel)
		if prev, dup := taken[stem]; dup {
			return fmt.Errorf("%s and %s would write the same outputs %s.*; rename one", prev, p, stem)
		}
		taken[stem] = p
		out = append(out, input{path: p, stem: stem})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no image files (%s) in the folder", path, strings.Join(imageExts, ", "))
	}
	return out, nil
}

// imageExts are the extensions that the dataset package decodes.
var imageExts = []string{".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}

func isImageFile(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	for _, e := range imageExts {
		if ext == e {
			return true
		}
	}
	return false
}

func stemOf(p string) string { return strings.TrimSuffix(p, filepath.Ext(p)) }

// prediction is predict's JSON line for one image.
type prediction struct {
	Path      string  `json:"path"`
	Score     float64 `json:"score"`
	Anomalous bool    `json:"anomalous"`
	Overlay   string  `json:"overlay"`
	Mask      string  `json:"mask"`
	Map       string  `json:"map,omitempty"`
}

// writePrediction writes one image's overlay, mask and (saveMap) score
// map under out.
func writePrediction(m *anomnet.Model, out string, in input, img *image.RGBA, r anomnet.Result, lo, hi float64, saveMap bool) (prediction, error) {
	if in.size.X > 0 && (r.Width != in.size.X || r.Height != in.size.Y) {
		var err error
		if r, err = m.InputMap(r, in.size.X, in.size.Y); err != nil {
			return prediction{}, fmt.Errorf("%s: %w", in.path, err)
		}
		big := image.NewRGBA(image.Rect(0, 0, in.size.X, in.size.Y))
		if m.Config().Input == anomnet.InputCrop {
			// The crop saw part of the image: the overlay shows all of it.
			src, err := dataset.Open(in.path)
			if err != nil {
				return prediction{}, err
			}
			draw.Draw(big, big.Bounds(), src, src.Bounds().Min, draw.Src)
		} else {
			draw.BiLinear.Scale(big, big.Bounds(), img, img.Bounds(), draw.Src, nil)
		}
		img = big
	}
	base := filepath.Join(out, in.stem)
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return prediction{}, fmt.Errorf("cannot create the output folder %s: %w", filepath.Dir(base), unwrapPath(err))
	}
	line := prediction{Path: in.path, Score: r.Score, Anomalous: r.Anomalous, Overlay: base + ".overlay.png", Mask: base + ".mask.png"}
	if err := report.WritePNG(line.Overlay, report.Overlay(img, r.Map, r.Width, r.Height, lo, hi, 0.6)); err != nil {
		return line, err
	}
	if err := report.WritePNG(line.Mask, report.MaskImage(r.Mask, r.Width, r.Height)); err != nil {
		return line, err
	}
	if saveMap {
		line.Map = base + ".npy"
		if err := writeFile(line.Map, func(w io.Writer) error { return writeNPY(w, r.Map, r.Height, r.Width) }); err != nil {
			return line, err
		}
	}
	return line, nil
}

// rethreshold sets m's thresholds for false-alarm rate r from its kept
// scores (r = 0: leaves them) and says on stderr what it set, and when the
// kept scores cannot resolve r.
func rethreshold(m *anomnet.Model, r float64, modelPath string, stderr io.Writer) error {
	if r == 0 {
		return nil
	}
	resolved, err := m.SetFalseAlarmRate(r)
	if err != nil {
		return fmt.Errorf("%s: %w", modelPath, err)
	}
	cal := m.Calibration()
	fmt.Fprintf(stderr, "thresholds for a false-alarm rate of %g: image %.4g, pixel %.4g\n", r, cal.ImageThreshold, cal.PixelThreshold)
	if resolved > r {
		fmt.Fprintf(stderr, "note: the model kept %d normal images' scores, which resolve rates down to %.3g, not %g; the image threshold is the highest of them\n",
			len(cal.Scores), resolved, r)
	}
	return nil
}
