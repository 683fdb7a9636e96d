package centroid

import (
	"fmt"

	"github.com/org/anomnet/internal/tensor"
)

// Set is K centroids in a D-dimensional feature space: C is a K x D float32
// tensor on a Device, one centroid per row.
type Set struct {
	C *tensor.Tensor
}

// NewSet wraps c, a K x D float32 tensor, as a Set. It panics unless c is a
// rank-2 float32 tensor.
func NewSet(c *tensor.Tensor) *Set {
	matrix("NewSet", "c", c)
	return &Set{C: c}
}

// K is the number of centroids.
func (s *Set) K() int { return s.C.Dim(0) }

// D is the dimension of the feature space.
func (s *Set) D() int { return s.C.Dim(1) }

// Centroids returns the K x D centroid tensor (shared, not a copy).
func (s *Set) Centroids() *tensor.Tensor { return s.C }

// Nearest finds, for each row of x (N x D) on device d, its nearest
// centroid: idx (int32, N) gets the centroid's index and dist (N) the
// Euclidean distance, METHOD.md's location score. Either output may be nil.
// It is d.Nearest with the Set's centroids.
func (s *Set) Nearest(d tensor.Device, idx, dist, x *tensor.Tensor) {
	d.Nearest(idx, dist, x, s.C)
}

// matrix checks that t is a rank-2 float32 tensor and returns its shape.
func matrix(op, name string, t *tensor.Tensor) (rows, cols int) {
	if t == nil || t.Rank() != 2 || t.DType() != tensor.Float32 {
		panic(fmt.Sprintf("anomnet/centroid: %s: %s is %v, want a float32 matrix", op, name, t))
	}
	return t.Dim(0), t.Dim(1)
}

// sameShape panics unless g (a gradient, when not nil) has x's shape.
func sameShape(op, name string, g, x *tensor.Tensor) {
	if g != nil && (g.DType() != tensor.Float32 || !tensor.SameShape(g, x)) {
		panic(fmt.Sprintf("anomnet/centroid: %s: %s is %v, want the shape of %v", op, name, g, x))
	}
}
