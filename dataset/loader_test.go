package dataset

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/testutil"
)

// fixtureLevels writes n uniform gray images of levels 0, 5, 10, ... and
// returns their samples; every third is a defect with a mask marking its
// top-left quarter.
func fixtureLevels(t *testing.T, n int) []Sample {
	dir := t.TempDir()
	var out []Sample
	for i := range n {
		g := image.NewGray(image.Rect(0, 0, 20, 16))
		for j := range g.Pix {
			g.Pix[j] = uint8(5 * i)
		}
		s := Sample{Path: filepath.Join(dir, fmt.Sprintf("%03d.png", i)), Defect: Good, MaskThreshold: MVTecMaskThreshold}
		fixtureWrite(t, s.Path, g)
		if i%3 == 2 {
			s.Defect, s.Anomalous = "dent", true
			s.MaskPath = filepath.Join(dir, fmt.Sprintf("%03d_mask.png", i))
			fixtureWrite(t, s.MaskPath, fixtureMask(20, 16, image.Rect(0, 0, 10, 8)))
		}
		out = append(out, s)
	}
	return out
}

// checkLevels checks that items hold the levels of fixtureLevels in order.
func checkLevels(t *testing.T, samples []Sample, items []Item, crop int) {
	t.Helper()
	require.Len(t, items, len(samples))
	for i, it := range items {
		assert.Equal(t, samples[i], it.Sample)
		require.Equal(t, image.Rect(0, 0, crop, crop), it.Image.Bounds())
		assert.Equal(t, color.RGBA{uint8(5 * i), uint8(5 * i), uint8(5 * i), 255}, it.Image.RGBAAt(crop/2, crop/2), "item %d", i)
		if samples[i].MaskPath == "" {
			assert.Nil(t, it.Mask)
			continue
		}
		require.Len(t, it.Mask, crop*crop)
		assert.True(t, it.Mask[0])
		assert.False(t, it.Mask[len(it.Mask)-1])
	}
}

func TestLoaderOrderAndProgress(t *testing.T) {
	samples := fixtureLevels(t, 40)
	var calls [][2]int
	l := &Loader{Pre: Preprocess{Resize: 16, Crop: 12}, Workers: 5, Progress: func(done, total int) {
		calls = append(calls, [2]int{done, total}) // Load's goroutine only: no lock needed
	}}
	items, err := l.Load(context.Background(), samples)
	require.NoError(t, err)
	checkLevels(t, samples, items, 12)
	require.Len(t, calls, 41)
	for i, c := range calls {
		assert.Equal(t, [2]int{i, 40}, c)
	}

	items, err = (&Loader{}).Load(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, items)
}

func TestLoaderCache(t *testing.T) {
	samples := fixtureLevels(t, 12)
	l := &Loader{Pre: Preprocess{Resize: 16, Crop: 12}, Workers: 3}
	first, err := l.Load(context.Background(), samples)
	require.NoError(t, err)
	require.EqualValues(t, 12, l.decodes.Load())

	// Items belong to the caller: changing them does not reach the cache.
	first[0].Image.Pix[0] = 99
	first[2].Mask[0] = false

	// With the files gone, the second epoch can only come from the cache.
	for _, s := range samples {
		require.NoError(t, os.Remove(s.Path))
		if s.MaskPath != "" {
			require.NoError(t, os.Remove(s.MaskPath))
		}
	}
	second, err := l.Load(context.Background(), samples)
	require.NoError(t, err)
	assert.EqualValues(t, 12, l.decodes.Load(), "the second Load decoded again")
	checkLevels(t, samples, second, 12)

	// Other preprocessing is another cache entry.
	l.Pre = Preprocess{Resize: 16, Crop: 16}
	_, err = l.Load(context.Background(), samples[:1])
	require.ErrorContains(t, err, samples[0].Path)

	// Turning the cache off drops it.
	l.Pre, l.CacheBytes = Preprocess{Resize: 16, Crop: 12}, -1
	_, err = l.Load(context.Background(), samples[:1])
	require.ErrorContains(t, err, samples[0].Path)
}

