//go:build cuda

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tf32Ref rounds x to the nearest float32 whose low 13 fraction bits are
// zero (TF32), ties away from zero, by comparing the distances to the two
// neighbours in float64: beyond the largest TF32 value it gives an
// infinity, NaN and the infinities stay.
func tf32Ref(x float32) float32 {
	if x != x || math.IsInf(float64(x), 0) {
		return x
	}
	b := math.Float32bits(x)
	sign, mag := b&0x80000000, b&0x7fffffff
	lo := mag &^ 0x1fff
	hi := lo + 0x2000 // the next TF32 magnitude (0x7f800000: infinity)
	v := float64(math.Float32frombits(mag))
	dlo := v - float64(math.Float32frombits(lo))
	var dhi float64
	if hi >= 0x7f800000 {
		dhi = math.Ldexp(1, 128) - v // the rounding boundary is 2^128
	} else {
		dhi = float64(math.Float32frombits(hi)) - v
	}
	if dlo < dhi {
		return math.Float32frombits(sign | lo)
	}
	return math.Float32frombits(sign | min(hi, 0x7f800000))
}

// TestTF32 checks the rounding of the tensor-core products' inputs
// against tf32Ref: random bit patterns of every exponent, the exact ties
// between two TF32 values, subnormals, the largest finite values (above
// the largest TF32 one they round to infinity), zeros, infinities and NaN.
func TestTF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var x []float32
	for range 100000 {
		x = append(x, math.Float32frombits(rng.Uint32()))
	}
	for range 1000 {
		b := rng.Uint32() &^ 0x1fff
		x = append(x, math.Float32frombits(b|0x1000), math.Float32frombits(b|0x0fff), math.Float32frombits(b|0x1001))
	}
	for _, b := range []uint32{0, 0x80000000, 1, 0x1000, 0x1fff, 0x007fffff, 0x00800000, 0x7f7fe000, 0x7f7fefff, 0x7f7ff000, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000} {
		x = append(x, math.Float32frombits(b), math.Float32frombits(b|0x80000000))
	}
	got := tf32(x)
	for i, v := range x {
		want := tf32Ref(v)
		if math.Float32bits(got[i]) != math.Float32bits(want) && !(got[i] != got[i] && want != want) {
			t.Fatalf("tf32(%#08x = %g) = %#08x, want %#08x", math.Float32bits(v), v, math.Float32bits(got[i]), math.Float32bits(want))
		}
	}
}
