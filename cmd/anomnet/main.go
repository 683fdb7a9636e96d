// Command anomnet is anomnet's command-line tool.
//
//	anomnet weights fetch [-cache DIR]
//	anomnet bench backbone [-batch 8] [-size 224] [-iters 5] [-tap stage3] [-peer [-python python3]]
//	anomnet bench adapter [-batch 32] [-channels 1536] [-size 28] [-iters 3] [-peer [-python python3]]
//
// Further verbs (fit, eval, predict, demo) arrive with the command-line
// issue.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"time"

	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/internal/tensor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "anomnet:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage:
  anomnet fit [flags] DATA/CATEGORY      train a model on CATEGORY/train/good (-o model.anm)
  anomnet eval [flags] MODEL DATA/CATEGORY   metrics on CATEGORY/test
  anomnet weights fetch [-cache DIR]     fetch and verify the ResNet-50 weights
  anomnet bench backbone [flags]         images per second of the backbone
  anomnet bench adapter [flags]          training steps per second of the adapter's convolution`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 {
		switch args[0] {
		case "fit":
			return fit(ctx, args[1:], stdout, stderr)
		case "eval":
			return eval(ctx, args[1:], stdout, stderr)
		}
	}
	if len(args) < 2 {
		return usageError{usage}
	}
	switch args[0] + " " + args[1] {
	case "weights fetch":
		return weightsFetch(ctx, args[2:], stdout, stderr)
	case "bench backbone":
		return benchBackbone(ctx, args[2:], stdout, stderr)
	case "bench adapter":
		return benchAdapter(ctx, args[2:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown command %q\n%s", args[0]+" "+args[1], usage)}
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %v", fs.Args())}
	}
	return nil
}

func weightsFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("weights fetch", flag.ContinueOnError)
	cache := fs.String("cache", "", "cache directory (default $"+backbone.CacheEnv+", else the user cache dir)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	p, err := backbone.FetchResNet50(ctx, backbone.FetchOptions{CacheDir: *cache, Progress: stderr})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, p)
	return nil
}

//go:embed torch_backbone.py
var torchBackbone string

func benchBackbone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench backbone", flag.ContinueOnError)
	batch := fs.Int("batch", 8, "images per batch")
	size := fs.Int("size", 224, "input height and width")
	iters := fs.Int("iters", 5, "timed batches (after one warm-up)")
	tap := fs.String("tap", "stage3", "the last layer computed")
	cache := fs.String("cache", "", "weights cache directory")
	peer := fs.Bool("peer", false, "also time PyTorch (torch and torchvision) on the same work, for a ratio")
	python := fs.String("python", "python3", "the Python that runs the -peer timing")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *batch < 1 || *size < 32 || *iters < 1 {
		return usageError{"need -batch >= 1, -size >= 32, -iters >= 1"}
	}
	net, err := backbone.LoadResNet50(ctx, backbone.FetchOptions{CacheDir: *cache, Progress: stderr})
	if err != nil {
		return err
	}
	dev := tensor.Default()
	x := dev.Zeros(*batch, 3, *size, *size)
	times := make([]float64, 0, *iters)
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
		if i > 0 { // the first batch warms up
			times = append(times, time.Since(start).Seconds())
		}
		fmt.Fprintf(stderr, "\rbatch %d/%d", i, *iters)
	}
	fmt.Fprintln(stderr)
	slices.Sort(times)
	med := times[len(times)/2]
	ips := float64(*batch) / med
	fmt.Fprintf(stdout, "anomnet  %s up to %s, batch %d, %dx%d, %s, GOMAXPROCS %d: %.2f images/s (median of %d batches, %.3f s each)\n",
		net.Name(), *tap, *batch, *size, *size, dev.Name(), runtime.GOMAXPROCS(0), ips, *iters, med)
	if !*peer {
		return nil
	}
	if *tap != "stage3" {
		return fmt.Errorf("-peer times torchvision's ResNet-50 up to layer3, which is -tap stage3")
	}
	res, err := runPeer(ctx, *python, torchBackbone, stderr, *batch, *size, *iters, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	peerIPS := float64(*batch) / res.Median
	fmt.Fprintf(stdout, "pytorch  torchvision resnet50 up to layer3, batch %d, %dx%d, torch %s, %d threads: %.2f images/s (median of %d batches, %.3f s each)\n",
		*batch, *size, *size, res.Torch, res.Threads, peerIPS, *iters, res.Median)
	fmt.Fprintf(stdout, "ratio    anomnet/pytorch = %.2f\n", ips/peerIPS)
	return nil
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
		return peerResult{}, fmt.Errorf("PyTorch peer (%s with torch and torchvision; Debian: apt-get install python3-torchvision): %v", python, err)
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
	fs := flag.NewFlagSet("bench adapter", flag.ContinueOnError)
	batch := fs.Int("batch", 32, "images per batch")
	channels := fs.Int("channels", 1536, "feature channels C (the convolution maps C+2 to C)")
	size := fs.Int("size", 28, "feature map height and width")
	iters := fs.Int("iters", 3, "timed steps (after one warm-up)")
	peer := fs.Bool("peer", false, "also time PyTorch on the same step, for a ratio")
	python := fs.String("python", "python3", "the Python that runs the -peer timing")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *batch < 1 || *channels < 1 || *size < 1 || *iters < 1 {
		return usageError{"need -batch, -channels, -size and -iters >= 1"}
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
	times := make([]float64, 0, *iters)
	for i := range *iters + 1 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := time.Now()
		dev.Conv2D(y, x, w, b, p)
		dev.Conv2DBackwardData(dx, dy, w, p)
		dev.Conv2DBackwardFilter(dw, db, x, dy, p)
		ap := tensor.AdamParams{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 5e-4, Step: i + 1}
		dev.Adam(w, dw, mw, vw, ap)
		dev.Adam(b, db, mb, vb, ap)
		if err := dev.Sync(); err != nil {
			return err
		}
		if i > 0 {
			times = append(times, time.Since(start).Seconds())
		}
		fmt.Fprintf(stderr, "\rstep %d/%d", i, *iters)
	}
	fmt.Fprintln(stderr)
	slices.Sort(times)
	med := times[len(times)/2]
	flops := 3 * 2 * float64(n*c*(c+2)*s*s)
	fmt.Fprintf(stdout, "anomnet  adapter step, 1x1 %d->%d at %dx%d, batch %d, %s, GOMAXPROCS %d: %.3f steps/s (%.1f GFLOP/s, median of %d steps, %.3f s each)\n",
		c+2, c, s, s, n, dev.Name(), runtime.GOMAXPROCS(0), 1/med, flops/med/1e9, *iters, med)
	if !*peer {
		return nil
	}
	res, err := runPeer(ctx, *python, torchAdapter, stderr, n, c, s, *iters, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pytorch  the same step, torch %s, %d threads: %.3f steps/s (%.1f GFLOP/s, median of %d steps, %.3f s each)\n",
		res.Torch, res.Threads, 1/res.Median, flops/res.Median/1e9, *iters, res.Median)
	fmt.Fprintf(stdout, "ratio    anomnet/pytorch = %.2f\n", res.Median/med)
	return nil
}