func TestLoaderCacheBound(t *testing.T) {
	samples := fixtureLevels(t, 10)
	// One 8x8 item is 256 bytes of pixels, up to 64 of labels, its paths
	// and a 256-byte allowance: room for three at most.
	l := &Loader{Pre: Preprocess{Resize: 8, Crop: 8}, Workers: 1, CacheBytes: 3 * 700}
	_, err := l.Load(context.Background(), samples)
	require.NoError(t, err)
	assert.LessOrEqual(t, l.cache.size, l.CacheBytes)
	assert.Positive(t, l.cache.order.Len())
	assert.LessOrEqual(t, l.cache.order.Len(), 3)
	// One worker completes in input order: the last ones stay, the first
	// is gone, so reloading it decodes again.
	before := l.decodes.Load()
	_, err = l.Load(context.Background(), samples[:1])
	require.NoError(t, err)
	assert.Equal(t, before+1, l.decodes.Load())
}

func TestLoaderFirstErrorStops(t *testing.T) {
	samples := fixtureLevels(t, 60)
	bad := samples[1].Path
	data, err := os.ReadFile(bad)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bad, data[:len(data)-20], 0o644)) // truncated
	l := &Loader{Workers: 1, CacheBytes: -1}
	_, err = l.Load(context.Background(), samples)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "anomnet/dataset: "+bad+": unreadable or truncated image")
	assert.Less(t, l.decodes.Load(), int64(10), "work went on after the error")
}

func TestLoaderCancel(t *testing.T) {
	samples := fixtureLevels(t, 60)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Loader{}).Load(ctx, samples)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	l := &Loader{Workers: 2, Progress: func(done, total int) {
		if done == 3 {
			cancel()
		}
	}}
	_, err = l.Load(ctx, samples)
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, errors.Is(err, context.Canceled) && len(err.Error()) > len("context canceled"))
	assert.Less(t, l.decodes.Load(), int64(20), "work went on after cancellation")
}

func TestLoaderMaskErrors(t *testing.T) {
	samples := fixtureLevels(t, 3)
	s := samples[2]

	// A mask of another size names both files.
	fixtureWrite(t, s.MaskPath, fixtureMask(21, 16, image.Rect(0, 0, 1, 1)))
	_, err := (&Loader{}).Load(context.Background(), []Sample{s})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "anomnet/dataset: mask "+s.MaskPath+" is 21x16 but its image "+s.Path+" is 20x16")

	// A missing mask file names it.
	require.NoError(t, os.Remove(s.MaskPath))
	_, err = (&Loader{}).Load(context.Background(), []Sample{s})
	require.ErrorContains(t, err, s.MaskPath)

	// The pixel cap applies to masks and images, from their headers.
	require.NoError(t, os.WriteFile(s.MaskPath, testutil.PNGHeader(100000, 100000), 0o644))
	_, err = (&Loader{}).Load(context.Background(), []Sample{s})
	require.ErrorContains(t, err, s.MaskPath+": png image of 100000x100000 pixels exceeds the decoding cap")
	_, err = (&Loader{MaxPixels: 100}).Load(context.Background(), samples[:1])
	require.ErrorContains(t, err, samples[0].Path+": png image of 20x16 pixels exceeds the decoding cap of 100 pixels")
}

// TestLoaderTinyBudget checks that an in-flight budget smaller than one
// image still lets each image through, one at a time.
func TestLoaderTinyBudget(t *testing.T) {
	samples := fixtureLevels(t, 9)
	items, err := (&Loader{Pre: Preprocess{Resize: 16, Crop: 12}, InFlightBytes: 1, Workers: 4}).Load(context.Background(), samples)
	require.NoError(t, err)
	checkLevels(t, samples, items, 12)
}

func TestMemBudget(t *testing.T) {
	m := newMemBudget(10)
	got, err := m.acquire(context.Background(), 7)
	require.NoError(t, err)
	assert.EqualValues(t, 7, got)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := m.acquire(ctx, 5)
		done <- err
	}()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	go func() {
		n, err := m.acquire(context.Background(), 50) // clamped to the whole budget
		assert.EqualValues(t, 10, n)
		done <- err
	}()
	m.release(7)
	require.NoError(t, <-done)
}
