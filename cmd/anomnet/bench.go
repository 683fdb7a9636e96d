package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/serve"
)

//go:embed torch_backbone.py
var torchBackbone string

func benchBackbone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench backbone", "", "Times the backbone's forward pass on zero images, optionally beside PyTorch's.\n"+
		"With -peer, PyTorch runs in a helper process and the two alternate batch by batch, so that\n"+
		"both see the machine in the same state (on a shared machine its speed drifts within seconds);\n"+
		"each round prints both medians and their ratio, and the end the median ratio of all batch pairs.")
	batch := fs.Int("batch", 8, "images per batch")
	size := fs.Int("size", 224, "input height and width")
	iters := fs.Int("iters", 5, "timed batches per round (after one warm-up)")
	rounds := fs.Int("rounds", 1, "rounds of -iters batches")
	tap := fs.String("tap", "stage3", "the last layer computed")
	cache := fs.cacheFlag()
	peer := fs.Bool("peer", false, "also time PyTorch (torch and torchvision) on the same work, for a ratio")
	python := fs.String("python", "python3", "the Python that runs the -peer timing")
	if _, err := fs.parse(args, 0, stdout); err != nil {
		return err
	}
	if *batch < 1 || *size < 32 || *iters < 1 || *rounds < 1 {
		return usageError{msg: "need -batch >= 1, -size >= 32, -iters >= 1, -rounds >= 1"}
	}
	if *peer && *tap != "stage3" {
		return usageError{msg: "-peer times torchvision's ResNet-50 up to layer3, which is -tap stage3"}
	}
	net, err := backbone.LoadResNet50(ctx, backbone.FetchOptions{CacheDir: *cache, Progress: stderr})
	if err != nil {
		return err
	}
	var pp *peerProcess
	if *peer {
		if pp, err = startPeer(ctx, *python, torchBackbone, stderr, *batch, *size, *iters, runtime.GOMAXPROCS(0)); err != nil {
			return err
		}
		defer pp.close()
	}
	dev := tensor.Default()
	x := dev.Zeros(*batch, 3, *size, *size)
	defer dev.Free(x)
	var roundRatios, pairRatios []float64
	for round := 1; round <= *rounds; round++ {
		times := make([]float64, 0, *iters)
		var peerTimes []float64
		for i := range *iters + 1 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			start := time.Now()
			out, err := net.Forward(dev, x, *tap)
			if err != nil {
				return err
			}
			dev.Free(out[0])
			if i == 0 { // the first batch warms up
				continue
			}
			t := time.Since(start).Seconds()
			times = append(times, t)
			if pp != nil {
				pt, err := pp.batch()
				if err != nil {
					return err
				}
				peerTimes = append(peerTimes, pt)
				pairRatios = append(pairRatios, pt/t)
			}
			fmt.Fprintf(stderr, "\rround %d/%d, batch %d/%d", round, *rounds, i, *iters)
		}
		fmt.Fprintln(stderr)
		med := median(times)
		ips := float64(*batch) / med
		fmt.Fprintf(stdout, "anomnet  %s up to %s, batch %d, %dx%d, %s, GOMAXPROCS %d: %.2f images/s (median of %d batches, %.3f s each)\n",
			net.Name(), *tap, *batch, *size, *size, dev.Name(), runtime.GOMAXPROCS(0), ips, *iters, med)
		if pp == nil {
			continue
		}
		pmed := median(peerTimes)
		peerIPS := float64(*batch) / pmed
		fmt.Fprintf(stdout, "pytorch  torchvision resnet50 up to layer3, batch %d, %dx%d, torch %s, %d threads: %.2f images/s (median of %d batches, %.3f s each, alternating with anomnet's)\n",
			*batch, *size, *size, pp.torch, pp.threads, peerIPS, *iters, pmed)
		roundRatios = append(roundRatios, ips/peerIPS)
		fmt.Fprintf(stdout, "ratio    anomnet/pytorch = %.2f\n", ips/peerIPS)
	}
	if len(roundRatios) > 1 {
		fmt.Fprintf(stdout, "median ratio over %d rounds: %.2f (each: %s)\n", len(roundRatios), median(roundRatios), fmtRatios(roundRatios))
	}
	if len(pairRatios) > 1 {
		fmt.Fprintf(stdout, "median ratio over %d batch pairs: %.2f\n", len(pairRatios), median(pairRatios))
	}
	return nil
}

