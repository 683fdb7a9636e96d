//go:build cuda

package cuda

import (
	"math/rand/v2"
	"testing"

	"github.com/org/anomnet/centroid"
	"github.com/org/anomnet/internal/tensor"
)

// TestIndexOnDevice checks the pruning centroid.Index on this device:
// rows on the device go to the device's nearest-centroid kernel and find
// the centroids (and distances) of the CPU's brute-force search,
// duplicated centroids (ties) included.
func TestIndexOnDevice(t *testing.T) {
	d := open(t)
	rng := rand.New(rand.NewPCG(9, 10))
	const k, n, dim = 700, 300, 48
	cs, xs := make([]float32, k*dim), make([]float32, n*dim)
	for i := range cs {
		cs[i] = float32(rng.NormFloat64())
	}
	copy(cs[5*dim:6*dim], cs[2*dim:3*dim]) // a tie: the lower index wins
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	copy(xs[:dim], cs[5*dim:6*dim])
	ch, xh := tensor.FromFloat32s(cs, k, dim), tensor.FromFloat32s(xs, n, dim)
	cpu := tensor.CPU{}
	wantIdx, wantDist := tensor.NewInt32(n), tensor.New(n)
	cpu.Nearest(wantIdx, wantDist, xh, ch)

	cd, xd := d.FromHost(ch), d.FromHost(xh)
	defer d.Free(cd)
	defer d.Free(xd)
	ix := centroid.NewIndex(d, centroid.NewSet(cd), rand.New(rand.NewPCG(1, 2)))
	idx, dist := d.ZerosInt32(n), d.Zeros(n)
	defer d.Free(idx)
	defer d.Free(dist)
	ix.Nearest(d, idx, dist, xd)
	gotIdx, gotDist := d.ToHost(idx).Int32s(), d.ToHost(dist).Float32s()
	for i, w := range wantIdx.Int32s() {
		if gotIdx[i] != w {
			t.Fatalf("device rows: row %d: centroid %d, brute force %d", i, gotIdx[i], w)
		}
		if e := gotDist[i] - wantDist.Float32s()[i]; e > 1e-4 || e < -1e-4 {
			t.Fatalf("device rows: row %d: distance %g, brute force %g", i, gotDist[i], wantDist.Float32s()[i])
		}
	}
	if gotIdx[0] != 2 {
		t.Errorf("row 0 sits on centroids 2 and 5: got %d, want the lower", gotIdx[0])
	}
}
