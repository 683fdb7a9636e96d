// Command anomnet is anomnet's command-line tool.
//
//	anomnet weights fetch [-cache DIR]
//	anomnet bench backbone [-batch 8] [-size 224] [-iters 5] [-tap stage3] [-peer [-python python3]]
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
  anomnet weights fetch [-cache DIR]     fetch and verify the ResNet-50 weights
  anomnet bench backbone [flags]         images per second of the backbone`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return usageError{usage}
	}
	switch args[0] + " " + args[1] {
	case "weights fetch":
		return weightsFetch(ctx, args[2:], stdout, stderr)
	case "bench backbone":
		return benchBackbone(ctx, args[2:], stdout, stderr)
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
	cmd := exec.CommandContext(ctx, *python, "-c", torchBackbone,
		fmt.Sprint(*batch), fmt.Sprint(*size), fmt.Sprint(*iters), fmt.Sprint(runtime.GOMAXPROCS(0)))
	cmd.Stderr = stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("PyTorch peer (python3 with torch and torchvision; Debian: apt-get install python3-torchvision): %v", err)
	}
	var res struct {
		Torch      string  `json:"torch"`
		Threads    int     `json:"threads"`
		Median     float64 `json:"median_s"`
		ImagesPerS float64 `json:"images_per_s"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("PyTorch peer printed %q: %v", b, err)
	}
	fmt.Fprintf(stdout, "pytorch  torchvision resnet50 up to layer3, batch %d, %dx%d, torch %s, %d threads: %.2f images/s (median of %d batches, %.3f s each)\n",
		*batch, *size, *size, res.Torch, res.Threads, res.ImagesPerS, *iters, res.Median)
	fmt.Fprintf(stdout, "ratio    anomnet/pytorch = %.2f\n", ips/res.ImagesPerS)
	return nil
}
