package anomnet

import (
	"fmt"
	"math"

	"github.com/org/anomnet/internal/tensor"
)

// Adam's moment decay rates and epsilon: PyTorch's defaults, which
// METHOD.md's optimisation assumes.
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// adam is one parameter's Adam state: its gradient buffer and the two
// moment estimates, all on the device.
type adam struct {
	param, grad, m, v *Tensor
}

func newAdam(d Device, p *Tensor) adam {
	sh := p.Shape()
	return adam{param: p, grad: d.Zeros(sh...), m: d.Zeros(sh...), v: d.Zeros(sh...)}
}

// step checks that the gradient is finite (naming the parameter what in
// the error) and takes Adam step number step with learning rate lr and
// weight decay wd added to the gradient, as PyTorch's Adam does.
func (o adam) step(d Device, what string, lr, wd float64, step int) error {
	if g := d.Dot(o.grad, o.grad); math.IsNaN(g) || math.IsInf(g, 0) {
		return fmt.Errorf("%s gradient is not finite", what)
	}
	d.Adam(o.param, o.grad, o.m, o.v, tensor.AdamParams{LR: float32(lr), Beta1: adamBeta1, Beta2: adamBeta2,
		Eps: adamEps, WeightDecay: float32(wd), Step: step})
	return nil
}
