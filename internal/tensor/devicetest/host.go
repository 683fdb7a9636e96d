package devicetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/org/anomnet/internal/tensor"
)

// guardLen is the number of guard elements on each side of every tensor
// the suite hands to the device.
const guardLen = 7

// guardInt32 fills the guard bands of int32 tensors, which cannot hold NaN;
// it is no valid index or label.
const guardInt32 = -7

var nan32 = float32(math.NaN())

// size is the number of elements of shape.
func size(shape ...int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// randn returns n standard normal float32 values.
func randn(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// uniform returns n float32 values uniform in [lo, hi).
func uniform(r *rand.Rand, n int, lo, hi float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(lo + (hi-lo)*r.Float64())
	}
	return x
}

// awayFrom returns n standard normal float32 values none of which is within
// gap of 0, for ops with a kink at 0 (ReLU) that finite differences must
// not straddle.
func awayFrom(r *rand.Rand, n int, gap float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		for math.Abs(float64(x[i])) < gap {
			x[i] = float32(r.NormFloat64())
		}
	}
	return x
}

// f64 converts to float64, exactly.
func f64(x []float32) []float64 {
	if x == nil {
		return nil // an absent bias stays absent
	}
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// f32 rounds to float32.
func f32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

// ones returns n ones.
func ones(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = 1
	}
	return x
}

// abs returns the magnitudes of x.
func abs(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = math.Abs(v)
	}
	return y
}

// in copies data to the device inside a NaN guard band and returns the
// view of data, so that an op reading out of bounds produces NaN.
func (c *checker) in(data []float32, shape ...int) *tensor.Tensor {
	if size(shape...) != len(data) {
		panic(fmt.Sprintf("devicetest: %d elements for shape %v", len(data), shape))
	}
	buf := make([]float32, len(data)+2*guardLen)
	for i := range buf {
		buf[i] = nan32
	}
	copy(buf[guardLen:], data)
	d := c.d.FromHost(tensor.FromFloat32s(buf, len(buf)))
	return d.Flat(guardLen, guardLen+len(data)).Reshape(shape...)
}

// inInt32 is in for int32 data, with guardInt32 in the guard bands.
func (c *checker) inInt32(data []int32, shape ...int) *tensor.Tensor {
	buf := make([]int32, len(data)+2*guardLen)
	for i := range buf {
		buf[i] = guardInt32
	}
	copy(buf[guardLen:], data)
	d := c.d.FromHost(tensor.FromInt32s(buf, len(buf)))
	return d.Flat(guardLen, guardLen+len(data)).Reshape(shape...)
}

// output is a float32 destination inside a NaN guard band on the device.
type output struct {
	c   *checker
	buf *tensor.Tensor // guards and destination
	T   *tensor.Tensor // the destination, a view of buf
	n   int
}

// out returns a destination of the given shape, NaN inside and out: an
// element the op does not write stays NaN and fails the check.
func (c *checker) out(shape ...int) *output {
	return c.acc(nil, shape...)
}

// acc returns a destination whose elements start as init (NaN if init is
// nil), inside NaN guards: for ops that accumulate or update in place.
func (c *checker) acc(init []float32, shape ...int) *output {
	n := size(shape...)
	buf := make([]float32, n+2*guardLen)
	for i := range buf {
		buf[i] = nan32
	}
	if init != nil {
		if len(init) != n {
			panic(fmt.Sprintf("devicetest: %d initial elements for shape %v", len(init), shape))
		}
		copy(buf[guardLen:], init)
	}
	d := c.d.FromHost(tensor.FromFloat32s(buf, len(buf)))
	return &output{c: c, buf: d, T: d.Flat(guardLen, guardLen+n).Reshape(shape...), n: n}
}

// get copies the destination back, failing t if a guard element was
// written or a destination element is NaN.
func (o *output) get(t *testing.T) []float32 {
	t.Helper()
	if err := o.c.d.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	h := o.c.d.ToHost(o.buf).Float32s()
	for i, v := range h {
		inside := i >= guardLen && i < guardLen+o.n
		switch {
		case !inside && !math.IsNaN(float64(v)):
			t.Errorf("guard element %d (destination is [%d, %d)) was overwritten with %g: out-of-bounds write", i, guardLen, guardLen+o.n, v)
			return slices.Clone(h[guardLen : guardLen+o.n])
		case inside && math.IsNaN(float64(v)):
			t.Errorf("destination element %d of %d is NaN: not written, or computed from out-of-bounds input", i-guardLen, o.n)
			return slices.Clone(h[guardLen : guardLen+o.n])
		}
	}
	return slices.Clone(h[guardLen : guardLen+o.n])
}

