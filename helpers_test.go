package anomnet

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"

	"github.com/org/anomnet/internal/tinynet"
)

// newTinyNet is the tiny random backbone of the tests that must run
// without the ResNet-50 weights (internal/tinynet).
func newTinyNet(seed uint64) *tinynet.Net { return tinynet.New(seed) }

// stripes returns a size x size image of noisy oriented stripes (the
// normal surface) and, when defect is set, a dark or bright blotch on it,
// with its mask.
func stripes(rng *rand.Rand, size int, defect bool) (*image.RGBA, []bool) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	mask := make([]bool, size*size)
	theta := 0.3 + 0.1*rng.Float64()
	phase := 2 * math.Pi * rng.Float64()
	period := 6.0 + rng.Float64()
	var cx, cy, r, tone float64
	if defect {
		r = 4 + 3*rng.Float64()
		cx = r + 4 + rng.Float64()*(float64(size)-2*r-8)
		cy = r + 4 + rng.Float64()*(float64(size)-2*r-8)
		tone = 20
		if rng.IntN(2) == 0 {
			tone = 235
		}
	}
	for y := range size {
		for x := range size {
			u := float64(x)*math.Cos(theta) + float64(y)*math.Sin(theta)
			v := 128 + 60*math.Sin(2*math.Pi*u/period+phase) + 8*rng.NormFloat64()
			if defect && math.Hypot(float64(x)-cx, float64(y)-cy) <= r {
				v = tone + 8*rng.NormFloat64()
				mask[y*size+x] = true
			}
			g := uint8(max(0, min(255, v)))
			img.Set(x, y, color.RGBA{g, g, g, 255})
		}
	}
	return img, mask
}

// testConfig is a small, fast configuration for the tiny backbone.
func testConfig() Config {
	c := DefaultConfig()
	c.Input = InputCrop // the tests of other inputs say so; TestAutoInput covers auto
	c.Resize, c.Crop = 64, 64
	c.K = 4
	c.Epochs1, c.Epochs2 = 3, 2
	c.BatchSize = 8
	c.LR = 1e-3
	c.Sample = 256
	c.Sigma, c.ImageSigma = 2, 2
	return c
}
