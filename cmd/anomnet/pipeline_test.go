package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
)

// pipelineInputs writes n small PNG images and returns them as predict's
// inputs.
func pipelineInputs(t *testing.T, n int) []input {
	dir := t.TempDir()
	var ins []input
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		writeTestPNG(t, p, uint64(i), false)
		ins = append(ins, input{path: p, stem: fmt.Sprintf("%03d", i)})
	}
	return ins
}

// meanScore is a stand-in scorer: each image's score is the mean of its
// pixels, so that a result can be matched to its image.
func meanScore(_ context.Context, imgs []image.Image) ([]anomnet.Result, error) {
	rs := make([]anomnet.Result, len(imgs))
	for i, img := range imgs {
		px := img.(anomnet.Prepared).Pix
		var s float64
		for _, v := range px {
			s += float64(v)
		}
		rs[i].Score = s / float64(len(px))
	}
	return rs, nil
}

// noLeak fails t when goroutines started during f outlive it.
func noLeak(t *testing.T, f func()) {
	t.Helper()
	before := runtime.NumGoroutine()
	f()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutines left running")
}

// TestPipeline checks predict's pipeline against the plain sequential loop
// (decode, score, write, chunk after chunk): the same results for the same
// inputs, written in input order, for chunk sizes that divide the inputs
// and those that do not.
func TestPipeline(t *testing.T) {
	ins := pipelineInputs(t, 11)
	loader := &dataset.Loader{Pre: dataset.Preprocess{Resize: 32, Crop: 24}, CacheBytes: -1}
	ctx := context.Background()
	samples := make([]dataset.Sample, len(ins))
	for i, in := range ins {
		samples[i] = dataset.Sample{Path: in.path}
	}
	items, err := loader.Load(ctx, samples)
	require.NoError(t, err)
	imgs := make([]image.Image, len(items))
	for i, it := range items {
		imgs[i] = anomnet.Prepared{RGBA: it.Image}
	}
	want, err := meanScore(ctx, imgs)
	require.NoError(t, err)
	for _, chunk := range []int{1, 3, 11, 32} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			noLeak(t, func() {
				var paths []string
				var got []anomnet.Result
				err := pipeline(ctx, ins, chunk, loader, meanScore, func(c predictChunk) error {
					require.Equal(t, len(paths), c.start, "chunks in order")
					for i, in := range c.inputs {
						paths = append(paths, in.path)
						require.Equal(t, ins[c.start+i].path, c.items[i].Path)
					}
					got = append(got, c.results...)
					return nil
				})
				require.NoError(t, err)
				require.Len(t, paths, len(ins))
				for i := range ins {
					require.Equal(t, ins[i].path, paths[i])
					require.Equal(t, want[i].Score, got[i].Score, "image %d", i)
				}
			})
		})
	}
}

// TestPipelineErrors checks that the first error of any stage stops the
// others, is the one returned, and leaves no goroutine running: a write
// that fails, a scorer that fails, an image that does not decode, and a
// cancelled context.
func TestPipelineErrors(t *testing.T) {
	ins := pipelineInputs(t, 12)
	loader := &dataset.Loader{Pre: dataset.Preprocess{Resize: 32, Crop: 24}, CacheBytes: -1}
	ctx := context.Background()
	ok := func(predictChunk) error { return nil }

	t.Run("write", func(t *testing.T) {
		noLeak(t, func() {
			boom := errors.New("disk full")
			var scored atomic.Int32
			score := func(ctx context.Context, imgs []image.Image) ([]anomnet.Result, error) {
				scored.Add(1)
				return meanScore(ctx, imgs)
			}
			var writes int
			err := pipeline(ctx, ins, 2, loader, score, func(predictChunk) error {
				writes++
				return boom
			})
			require.ErrorIs(t, err, boom)
			require.Equal(t, 1, writes, "no write after the first failed")
			require.Less(t, int(scored.Load()), 6, "scoring stopped early")
		})
	})
	t.Run("score", func(t *testing.T) {
		noLeak(t, func() {
			boom := errors.New("device lost")
			calls := 0
			score := func(ctx context.Context, imgs []image.Image) ([]anomnet.Result, error) {
				if calls++; calls == 2 {
					return nil, boom
				}
				return meanScore(ctx, imgs)
			}
			var written int
			err := pipeline(ctx, ins, 3, loader, score, func(c predictChunk) error {
				written += len(c.results)
				return nil
			})
			require.ErrorIs(t, err, boom)
			require.Contains(t, err.Error(), ins[3].path, "names the chunk's images")
			require.Equal(t, 3, written, "the chunk before the failure is written")
		})
	})
	t.Run("decode", func(t *testing.T) {
		noLeak(t, func() {
			bad := append([]input(nil), ins...)
			bad[7] = input{path: filepath.Join(t.TempDir(), "missing.png"), stem: "missing"}
			err := pipeline(ctx, bad, 4, loader, meanScore, ok)
			require.Error(t, err)
			require.Contains(t, err.Error(), "missing.png")
		})
	})
	t.Run("cancel", func(t *testing.T) {
		noLeak(t, func() {
			cctx, cancel := context.WithCancel(ctx)
			score := func(ctx context.Context, imgs []image.Image) ([]anomnet.Result, error) {
				cancel()
				return meanScore(ctx, imgs)
			}
			err := pipeline(cctx, ins, 2, loader, score, ok)
			require.ErrorIs(t, err, context.Canceled)
		})
	})
}