// outputInt32 is an int32 destination inside guardInt32 guards.
type outputInt32 struct {
	c   *checker
	buf *tensor.Tensor
	T   *tensor.Tensor
	n   int
}

// outInt32 returns an int32 destination filled with guardInt32 inside and
// out.
func (c *checker) outInt32(shape ...int) *outputInt32 {
	n := size(shape...)
	buf := make([]int32, n+2*guardLen)
	for i := range buf {
		buf[i] = guardInt32
	}
	d := c.d.FromHost(tensor.FromInt32s(buf, len(buf)))
	return &outputInt32{c: c, buf: d, T: d.Flat(guardLen, guardLen+n).Reshape(shape...), n: n}
}

// get copies the destination back, failing t if a guard element was
// written or a destination element was not.
func (o *outputInt32) get(t *testing.T) []int32 {
	t.Helper()
	if err := o.c.d.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	h := o.c.d.ToHost(o.buf).Int32s()
	for i, v := range h {
		inside := i >= guardLen && i < guardLen+o.n
		switch {
		case !inside && v != guardInt32:
			t.Errorf("guard element %d (destination is [%d, %d)) was overwritten with %d: out-of-bounds write", i, guardLen, guardLen+o.n, v)
		case inside && v == guardInt32:
			t.Errorf("destination element %d of %d still holds the sentinel %d: not written", i-guardLen, o.n, v)
		}
	}
	return slices.Clone(h[guardLen : guardLen+o.n])
}

// host copies a device tensor back (for inputs the op must leave alone).
func (c *checker) host(t *testing.T, x *tensor.Tensor) []float32 {
	t.Helper()
	if err := c.d.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return c.d.ToHost(x).Float32s()
}

// index formats flat index i of shape as a multi-index.
func index(shape []int, i int) string {
	if len(shape) <= 1 {
		return fmt.Sprintf("[%d]", i)
	}
	idx := make([]string, len(shape))
	for k := len(shape) - 1; k >= 0; k-- {
		idx[k] = fmt.Sprint(i % shape[k])
		i /= shape[k]
	}
	return "[" + strings.Join(idx, ",") + "]"
}

// near fails t unless |got[i] - want[i]| <= tol.Abs + tol.Rel*scale[i] for
// every i (scale nil means |want|), reporting the number of bad elements
// and the worst one relative to its bound.
func (c *checker) near(t *testing.T, what string, shape []int, got []float32, want, scale []float64) {
	t.Helper()
	nearTol(t, what, shape, got, want, scale, c.tol.Rel, c.tol.Abs)
}

// nearTol is near with explicit tolerances.
func nearTol(t *testing.T, what string, shape []int, got []float32, want, scale []float64, rel, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d elements, want %d", what, len(got), len(want))
	}
	bad, worst, worstRatio, worstBound := 0, -1, 0.0, 0.0
	for i := range want {
		s := math.Abs(want[i])
		if scale != nil {
			s = scale[i]
		}
		bound := abs + rel*s
		err := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(err) {
			err = math.Inf(1)
		}
		if err > bound {
			bad++
		}
		if r := err / bound; worst < 0 || r > worstRatio {
			worst, worstRatio, worstBound = i, r, bound
		}
	}
	if bad > 0 {
		i := worst
		t.Errorf("%s: %d of %d elements off; worst at %s (flat %d): got %.9g, want %.9g, error %.3g > bound %.3g (%.3gx)",
			what, bad, len(want), index(shape, i), i, got[i], want[i], math.Abs(float64(got[i])-want[i]), worstBound, worstRatio)
	}
}

// exact fails t unless got equals want element for element (ops that only
// move values must not change them).
func exact[E float32 | int32](t *testing.T, what string, shape []int, got, want []E) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d elements, want %d", what, len(got), len(want))
	}
	bad, first := 0, -1
	for i := range want {
		if got[i] != want[i] {
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ; first at %s (flat %d): got %v, want %v",
			what, bad, len(want), index(shape, first), first, got[first], want[first])
	}
}

// gradCheck describes the finite-difference check of a backward op: L is
// a scalar function of the op's input (in float64, through the reference
// forward), whose gradient the device computed.
type gradCheck struct {
	x []float64
	L func(x []float64) float64
	// scale returns, for a nonnegative direction v, the sum of the
	// magnitudes of the terms of the directional derivative of L along v;
	// it bounds the device's rounding as scale does in near.
	scale func(v []float64) float64
}

// maxFDCoords is the size up to which every coordinate is checked; above
// it a random sample of fdSample coordinates is.
const (
	maxFDCoords = 1024
	fdSample    = 50
)