// peerProcess is a PyTorch peer script run in serve mode: after its
// warm-up it times one batch per line it reads.
type peerProcess struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Scanner
	torch   string
	threads int
}

// startPeer starts script in serve mode with the given arguments and waits
// for it to be ready.
func startPeer(ctx context.Context, python, script string, stderr io.Writer, args ...int) (*peerProcess, error) {
	argv := []string{"-c", script}
	for _, a := range args {
		argv = append(argv, fmt.Sprint(a))
	}
	cmd := exec.CommandContext(ctx, python, append(argv, "serve")...)
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, peerError(python, "", err)
	}
	p := &peerProcess{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	var ready struct {
		Ready   bool   `json:"ready"`
		Torch   string `json:"torch"`
		Threads int    `json:"threads"`
	}
	if err := p.read(&ready); err != nil || !ready.Ready {
		p.close()
		return nil, peerError(python, " did not start", err)
	}
	p.torch, p.threads = ready.Torch, ready.Threads
	return p, nil
}

// read decodes the peer's next line into v.
func (p *peerProcess) read(v any) error {
	if !p.out.Scan() {
		if err := p.out.Err(); err != nil {
			return err
		}
		return io.ErrUnexpectedEOF
	}
	return json.Unmarshal(p.out.Bytes(), v)
}

// batch has the peer time one batch and returns its seconds.
func (p *peerProcess) batch() (float64, error) {
	if _, err := io.WriteString(p.in, "\n"); err != nil {
		return 0, fmt.Errorf("PyTorch peer: %v", err)
	}
	var r struct {
		S float64 `json:"s"`
	}
	if err := p.read(&r); err != nil || r.S <= 0 {
		return 0, fmt.Errorf("PyTorch peer: no timing (%v)", err)
	}
	return r.S, nil
}

// close ends the peer: EOF on its input, then wait.
func (p *peerProcess) close() {
	p.in.Close()
	p.cmd.Wait()
}

// median returns the median of xs (the upper one of an even count); it
// sorts a copy.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, " ")
}

// peerError is the error of a PyTorch peer that could not run, with what
// it needs.
func peerError(python, what string, err error) error {
	return fmt.Errorf("PyTorch peer (%s with torch and torchvision; Debian: apt-get install python3-torchvision)%s: %v", python, what, err)
}

// peerResult is what a PyTorch peer script prints.
type peerResult struct {
	Torch   string  `json:"torch"`
	Threads int     `json:"threads"`
	Median  float64 `json:"median_s"`
}

// runPeer runs an embedded PyTorch script with the given arguments and
// reads its one JSON line.
func runPeer(ctx context.Context, python, script string, stderr io.Writer, args ...int) (peerResult, error) {
	var argv []string
	for _, a := range args {
		argv = append(argv, fmt.Sprint(a))
	}
	cmd := exec.CommandContext(ctx, python, append([]string{"-c", script}, argv...)...)
	cmd.Stderr = stderr
	b, err := cmd.Output()
	if err != nil {
		return peerResult{}, peerError(python, "", err)
	}
	var res peerResult
	if err := json.Unmarshal(b, &res); err != nil || res.Median <= 0 {
		return peerResult{}, fmt.Errorf("PyTorch peer printed %q: %v", b, err)
	}
	return res, nil
}

//go:embed torch_adapter.py
var torchAdapter string

