package anomnet_test

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
)

// BenchmarkSearchReal times the model's nearest-centroid search on the
// adapted features of real images: ANOMNET_BENCH_MODEL names a model file
// (anomnet fit), ANOMNET_BENCH_IMAGES a folder of images like those it was
// fitted on (a category's test folder); without them it is skipped. The
// pruned search runs at its real speed only on such features: on random
// or synthetic ones its bounds prune little. One op is 16 images.
//
//	ANOMNET_BENCH_MODEL=m.anm ANOMNET_BENCH_IMAGES=DATA/CAT/test go test -run X -bench SearchReal .
func BenchmarkSearchReal(b *testing.B) {
	modelPath, dir := os.Getenv("ANOMNET_BENCH_MODEL"), os.Getenv("ANOMNET_BENCH_IMAGES")
	if modelPath == "" || dir == "" {
		b.Skip("set ANOMNET_BENCH_MODEL and ANOMNET_BENCH_IMAGES")
	}
	ctx := context.Background()
	bb, err := backbone.LoadResNet50(ctx, backbone.FetchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := anomnet.LoadFile(modelPath, bb)
	if err != nil {
		b.Fatal(err)
	}
	var paths []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && slices.Contains([]string{".png", ".jpg", ".bmp"}, filepath.Ext(p)) {
			paths = append(paths, p)
		}
		return nil
	})
	const n = 16
	if len(paths) < n {
		b.Fatalf("%s: %d images, want %d", dir, len(paths), n)
	}
	cfg := m.Config()
	samples := make([]dataset.Sample, n)
	for i := range samples {
		samples[i] = dataset.Sample{Path: paths[i*len(paths)/n]} // spread over the folder
	}
	items, err := (&dataset.Loader{Pre: cfg.Preprocess(), CacheBytes: -1}).Load(ctx, samples)
	if err != nil {
		b.Fatal(err)
	}
	imgs := make([]image.Image, n)
	for i, it := range items {
		imgs[i] = it.Image
	}
	d := anomnet.DefaultDevice()
	x, err := bb.Input(imgs...)
	if err != nil {
		b.Fatal(err)
	}
	maps, err := bb.Forward(d, d.FromHost(x), cfg.Taps...)
	if err != nil {
		b.Fatal(err)
	}
	f := m.Adapter().Forward(d, maps)
	sh := f.Shape()
	rows := d.Zeros(sh[0]*sh[2]*sh[3], sh[1])
	d.ChannelsLast(rows, f)
	dist := d.Zeros(rows.Dim(0))
	set := m.Centroids()
	b.ReportMetric(float64(set.K()), "K")
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		set.Nearest(d, nil, dist, rows)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
}