// grad fails t unless got, the device's gradient, matches central
// differences of g.L at g.x coordinate by coordinate (all, or a random
// sample for large inputs) and along one random direction.
func (c *checker) grad(t *testing.T, what string, shape []int, got []float32, g gradCheck, r *rand.Rand) {
	t.Helper()
	n := len(g.x)
	if len(got) != n {
		t.Fatalf("%s: gradient has %d elements, want %d", what, len(got), n)
	}
	coords := make([]int, n)
	for i := range coords {
		coords[i] = i
	}
	if n > maxFDCoords {
		coords = r.Perm(n)[:fdSample]
	}
	xp := slices.Clone(g.x)
	v := make([]float64, n)
	bad, worst, worstRatio := 0, -1, 0.0
	var worstFD, worstBound float64
	for _, k := range coords {
		h := 1e-5 * (1 + math.Abs(g.x[k]))
		xp[k] = g.x[k] + h
		lp := g.L(xp)
		step := xp[k]
		xp[k] = g.x[k] - h
		lm := g.L(xp)
		step -= xp[k] // the step actually taken, after rounding
		xp[k] = g.x[k]
		fd := (lp - lm) / step
		v[k] = 1
		bound := c.tol.Abs + c.tol.Rel*g.scale(v) + fdError(lp, lm, h)
		v[k] = 0
		err := math.Abs(float64(got[k]) - fd)
		if math.IsNaN(err) {
			err = math.Inf(1)
		}
		if err > bound {
			bad++
		}
		if r := err / bound; worst < 0 || r > worstRatio {
			worst, worstRatio, worstFD, worstBound = k, r, fd, bound
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d checked coordinates off the finite differences; worst at %s (flat %d): got %.9g, want %.9g, bound %.3g (%.3gx)",
			what, bad, len(coords), index(shape, worst), worst, got[worst], worstFD, worstBound, worstRatio)
	}

	// A random direction checks every coordinate at once, for large
	// inputs whose coordinates were sampled.
	dir := make([]float64, n)
	var gd, sumAbs float64
	for i := range dir {
		dir[i] = 2*r.Float64() - 1
		gd += float64(got[i]) * dir[i]
		sumAbs += math.Abs(dir[i])
	}
	maxX := 0.0
	for _, x := range g.x {
		maxX = max(maxX, math.Abs(x))
	}
	h := 1e-5 * (1 + maxX)
	for i := range xp {
		xp[i] = g.x[i] + h*dir[i]
	}
	lp := g.L(xp)
	for i := range xp {
		xp[i] = g.x[i] - h*dir[i]
	}
	lm := g.L(xp)
	fd := (lp - lm) / (2 * h)
	bound := c.tol.Abs*sumAbs + c.tol.Rel*g.scale(abs(dir)) + fdError(lp, lm, h)
	if err := math.Abs(gd - fd); !(err <= bound) {
		t.Errorf("%s: directional derivative along a random direction: got %.9g, finite differences %.9g, bound %.3g", what, gd, fd, bound)
	}
}

// fdError bounds the float64 rounding of a central difference of a
// scalar summed with compensation (dotG), generously.
func fdError(lp, lm, h float64) float64 {
	return 64 * 0x1p-52 * (math.Abs(lp) + math.Abs(lm)) / (2 * h)
}

// linearScale returns the gradCheck scale of L = sum(g .* f(x)) for an f
// that is linear in x, given fabs, the magnitude scale of f's outputs at a
// nonnegative input (the reference's scale output): sum(|g| .* fabs(v)).
func linearScale(g []float64, fabs func(v []float64) []float64) func(v []float64) float64 {
	return func(v []float64) float64 {
		s := fabs(v)
		var sum float64
		for i, gi := range g {
			sum += math.Abs(gi) * s[i]
		}
		return sum
	}
}

// vecScale returns the gradCheck scale v -> sum_k v_k s_k for per-coordinate
// scales s.
func vecScale(s []float64) func(v []float64) float64 {
	return func(v []float64) float64 {
		var sum float64
		for k, vk := range v {
			if vk != 0 {
				sum += vk * s[k]
			}
		}
		return sum
	}
}

// dotG returns sum(g .* y), the scalar L of a gradient check, summed with
// Neumaier's compensation: the rounding of a plain sum of many terms would
// swamp the small difference that a central difference takes.
func dotG(g, y []float64) float64 {
	var sum, comp float64
	for i := range g {
		t := g[i] * y[i]
		s := sum + t
		if math.Abs(sum) >= math.Abs(t) {
			comp += (sum - s) + t
		} else {
			comp += (t - s) + sum
		}
		sum = s
	}
	return sum + comp
}