// benchAdapter times one training step of the adapter's convolution: a
// 1x1 convolution from C+2 (CoordConv) to C channels with bias, forward,
// both backward passes and an Adam step on the weights and bias.
func benchAdapter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench adapter", "", "Times one training step of the adapter's 1x1 convolution, optionally beside PyTorch's.")
	batch := fs.Int("batch", 32, "images per batch")
	channels := fs.Int("channels", 1536, "feature channels C (the convolution maps C+2 to C)")
	size := fs.Int("size", 28, "feature map height and width")
	iters := fs.Int("iters", 3, "timed steps (after one warm-up)")
	rounds := fs.Int("rounds", 1, "repetitions of the timing (each followed by the peer's, with -peer)")
	peer := fs.Bool("peer", false, "also time PyTorch on the same step, for a ratio")
	python := fs.String("python", "python3", "the Python that runs the -peer timing")
	if _, err := fs.parse(args, 0, stdout); err != nil {
		return err
	}
	if *batch < 1 || *channels < 1 || *size < 1 || *iters < 1 || *rounds < 1 {
		return usageError{msg: "need -batch, -channels, -size, -iters and -rounds >= 1"}
	}
	dev := tensor.Default()
	n, c, s := *batch, *channels, *size
	r := rand.New(rand.NewPCG(1, 2))
	randn := func(shape ...int) *tensor.Tensor {
		t := tensor.New(shape...)
		for i := range t.Float32s() {
			t.Float32s()[i] = float32(r.NormFloat64())
		}
		return dev.FromHost(t)
	}
	x, dy := randn(n, c+2, s, s), randn(n, c, s, s)
	w, b := randn(c, c+2, 1, 1), randn(c)
	y, dx := dev.Zeros(n, c, s, s), dev.Zeros(n, c+2, s, s)
	dw, db := dev.Zeros(c, c+2, 1, 1), dev.Zeros(c)
	mw, vw, mb, vb := dev.Zeros(c, c+2, 1, 1), dev.Zeros(c, c+2, 1, 1), dev.Zeros(c), dev.Zeros(c)
	p := tensor.Conv2DParams{StrideH: 1, StrideW: 1}
	flops := 3 * 2 * float64(n*c*(c+2)*s*s)
	var ratios []float64
	step := 0
	for round := 1; round <= *rounds; round++ {
		times := make([]float64, 0, *iters)
		for i := range *iters + 1 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			start := time.Now()
			dev.Conv2D(y, x, w, b, p)
			dev.Conv2DBackwardData(dx, dy, w, p)
			dev.Conv2DBackwardFilter(dw, db, x, dy, p)
			step++
			ap := tensor.AdamParams{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 5e-4, Step: step}
			dev.Adam(w, dw, mw, vw, ap)
			dev.Adam(b, db, mb, vb, ap)
			if err := dev.Sync(); err != nil {
				return err
			}
			if i > 0 {
				times = append(times, time.Since(start).Seconds())
			}
			fmt.Fprintf(stderr, "\rround %d/%d, step %d/%d", round, *rounds, i, *iters)
		}
		fmt.Fprintln(stderr)
		med := median(times)
		fmt.Fprintf(stdout, "anomnet  adapter step, 1x1 %d->%d at %dx%d, batch %d, %s, GOMAXPROCS %d: %.3f steps/s (%.1f GFLOP/s, median of %d steps, %.3f s each)\n",
			c+2, c, s, s, n, dev.Name(), runtime.GOMAXPROCS(0), 1/med, flops/med/1e9, *iters, med)
		if !*peer {
			continue
		}
		res, err := runPeer(ctx, *python, torchAdapter, stderr, n, c, s, *iters, runtime.GOMAXPROCS(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pytorch  the same step, torch %s, %d threads: %.3f steps/s (%.1f GFLOP/s, median of %d steps, %.3f s each)\n",
			res.Torch, res.Threads, 1/res.Median, flops/res.Median/1e9, *iters, res.Median)
		ratios = append(ratios, res.Median/med)
		fmt.Fprintf(stdout, "ratio    anomnet/pytorch = %.2f\n", res.Median/med)
	}
	if len(ratios) > 1 {
		fmt.Fprintf(stdout, "median ratio over %d rounds: %.2f (each: %s)\n", len(ratios), median(ratios), fmtRatios(ratios))
	}
	return nil
}

