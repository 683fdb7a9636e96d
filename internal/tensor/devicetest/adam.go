package devicetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// refAdam is one step of PyTorch's Adam with L2 weight decay, in float64
// from the float32 parameters. It returns the new param, m and v and their
// scales. The bias corrections 1 - beta^t are taken as exact: a device
// computes them once per step on the host, in float64.
func refAdam(p, g, m, v []float64, a tensor.AdamParams) (p2, m2, v2, ps, ms, vs []float64) {
	b1, b2 := float64(a.Beta1), float64(a.Beta2)
	lr, eps, wd := float64(a.LR), float64(a.Eps), float64(a.WeightDecay)
	bc1 := 1 - math.Pow(b1, float64(a.Step))
	bc2 := 1 - math.Pow(b2, float64(a.Step))
	n := len(p)
	p2, m2, v2 = make([]float64, n), make([]float64, n), make([]float64, n)
	ps, ms, vs = make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range p {
		gi := g[i] + wd*p[i]
		gs := math.Abs(g[i]) + math.Abs(wd*p[i])
		m2[i] = b1*m[i] + (1-b1)*gi
		ms[i] = math.Abs(b1*m[i]) + (1-b1)*gs
		v2[i] = b2*v[i] + (1-b2)*gi*gi
		vs[i] = b2*math.Abs(v[i]) + (1-b2)*gs*gs
		mhat, vhat := m2[i]/bc1, v2[i]/bc2
		den := math.Sqrt(vhat) + eps
		upd := lr * mhat / den
		p2[i] = p[i] - upd
		// The update's error: m's scale through the numerator, and v's
		// (halved by the root) through the denominator.
		us := lr * ms[i] / bc1 / den
		if vhat > 0 {
			us += math.Abs(upd) * (vs[i] / bc2) / (2 * math.Sqrt(vhat) * den)
		}
		ps[i] = math.Abs(p[i]) + us
	}
	return p2, m2, v2, ps, ms, vs
}

// adam checks Step 1 (zero moments, and gradients so small that eps
// decides the update) and Step 5 (random moments), with and without weight
// decay large enough to show.
func (c *checker) adam(t *testing.T) {
	for _, s := range []struct {
		n int
		a tensor.AdamParams
	}{
		{1, tensor.AdamParams{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0, Step: 1}},
		{7, tensor.AdamParams{LR: 0.05, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: 1}},
		{1000, tensor.AdamParams{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Step: 5}},
		{33, tensor.AdamParams{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-3, WeightDecay: 0, Step: 5}},
		{16, tensor.AdamParams{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 5e-4, Step: 5}},
		{10_000, tensor.AdamParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 5e-4, Step: 5}},
	} {
		a := s.a
		name := fmt.Sprintf("n=%d,lr=%g,b1=%g,b2=%g,eps=%g,wd=%g,step=%d", s.n, a.LR, a.Beta1, a.Beta2, a.Eps, a.WeightDecay, a.Step)
		run(t, name, func(t *testing.T) {
			r := c.rng(t)
			p, g := randn(r, s.n), randn(r, s.n)
			m, v := make([]float32, s.n), make([]float32, s.n)
			if a.Step > 1 {
				for i := range m {
					m[i] = float32(0.3 * r.NormFloat64())
					v[i] = float32(0.5 * math.Abs(r.NormFloat64()))
				}
			}
			if a.Step == 1 && s.n > 3 {
				// Gradients of 1e-9 with no weight decay on them: the
				// update is lr/11 with sqrt(vhat)+eps, lr*1e-5 with
				// sqrt(vhat+eps).
				for i := range 3 {
					p[i], g[i] = 0, float32(math.Copysign(1e-9, float64(g[i])))
				}
			}
			po, mo, vo := c.acc(p, s.n), c.acc(m, s.n), c.acc(v, s.n)
			gd := c.in(g, s.n)
			c.d.Adam(po.T, gd, mo.T, vo.T, a)
			p2, m2, v2, ps, ms, vs := refAdam(f64(p), f64(g), f64(m), f64(v), a)
			shape := []int{s.n}
			c.near(t, "Adam param", shape, po.get(t), p2, ps)
			c.near(t, "Adam m", shape, mo.get(t), m2, ms)
			c.near(t, "Adam v", shape, vo.get(t), v2, vs)
			exact(t, "Adam grad (must be left alone)", shape, c.host(t, gd), g)
		})
	}
}
