package contrastive

import (
	"fmt"

	"github.com/org/anomnet/internal/tensor"
)

// Eps is the norm clamp of the normalisation z = f/max(||f||, Eps).
const Eps float32 = 1e-8

// Loss computes METHOD.md's CCL terms for the rows f (M x D, on device d)
// with int32 pseudo-labels y (M, on d) in [0, k). With z_i = f_i/||f_i||
// (the norm clamped at Eps) and s_ij = z_i.z_j, over ordered pairs:
//
//	pos = (1/|P|) sum_{i != j, y_i = y_j} (1 - s_ij)   (0 when P is empty)
//	neg = (1/|N|) sum_{y_i != y_j} max(0, s_ij - margin) (0 when N is empty)
//
// When df (M x D) is non-nil, Loss adds weight * d(pos + neg)/df to it
// (nothing, and no gradient work, when weight is 0).
// Labels outside [0, k) and shape mismatches panic.
func Loss(d tensor.Device, f, y *tensor.Tensor, k int, margin, weight float32, df *tensor.Tensor) (pos, neg float64) {
	if f.Rank() != 2 || f.DType() != tensor.Float32 {
		panic(fmt.Sprintf("anomnet/contrastive: Loss: f is %v, want a float32 matrix", f))
	}
	m, dim := f.Dim(0), f.Dim(1)
	if y.Rank() != 1 || y.DType() != tensor.Int32 || y.Dim(0) != m {
		panic(fmt.Sprintf("anomnet/contrastive: Loss: y is %v, want int32 [%d]", y, m))
	}
	if df != nil && (df.DType() != tensor.Float32 || !tensor.SameShape(df, f)) {
		panic(fmt.Sprintf("anomnet/contrastive: Loss: df is %v, want %v", df, f))
	}
	if k < 1 {
		panic(fmt.Sprintf("anomnet/contrastive: Loss: k = %d", k))
	}
	if m == 0 {
		return 0, 0
	}

	// Per-label counts on the host: copying M labels costs little next to
	// the O(M^2 D) hinge, and a bad label panics here, not in a kernel.
	hy := d.ToHost(y)
	counts := make([]int64, k)
	for i, l := range hy.Int32s() {
		if l < 0 || int(l) >= k {
			panic(fmt.Sprintf("anomnet/contrastive: Loss: y[%d] = %d outside [0, %d)", i, l, k))
		}
		counts[l]++
	}
	var nP, same int64
	for _, n := range counts {
		nP += n * (n - 1)
		same += n * n
	}
	nN := int64(m)*int64(m) - same

	z, norms := d.Zeros(m, dim), d.Zeros(m)
	defer d.Free(z)
	defer d.Free(norms)
	d.NormalizeRows(z, norms, f, Eps)
	grad := df != nil && weight != 0

	var dz *tensor.Tensor
	if grad {
		dz = d.Zeros(m, dim)
		defer d.Free(dz)
	}

	if nP > 0 {
		// With S_k = sum_{y_i=k} z_i, sum_{i != j, y_i = y_j} s_ij =
		// sum_k ||S_k||^2 - sum_i ||z_i||^2 (z_i is not unit when clamped),
		// whose gradient with respect to z_i is 2 (S_{y_i} - z_i).
		s := d.Zeros(k, dim)
		defer d.Free(s)
		d.ScatterAddRows(s, z, y)
		sumS := d.Dot(s, s) - d.Dot(z, z)
		pos = 1 - sumS/float64(nP)
		if grad {
			d.GatherRows(dz, s, y)
			d.Axpy(-1, z, dz)
			d.Scale(float32(-2*float64(weight)/float64(nP)), dz)
		}
	}

	var g *tensor.Tensor
	if nN > 0 {
		loss := d.Zeros(m)
		defer d.Free(loss)
		if grad {
			g = d.Zeros(m, dim)
			defer d.Free(g)
		}
		d.NegativeHinge(loss, g, z, y, margin)
		neg = d.Sum(loss) / float64(nN)
		if grad {
			// Every pair counts in both orders: d(sum loss)/dz_i = 2 g_i.
			d.Axpy(float32(2*float64(weight)/float64(nN)), g, dz)
		}
	}

	if grad && (nP > 0 || nN > 0) {
		dx := g // the hinge's gradient is spent: reuse its memory
		if dx == nil {
			dx = d.Zeros(m, dim)
			defer d.Free(dx)
		}
		d.NormalizeRowsBackward(dx, dz, z, norms, Eps)
		d.Axpy(1, dx, df)
	}
	return pos, neg
}