// benchPredict times each stage of Predict on synthetic test images: the
// backbone (input conversion and forward pass to the taps), the adapter,
// the scoring (nearest centroid, upsampling, blur, copy to the host) and
// the whole PredictBatch, which also preprocesses nothing here (the
// images come prepared) and thresholds.
func benchPredict(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench predict", "",
		"Times the stages of Predict in images per second: backbone, adapter, scoring and the whole\n"+
			"PredictBatch, then the latency of one image at a time (p50, p99), with -model or a model\n"+
			"fitted here in seconds on a few synthetic images (one epoch per stage: the timing does not\n"+
			"depend on how well it learnt). The images are synthetic, or with -images a folder's (say a\n"+
			"category's test folder: the pruned nearest-centroid search runs at its real speed only on\n"+
			"images like those the model was fitted on). Each timed batch takes the next images in turn.")
	modelPath := fs.String("model", "", "model file (default: fit one quickly on synthetic images)")
	dir := fs.String("images", "", "image file or folder to time on (default: synthetic images)")
	batch := fs.Int("batch", 8, "images per batch")
	iters := fs.Int("iters", 3, "timed batches per stage (after one warm-up)")
	latency := fs.Int("latency", 50, "images predicted one at a time for the latency percentiles (0: none)")
	train := fs.Int("train", 8, "synthetic training images of the quick fit")
	cache := fs.cacheFlag()
	if _, err := fs.parse(args, 0, stdout); err != nil {
		return err
	}
	if *batch < 1 || *iters < 1 || *train < 1 || *latency < 0 {
		return usageError{msg: "bench predict: need -batch, -iters and -train >= 1, -latency >= 0"}
	}
	if *modelPath != "" {
		f, err := os.Open(*modelPath)
		if err != nil {
			return err
		}
		f.Close()
	}
	var inputs []input
	if *dir != "" {
		var err error
		if inputs, err = listInputs(*dir, os.DevNull); err != nil {
			return err
		}
	}
	bb, err := loadBackbone(ctx, *cache, stderr)
	if err != nil {
		return err
	}
	var m *anomnet.Model
	origin := *modelPath
	if *modelPath != "" {
		if m, err = anomnet.LoadFile(*modelPath, bb); err != nil {
			return err
		}
	} else {
		if m, err = quickModel(ctx, bb, *train, stderr); err != nil {
			return err
		}
		origin = fmt.Sprintf("fitted on %d synthetic images", *train)
	}
	cfg := m.Config()
	if cfg.Input == anomnet.InputTile {
		return fmt.Errorf("bench predict times a model's stages on batches of same-sized images; a model fitted with -input tile scores each image in tiles: time it with anomnet predict")
	}
	inW, inH := cfg.Preprocess().Size()
	n := *batch * (*iters + 1)
	var imgs []*image.RGBA
	source := "synthetic images"
	if inputs != nil {
		source = fmt.Sprintf("%d images of %s", len(inputs), *dir)
		imgs, err = loadPrepared(ctx, cfg, inputs[:min(n, len(inputs))], stderr)
	} else {
		imgs, err = benchImages(cfg, n)
	}
	if err != nil {
		return err
	}
	next := 0
	take := func() (raw, prepared []image.Image) {
		for range *batch {
			img := imgs[next%len(imgs)]
			next++
			raw, prepared = append(raw, img), append(prepared, anomnet.Prepared{RGBA: img})
		}
		return raw, prepared
	}
	dev := anomnet.DefaultDevice()
	scorer, set := m.Scorer(), m.Centroids()
	var maps []*anomnet.Tensor
	var feats *anomnet.Tensor
	stages := []struct {
		name string
		step func() error
	}{
		{"backbone", func() error {
			raw, _ := take()
			x, err := bb.Input(raw...)
			if err != nil {
				return err
			}
			xd := dev.FromHost(x)
			out, err := bb.Forward(dev, xd, cfg.Taps...)
			dev.Free(xd)
			if err != nil {
				return err
			}
			for _, t := range maps {
				dev.Free(t)
			}
			maps = out
			return dev.Sync()
		}},
		{"adapter", func() error {
			if feats != nil {
				dev.Free(feats)
			}
			feats = m.Adapter().Forward(dev, maps)
			return dev.Sync()
		}},
		{"scoring", func() error {
			pix, _ := scorer.Score(dev, set, feats)
			dev.ToHost(pix)
			dev.Free(pix)
			return dev.Sync()
		}},
		{"predict", func() error {
			_, prepared := take()
			_, err := m.PredictBatch(ctx, prepared)
			return err
		}},
	}
	fmt.Fprintf(stdout, "anomnet bench predict: %s, model %s, %d taps %v, K %d, %dx%d, %s, batch %d, %s, GOMAXPROCS %d\n",
		bb.Name(), origin, len(cfg.Taps), cfg.Taps, m.Centroids().K(), inW, inH, source, *batch, dev.Name(), runtime.GOMAXPROCS(0))
	for i, s := range stages {
		if i == 0 || s.name == "predict" {
			next = 0 // the scoring stages see the backbone stage's images; Predict starts over
		}
		times := make([]float64, 0, *iters)
		for i := range *iters + 1 {
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			if err := s.step(); err != nil {
				return fmt.Errorf("bench predict: %s: %w", s.name, err)
			}
			if i > 0 { // the first batch warms up
				times = append(times, time.Since(start).Seconds())
			}
		}
		slices.Sort(times)
		med := times[len(times)/2]
		fmt.Fprintf(stdout, "%-9s %9.2f images/s  (median of %d batches, %.3f s each)\n", s.name, float64(*batch)/med, *iters, med)
	}
	for _, t := range maps {
		dev.Free(t)
	}
	dev.Free(feats)
	if *latency == 0 {
		return nil
	}
	ms := make([]float64, 0, *latency)
	for i := range *latency + 1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		img := anomnet.Prepared{RGBA: imgs[i%len(imgs)]}
		start := time.Now()
		if _, err := m.Predict(img); err != nil {
			return fmt.Errorf("bench predict: latency: %w", err)
		}
		if i > 0 {
			ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		}
	}
	slices.Sort(ms)
	fmt.Fprintf(stdout, "latency   p50 %.1f ms, p99 %.1f ms, max %.1f ms  (%d images one at a time)\n",
		percentile(ms, 0.5), percentile(ms, 0.99), ms[len(ms)-1], len(ms))
	return nil
}

