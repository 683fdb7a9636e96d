package anomnet

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"

	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/internal/tensor"
)

// tinyNet is a three-layer random CNN standing in for a pretrained
// backbone in tests that must run without the ResNet-50 weights: stride 2
// ("stage1"), 4 ("stage2") and 8 ("stage3") maps of fixed random filters, which
// respond to local intensity and orientation well enough to tell a textured
// surface from a blemish on it.
type tinyNet struct {
	w    [3]*Tensor
	b    [3]*Tensor
	seed uint64
	nan  bool // make every map NaN, to test the guards
}

func newTinyNet(seed uint64) *tinyNet {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := &tinyNet{seed: seed}
	shapes := [3][2]int{{8, 3}, {16, 8}, {32, 16}}
	for i, s := range shapes {
		w := tensor.New(s[0], s[1], 3, 3)
		scale := math.Sqrt(2 / float64(s[1]*9))
		for k := range w.Float32s() {
			w.Float32s()[k] = float32(rng.NormFloat64() * scale)
		}
		b := tensor.New(s[0])
		for k := range b.Float32s() {
			b.Float32s()[k] = float32(rng.NormFloat64() * 0.1)
		}
		n.w[i], n.b[i] = w, b
	}
	return n
}

func (n *tinyNet) Name() string        { return "tiny" }
func (n *tinyNet) Fingerprint() string { return fmt.Sprintf("tiny-%d-%v", n.seed, n.nan) }

func (n *tinyNet) Input(imgs ...image.Image) (*Tensor, error) {
	return backbone.TorchvisionNormalization.Input(imgs...)
}

func (n *tinyNet) Forward(d Device, x *Tensor, taps ...string) ([]*Tensor, error) {
	p := tensor.Conv2DParams{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, ReLU: true}
	var outs [3]*Tensor
	in := x
	for i := range 3 {
		oh, ow := p.Out(in.Dim(2), in.Dim(3), 3, 3)
		y := d.Zeros(in.Dim(0), n.w[i].Dim(0), oh, ow)
		d.Conv2D(y, in, d.FromHost(n.w[i]), d.FromHost(n.b[i]), p)
		if n.nan {
			d.Fill(y, float32(math.NaN()))
		}
		outs[i], in = y, y
	}
	var res []*Tensor
	for _, t := range taps {
		switch t {
		case "stage1":
			res = append(res, outs[0])
		case "stage2":
			res = append(res, outs[1])
		case "stage3":
			res = append(res, outs[2])
		default:
			return nil, fmt.Errorf("tiny: no tap %q", t)
		}
	}
	return res, nil
}

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
