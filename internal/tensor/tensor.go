// Package tensor holds anomnet's numerical core: a dense row-major tensor
// (NCHW for feature maps, rows x columns for matrices), the Device interface
// that every numerical operation of the method goes through, and CPU, the
// pure-Go Device that always builds.
//
// A Tensor's elements live in a Storage owned by a Device. CPU tensors keep
// theirs in a Go slice, so their elements can be read and written directly
// (Float32s, Int32s); tensors of other devices (the CUDA one) are copied to
// and from the host with Device.FromHost and Device.ToHost.
//
// Ops follow gonum's convention: the first argument is the destination, whose
// shape must already be right; a wrong shape is a programmer error and
// panics with an "anomnet/tensor:" prefix.
package tensor

import (
	"fmt"
	"slices"
)

// DType is the element type of a Tensor.
type DType uint8

const (
	// Float32 is the element type of feature maps, weights and gradients.
	Float32 DType = iota
	// Int32 is the element type of labels and indices (nearest centroid,
	// pseudo-labels, sampled rows).
	Int32
)

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int32:
		return "int32"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Storage is the memory behind a Tensor. The CPU Device uses Go slices;
// another Device defines its own Storage (a device pointer, say).
type Storage interface {
	// Len is the number of elements.
	Len() int
	// Slice returns the storage of elements [i, j), sharing memory.
	Slice(i, j int) Storage
}

// hostF32 and hostI32 are the Storage of host (CPU) tensors.
type (
	hostF32 []float32
	hostI32 []int32
)

func (s hostF32) Len() int               { return len(s) }
func (s hostF32) Slice(i, j int) Storage { return s[i:j:j] }
func (s hostI32) Len() int               { return len(s) }
func (s hostI32) Slice(i, j int) Storage { return s[i:j:j] }

// Tensor is a dense row-major array of float32 or int32 elements with a
// shape. Feature maps are NCHW (batch, channel, height, width); matrices are
// (rows, columns); vectors have one dimension.
type Tensor struct {
	shape []int
	dtype DType
	st    Storage
}

// New returns a host tensor of the given shape, filled with zeros.
func New(shape ...int) *Tensor {
	return FromFloat32s(make([]float32, check.Shape(shape)), shape...)
}

// NewInt32 returns a host int32 tensor of the given shape, filled with zeros.
func NewInt32(shape ...int) *Tensor {
	return FromInt32s(make([]int32, check.Shape(shape)), shape...)
}

// FromFloat32s returns a host tensor of the given shape that uses data as its
// storage (no copy). It panics if len(data) is not the shape's size.
func FromFloat32s(data []float32, shape ...int) *Tensor {
	if n := check.Shape(shape); n != len(data) {
		panic(fmt.Sprintf("anomnet/tensor: %d elements for shape %v (size %d)", len(data), shape, n))
	}
	return &Tensor{shape: slices.Clone(shape), dtype: Float32, st: hostF32(data)}
}

// FromInt32s returns a host int32 tensor of the given shape that uses data as
// its storage (no copy). It panics if len(data) is not the shape's size.
func FromInt32s(data []int32, shape ...int) *Tensor {
	if n := check.Shape(shape); n != len(data) {
		panic(fmt.Sprintf("anomnet/tensor: %d elements for shape %v (size %d)", len(data), shape, n))
	}
	return &Tensor{shape: slices.Clone(shape), dtype: Int32, st: hostI32(data)}
}

// FromStorage returns a tensor of the given shape and element type over st.
// Devices use it to wrap their own memory.
func FromStorage(st Storage, dt DType, shape ...int) *Tensor {
	if n := check.Shape(shape); n != st.Len() {
		panic(fmt.Sprintf("anomnet/tensor: storage of %d elements for shape %v (size %d)", st.Len(), shape, n))
	}
	return &Tensor{shape: slices.Clone(shape), dtype: dt, st: st}
}

// Shape returns the tensor's dimensions. The caller must not modify it.
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns the size of dimension i.
func (t *Tensor) Dim(i int) int { return t.shape[i] }

// Rank is the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Len is the number of elements.
func (t *Tensor) Len() int { return t.st.Len() }

// DType is the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Storage returns the memory behind the tensor; devices type-assert it to
// their own Storage.
func (t *Tensor) Storage() Storage { return t.st }

// IsHost reports whether the elements live in host memory.
func (t *Tensor) IsHost() bool {
	switch t.st.(type) {
	case hostF32, hostI32:
		return true
	}
	return false
}

// Float32s returns the elements of a host float32 tensor, sharing memory.
// It panics for a device tensor (copy it with Device.ToHost first) or an
// int32 tensor.
func (t *Tensor) Float32s() []float32 {
	s, ok := t.st.(hostF32)
	if !ok {
		panic(fmt.Sprintf("anomnet/tensor: Float32s of a %s tensor in %T memory; copy it to the host with Device.ToHost", t.dtype, t.st))
	}
	return s
}

// Int32s returns the elements of a host int32 tensor, sharing memory. It
// panics for a device tensor or a float32 tensor.
func (t *Tensor) Int32s() []int32 {
	s, ok := t.st.(hostI32)
	if !ok {
		panic(fmt.Sprintf("anomnet/tensor: Int32s of a %s tensor in %T memory; copy it to the host with Device.ToHost", t.dtype, t.st))
	}
	return s
}

// Reshape returns a tensor with the same elements and another shape of the
// same size, sharing memory.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	if n := check.Shape(shape); n != t.Len() {
		panic(fmt.Sprintf("anomnet/tensor: cannot reshape %v (size %d) to %v (size %d)", t.shape, t.Len(), shape, n))
	}
	return &Tensor{shape: slices.Clone(shape), dtype: t.dtype, st: t.st}
}

// Flat returns a one-dimensional view of elements [i, j) of the row-major
// order, sharing memory. Conformance tests use it to put guard bands around
// an output; callers use it to split a batch.
func (t *Tensor) Flat(i, j int) *Tensor {
	if i < 0 || j < i || j > t.Len() {
		panic(fmt.Sprintf("anomnet/tensor: flat range [%d, %d) out of %d elements", i, j, t.Len()))
	}
	return &Tensor{shape: []int{j - i}, dtype: t.dtype, st: t.st.Slice(i, j)}
}

// Batch returns items [i, j) of the first dimension, sharing memory.
func (t *Tensor) Batch(i, j int) *Tensor {
	if len(t.shape) == 0 || i < 0 || j < i || j > t.shape[0] {
		panic(fmt.Sprintf("anomnet/tensor: batch range [%d, %d) of shape %v", i, j, t.shape))
	}
	per := t.Len()
	if t.shape[0] > 0 {
		per /= t.shape[0]
	}
	shape := slices.Clone(t.shape)
	shape[0] = j - i
	return &Tensor{shape: shape, dtype: t.dtype, st: t.st.Slice(i*per, j*per)}
}

// String describes the tensor's type and shape, not its elements.
func (t *Tensor) String() string {
	return fmt.Sprintf("Tensor(%s%v)", t.dtype, t.shape)
}

// SameShape reports whether a and b have equal shapes.
func SameShape(a, b *Tensor) bool { return slices.Equal(a.shape, b.shape) }