// percentile is the nearest-rank q-quantile of sorted xs (not empty).
func percentile(xs []float64, q float64) float64 {
	k := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(len(xs)-1, max(0, k))]
}

// loadPrepared decodes and preprocesses the images of inputs as cfg says.
func loadPrepared(ctx context.Context, cfg anomnet.Config, inputs []input, stderr io.Writer) ([]*image.RGBA, error) {
	items, _, err := loadImages(ctx, cfg, samplesOf(inputs), newProgress(stderr), "load")
	if err != nil {
		return nil, err
	}
	out := make([]*image.RGBA, len(items))
	for i, it := range items {
		out[i] = it.Image
	}
	return out, nil
}

// quickModel fits a model in seconds on n synthetic "washer" images, one
// epoch per stage: enough to time prediction, which does not depend on
// what the model learnt.
func quickModel(ctx context.Context, bb anomnet.Backbone, n int, stderr io.Writer) (*anomnet.Model, error) {
	cfg := anomnet.DefaultConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	imgs := make([]image.Image, n)
	for i := range imgs {
		img, _, err := dataset.SynthImage("washer", i, dataset.Good, dataset.SynthOptions{})
		if err != nil {
			return nil, err
		}
		imgs[i] = img
	}
	p := newProgress(stderr)
	log := &fitLog{cfg: cfg}
	cfg.Progress = log.progress(p, cfg)
	m, err := anomnet.New(bb, cfg)
	if err != nil {
		return nil, err
	}
	err = m.Fit(ctx, imgs)
	p.end()
	return m, err
}

// benchImages renders n synthetic test images, defective ones of each
// kind in turn, preprocessed as cfg says.
func benchImages(cfg anomnet.Config, n int) ([]*image.RGBA, error) {
	defects, err := dataset.SynthDefects("washer")
	if err != nil {
		return nil, err
	}
	pre := cfg.Preprocess()
	out := make([]*image.RGBA, n)
	for i := range out {
		img, _, err := dataset.SynthImage("washer", 2<<20+i, defects[i%len(defects)], dataset.SynthOptions{})
		if err != nil {
			return nil, err
		}
		out[i] = pre.Image(img)
	}
	return out, nil
}

