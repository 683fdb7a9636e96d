// Package tinynet is a three-layer random CNN that stands in for a
// pretrained backbone in the tests of several packages, which must run
// without the ResNet-50 weights.
package tinynet

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"

	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/internal/tensor"
)

// Net is a three-layer random CNN standing in for a pretrained
// backbone in tests that must run without the ResNet-50 weights: stride 2
// ("stage1"), 4 ("stage2") and 8 ("stage3") maps of fixed random filters, which
// respond to local intensity and orientation well enough to tell a textured
// surface from a blemish on it.
type Net struct {
	w    [3]*tensor.Tensor
	b    [3]*tensor.Tensor
	seed uint64
	NaN  bool // make every map NaN, to test the guards
}

// New returns the network with filters drawn from seed.
func New(seed uint64) *Net {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := &Net{seed: seed}
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

// Name and Fingerprint identify the network (seed and NaN included).
func (n *Net) Name() string        { return "tiny" }
func (n *Net) Fingerprint() string { return fmt.Sprintf("tiny-%d-%v", n.seed, n.NaN) }

// Input normalises images as torchvision does.
func (n *Net) Input(imgs ...image.Image) (*tensor.Tensor, error) {
	return backbone.TorchvisionNormalization.Input(imgs...)
}

// Forward returns the maps of taps "stage1" to "stage3".
func (n *Net) Forward(d tensor.Device, x *tensor.Tensor, taps ...string) ([]*tensor.Tensor, error) {
	p := tensor.Conv2DParams{StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, ReLU: true}
	var outs [3]*tensor.Tensor
	in := x
	for i := range 3 {
		oh, ow := p.Out(in.Dim(2), in.Dim(3), 3, 3)
		y := d.Zeros(in.Dim(0), n.w[i].Dim(0), oh, ow)
		d.Conv2D(y, in, d.FromHost(n.w[i]), d.FromHost(n.b[i]), p)
		if n.NaN {
			d.Fill(y, float32(math.NaN()))
		}
		outs[i], in = y, y
	}
	var res []*tensor.Tensor
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
