package anomnet

import (
	"context"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// tallStripes returns a w x h image of noisy oriented stripes and, where
// r > 0, a dark blotch of radius r at (cx, cy) with its mask.
func tallStripes(rng *rand.Rand, w, h int, cx, cy, r float64) (*image.RGBA, []bool) {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	mask := make([]bool, w*h)
	theta := 0.3 + 0.1*rng.Float64()
	phase := 2 * math.Pi * rng.Float64()
	period := 6.0 + rng.Float64()
	for y := range h {
		for x := range w {
			u := float64(x)*math.Cos(theta) + float64(y)*math.Sin(theta)
			noise := 8 * rng.NormFloat64() // one draw per pixel: a blotch changes nothing else
			v := 128 + 60*math.Sin(2*math.Pi*u/period+phase) + noise
			if r > 0 && math.Hypot(float64(x)-cx, float64(y)-cy) <= r {
				v, mask[y*w+x] = 20+noise, true
			}
			g := uint8(max(0, min(255, v)))
			img.Set(x, y, color.RGBA{g, g, g, 255})
		}
	}
	return img, mask
}

// stripeSet returns n tall-stripe images of w x h without a blotch.
func stripeSet(rng *rand.Rand, n, w, h int) []image.Image {
	out := make([]image.Image, n)
	for i := range out {
		out[i], _ = tallStripes(rng, w, h, 0, 0, 0)
	}
	return out
}

// TestFullInput fits on tall images in the full input: the frame keeps
// their shape, the map covers the whole image, and a blotch in the top
// strip that the crop input cuts away is found, the heatmap's maximum on
// it; the crop input does not see it at all.
func TestFullInput(t *testing.T) {
	const w, h = 48, 128
	rng := rand.New(rand.NewPCG(21, 1))
	train, good := stripeSet(rng, 24, w, h), stripeSet(rng, 6, w, h)
	// The blotch covers rows 1 to 9; the crop (resize 80, crop 64) keeps
	// the rows from 12.8 of the 128 on.
	seed := rng.Uint64()
	clean, _ := tallStripes(rand.New(rand.NewPCG(seed, 2)), w, h, 0, 0, 0)
	bad, mask := tallStripes(rand.New(rand.NewPCG(seed, 2)), w, h, 24, 5, 4)

	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 0, 0
	full := cfg
	full.Input, full.FullSide, full.FullMax = InputFull, 48, 128
	m := fitTiny(t, full, synthSet{train: train})
	require.Equal(t, InputFull, m.Config().Input)
	require.Equal(t, [2]int{w, h}, [2]int{m.Config().Width, m.Config().Height}, "the frame keeps the images' shape")

	rs, err := m.PredictBatch(context.Background(), append(slices.Clone(good), bad))
	require.NoError(t, err)
	for _, r := range rs {
		require.Equal(t, [2]int{w, h}, [2]int{r.Width, r.Height})
		require.Len(t, r.Map, w*h)
		require.Zero(t, r.Size, "not square")
	}
	r := rs[len(rs)-1]
	for _, g := range rs[:len(rs)-1] {
		require.Greater(t, r.Score, g.Score, "the blotch scores above every normal image")
	}
	peak := slices.Index(r.Map, slices.Max(r.Map))
	require.True(t, mask[peak], "the heatmap's maximum (%d, %d) is on the blotch", peak%w, peak/w)
	img, err := m.Heatmap(r)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
	over, err := m.Overlay(bad, r)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, w, h), over.Bounds())
	mi, err := r.MaskImage()
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, w, h), mi.Bounds())

	// The crop input never sees the strip: the blotched image scores as
	// the clean one, bit for bit.
	crop := cfg
	crop.Resize, crop.Crop = 80, 64
	mc := fitTiny(t, crop, synthSet{train: train})
	a, err := mc.Predict(clean)
	require.NoError(t, err)
	b, err := mc.Predict(bad)
	require.NoError(t, err)
	require.Equal(t, a, b)

	// The model file keeps the input and its frame.
	path := filepath.Join(t.TempDir(), "full.anm")
	require.NoError(t, m.SaveFile(path))
	l, err := LoadFile(path, newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, m.Config().Input, l.Config().Input)
	require.Equal(t, [2]int{w, h}, [2]int{l.Config().Width, l.Config().Height})
	lr, err := l.Predict(bad)
	require.NoError(t, err)
	require.Equal(t, r, lr)

	// An image that lies the other way is resized to the frame turned a
	// quarter turn and scored upright; its map comes back in its own
	// orientation, the blotch where it is (near its right end).
	wide, wmask := tallStripes(rng, h, w, float64(h)-20, 12, 5)
	wr, err := m.Predict(wide)
	require.NoError(t, err)
	require.Equal(t, [2]int{h, w}, [2]int{wr.Width, wr.Height})
	peak = slices.Index(wr.Map, slices.Max(wr.Map))
	require.True(t, wmask[peak], "the wide image's maximum (%d, %d) is on its blotch", peak%h, peak/h)
	require.Greater(t, wr.Score, slices.Max(scores(rs[:len(rs)-1])), "the wide image's blotch scores above every normal image")
	// A batch that mixes the two orientations gives each image's result
	// alone, in the given order.
	mixed := []image.Image{wide, good[0], wide, bad, good[1]}
	ms, err := m.PredictBatch(context.Background(), mixed)
	require.NoError(t, err)
	for i, img := range mixed {
		one, err := m.Predict(img)
		require.NoError(t, err)
		require.Equal(t, one, ms[i], "image %d of the mixed batch", i)
	}
	// A prepared image may have the frame's size or the turned one.
	_, err = m.Predict(Prepared{image.NewRGBA(image.Rect(0, 0, h, w))})
	require.NoError(t, err)
	// With NoTurn it is squashed into the frame, as old models did.
	noTurn := full
	noTurn.NoTurn = true
	mn := fitTiny(t, noTurn, synthSet{train: train})
	wr, err = mn.Predict(wide)
	require.NoError(t, err)
	require.Equal(t, [2]int{w, h}, [2]int{wr.Width, wr.Height})
	_, err = mn.Predict(Prepared{image.NewRGBA(image.Rect(0, 0, h, w))})
	require.ErrorContains(t, err, "the model's input is 48x128")
	// A prepared image must have the frame's size.
	_, err = m.Predict(Prepared{image.NewRGBA(image.Rect(0, 0, 64, 64))})
	require.ErrorContains(t, err, "the model's input is 48x128")
}