// benchServe times the inspection service under concurrent clients on
// loopback beside batched Predict on the same images, in the same run.
func benchServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench serve", "",
		"Serves -model on a loopback port and posts -images' files to /v1/predict from -clients at\n"+
			"once for -duration (decoding, the queue, batching and JSON included), and times batched\n"+
			"Predict on the same images (prepared, as bench predict's whole-Predict line) before and\n"+
			"after, so that the ratio compares like with like on a machine whose speed drifts. It prints\n"+
			"throughput, p50 and p99 latency, the 503s, and the failures (there should be none).")
	modelPath := fs.String("model", "", "model file (required)")
	dir := fs.String("images", "", "image file or folder whose files the clients send (required)")
	clients := fs.Int("clients", 16, "concurrent clients")
	duration := fs.Duration("duration", 30*time.Second, "how long the clients send")
	batch := fs.Int("batch", 8, "images per batch, for Predict and the service")
	iters := fs.Int("iters", 6, "timed Predict batches before and after (after one warm-up)")
	most := fs.Int("max-images", 64, "the most images read from -images")
	cache := fs.cacheFlag()
	if _, err := fs.parse(args, 0, stdout); err != nil {
		return err
	}
	if *modelPath == "" || *dir == "" {
		return usageError{msg: "bench serve: -model and -images are required"}
	}
	if *clients < 1 || *duration <= 0 || *batch < 1 || *iters < 1 || *most < 1 {
		return usageError{msg: "bench serve: need -clients, -batch, -iters and -max-images >= 1, -duration > 0"}
	}
	inputs, err := listInputs(*dir, os.DevNull)
	if err != nil {
		return err
	}
	inputs = inputs[:min(*most, len(inputs))]
	bodies := make([][]byte, len(inputs))
	for i, in := range inputs {
		if bodies[i], err = os.ReadFile(in.path); err != nil {
			return err
		}
	}
	bb, err := loadBackbone(ctx, *cache, stderr)
	if err != nil {
		return err
	}
	m, err := serve.Open(*modelPath, bb)
	if err != nil {
		return err
	}
	cfg := m.Config()
	if cfg.Input == anomnet.InputTile {
		return errors.New("bench serve times batched Predict on same-sized images; a model fitted with -input tile scores each image in tiles")
	}
	imgs, err := loadPrepared(ctx, cfg, inputs, stderr)
	if err != nil {
		return err
	}
	// rate is PredictBatch's median images/s over -iters batches (after
	// one warm-up), each batch's images taken from batchOf within the
	// timing.
	rate := func(batchOf func() ([]image.Image, error)) (float64, error) {
		times := make([]float64, 0, *iters)
		for i := range *iters + 1 {
			start := time.Now()
			batchImgs, err := batchOf()
			if err != nil {
				return 0, err
			}
			if _, err := m.PredictBatch(ctx, batchImgs); err != nil {
				return 0, err
			}
			if i > 0 {
				times = append(times, time.Since(start).Seconds())
			}
		}
		return float64(*batch) / median(times), nil
	}
	next := 0
	// prepared takes the next images as bench predict does, preprocessed.
	prepared := func() ([]image.Image, error) {
		batchImgs := make([]image.Image, *batch)
		for j := range batchImgs {
			batchImgs[j] = anomnet.Prepared{RGBA: imgs[next%len(imgs)]}
			next++
		}
		return batchImgs, nil
	}
	// fromFiles decodes the next files' bytes (in parallel, as the
	// service's handlers decode), which PredictBatch then preprocesses.
	fromFiles := func() ([]image.Image, error) {
		batchImgs := make([]image.Image, *batch)
		errs := make([]error, *batch)
		var wg sync.WaitGroup
		for j := range batchImgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batchImgs[j], _, errs[j] = image.Decode(bytes.NewReader(bodies[(next+j)%len(bodies)]))
			}()
		}
		wg.Wait()
		next += *batch
		return batchImgs, errors.Join(errs...)
	}
	fmt.Fprintf(stdout, "anomnet bench serve: model %s (id %s), K %d, %d images of %s, %d clients for %s, batch %d, GOMAXPROCS %d\n",
		m.Name, m.ID, m.Centroids().K(), len(inputs), *dir, *clients, *duration, *batch, runtime.GOMAXPROCS(0))
	before, err := rate(prepared)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "batched Predict  %8.2f images/s (median of %d batches; prepared images, as bench predict)\n", before, *iters)
	filesBefore, err := rate(fromFiles)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  from the files %8.2f images/s (median of %d batches; decoded and preprocessed too)\n", filesBefore, *iters)

	s, err := serve.New(m, serve.Options{MaxBatch: *batch})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Warm(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	res := serve.Load(ctx, nil, "http://"+ln.Addr().String()+"/v1/predict", bodies, "", *clients, *duration)
	fmt.Fprintf(stdout, "service          %8.2f images/s: %s\n", res.PerSecond, res)
	for _, e := range res.Errors {
		fmt.Fprintf(stdout, "  failure: %s\n", e)
	}
	after, err := rate(prepared)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "batched Predict  %8.2f images/s (median of %d batches, after)\n", after, *iters)
	filesAfter, err := rate(fromFiles)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  from the files %8.2f images/s (median of %d batches, after)\n", filesAfter, *iters)
	fmt.Fprintf(stdout, "ratio    service / batched Predict = %.2f, service / batched Predict from the files = %.2f (against the means of before and after)\n",
		res.PerSecond/((before+after)/2), res.PerSecond/((filesBefore+filesAfter)/2))
	if res.Failed > 0 {
		return fmt.Errorf("bench serve: %d of %d requests failed", res.Failed, res.Requests)
	}
	return nil
}
