//go:build cuda

package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFastDiv checks the kernels' division by a multiplier and a shift
// against Go's integer division: every divisor up to 4096 and the powers
// of two and their neighbours up to 2^31 - 1, each on the numerators where
// a rounding error would first show (multiples of d and their
// neighbours, the top of the range) and on random ones.
func TestFastDiv(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var divisors []int32
	for d := int32(1); d <= 4096; d++ {
		divisors = append(divisors, d)
	}
	for s := 13; s <= 31; s++ {
		p := int64(1) << s
		for _, d := range []int64{p - 1, p, p + 1, p/3 + 1} {
			if d >= 1 && d <= math.MaxInt32 {
				divisors = append(divisors, int32(d))
			}
		}
	}
	for range 200 {
		divisors = append(divisors, 1+rng.Int32N(math.MaxInt32))
	}
	for _, d := range divisors {
		n := []int32{0, 1, d - 1, d, math.MaxInt32, math.MaxInt32 - 1, math.MaxInt32 - d + 1}
		top := int64(math.MaxInt32) / int64(d) // the largest quotient
		for _, q := range []int64{1, 2, 3, top / 2, top - 1, top} {
			for _, e := range []int64{-1, 0, 1} {
				if v := q*int64(d) + e; v >= 0 && v <= math.MaxInt32 {
					n = append(n, int32(v))
				}
			}
		}
		for range 64 {
			n = append(n, rng.Int32N(math.MaxInt32))
		}
		got := fastDiv(d, n)
		for i, v := range n {
			if got[i] != v/d {
				t.Fatalf("%d / %d: FastDiv %d, want %d", v, d, got[i], v/d)
			}
		}
	}
}