func TestResultResized(t *testing.T) {
	r := Result{Score: 3, Anomalous: true, Width: 4, Height: 2,
		Map:  []float32{0, 1, 2, 3, 4, 5, 6, 7},
		Mask: []bool{false, false, true, true, false, false, true, true}}
	same := r.Resized(4, 2)
	require.Equal(t, r.Map, same.Map, "its own size is the identity")
	require.Equal(t, r.Mask, same.Mask)

	big := r.Resized(8, 4)
	require.Equal(t, [2]int{8, 4}, [2]int{big.Width, big.Height})
	require.Equal(t, 3.0, big.Score)
	require.True(t, big.Anomalous)
	require.Len(t, big.Map, 32)
	// Each output pixel takes the mask of the source pixel under its centre.
	for y := range 4 {
		for x := range 8 {
			require.Equal(t, r.Mask[(y/2)*4+x/2], big.Mask[y*8+x], "(%d, %d)", x, y)
		}
	}
	// Bilinear with centres aligned: rows blend 0..3 with 4..7 and the
	// edges clamp, so every value lies between the source's at the two
	// nearest source pixels.
	require.InDelta(t, 0.0, big.Map[0], 1e-6)
	require.InDelta(t, 7.0, big.Map[31], 1e-6)
	// Pixel (2, 1) sits at source (0.75, 0.25): 0.75 along the top row,
	// a quarter of the way down to the next (4 more).
	require.InDelta(t, 0.75+0.25*4, big.Map[1*8+2], 1e-5)
	sq := Result{Size: 2, Map: []float32{1, 1, 1, 1}}.Resized(3, 3)
	require.Equal(t, 3, sq.Size)
	require.Nil(t, sq.Mask)
	require.Panics(t, func() { r.Resized(0, 3) })
}

// TestInputMap puts results back on their input's pixels: inside the
// crop's region with the crop input (NaN, not inspected, outside it), the
// whole image with the full input.
func TestInputMap(t *testing.T) {
	cfg := testConfig()
	cfg.Resize, cfg.Crop = 80, 64
	m, err := New(newTinyNet(3), cfg)
	require.NoError(t, err)
	// A map whose value is its column, a mask on its left half.
	r := Result{Width: 64, Height: 64, Map: make([]float32, 64*64), Mask: make([]bool, 64*64), Score: 2}
	for i := range r.Map {
		r.Map[i], r.Mask[i] = float32(i%64), i%64 < 32
	}
	in, err := m.InputMap(r, 160, 120)
	require.NoError(t, err)
	require.Equal(t, [2]int{160, 120}, [2]int{in.Width, in.Height})
	require.Equal(t, 2.0, in.Score)
	// The crop keeps resized columns 8 to 72 of 80: input columns 16 to 144
	// of 160, and rows 12 to 108 of 120.
	for _, x := range []int{0, 15, 144, 159} {
		require.True(t, math.IsNaN(float64(in.Map[60*160+x])), "column %d is outside the crop", x)
		require.False(t, in.Mask[60*160+x])
	}
	require.True(t, math.IsNaN(float64(in.Map[5*160+80])), "row 5 is outside the crop")
	for _, x := range []int{16, 80, 143} {
		// Input column x's centre is crop column (x+0.5)/2 - 8; the map's
		// value at a crop position p (pixel centres at p+0.5) is p-0.5.
		want := max(0, min(63, (float64(x)+0.5)/2-8-0.5))
		require.InDelta(t, want, float64(in.Map[60*160+x]), 1e-5, "column %d", x)
		require.Equal(t, (float64(x)+0.5)/2-8 < 32, in.Mask[60*160+x], "column %d", x)
	}
	_, err = m.InputMap(Result{Width: 32, Height: 32, Map: make([]float32, 32*32)}, 10, 10)
	require.ErrorContains(t, err, "crops 64x64")
	_, err = m.InputMap(r, 0, 10)
	require.Error(t, err)

	full := cfg
	full.Input, full.Width, full.Height = InputFull, 32, 80
	mf, err := New(newTinyNet(3), full)
	require.NoError(t, err)
	rf := Result{Width: 32, Height: 80, Map: make([]float32, 32*80)}
	got, err := mf.InputMap(rf, 30, 75)
	require.NoError(t, err)
	require.Equal(t, rf.Resized(30, 75), got)
}

// scores returns the results' image scores.
func scores(rs []Result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.Score
	}
	return out
}
