//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/tensor/devicetest"
)

// open returns device 0, or skips t when there is none.
func open(t testing.TB) *Device {
	t.Helper()
	if !Available() {
		_, err := Count()
		t.Skipf("no CUDA device: %v (the GPU tests need one; see scripts/gpu-check.sh)", err)
	}
	d, err := New(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// tolerance is DefaultTolerance. The kernels accumulate as the CPU does
// (float32 sums, float64 where the CPU uses it); the products on the
// tensor cores are 3xTF32, whose splitting adds at most 12u (u = 2^-24,
// 7.2e-7) of sum |a b| to an element's error (mma.cuh), under a tenth of
// the Rel of 1e-5 (about 170u) the suite allows float32 rounding: the
// CPU's bounds hold as they are. (One TF32 product, without the split,
// would need Rel about 1e-3; the suite fails it.) Nearest's candidate
// window is the CPU's widened by the same 12u.
func tolerance() devicetest.Tolerance { return devicetest.DefaultTolerance() }

// TestConformance runs the Device conformance suite on the GPU (or, with
// the cudaemu tag, on the kernels' CPU emulation).
func TestConformance(t *testing.T) {
	d := open(t)
	t.Logf("device %s", d.Name())
	devicetest.Run(t, d, tolerance())
	if n, bytes := d.Allocated(); n == 0 || bytes == 0 {
		t.Errorf("Allocated() = %d, %d after the suite, which frees nothing", n, bytes)
	}
}

func TestCloseFreesAndIsIdempotent(t *testing.T) {
	d, err := New(0)
	if err != nil {
		t.Skipf("no CUDA device: %v", err)
	}
	x := d.Zeros(3, 4)
	_ = d.FromHost(tensor.FromInt32s([]int32{1, 2, 3}, 3))
	if n, bytes := d.Allocated(); n != 2 || bytes != 4*(12+3) {
		t.Errorf("Allocated() = %d, %d; want 2, %d", n, bytes, 4*(12+3))
	}
	d.Free(x.Flat(0, 6)) // a view of part of it: no-op
	if n, _ := d.Allocated(); n != 2 {
		t.Errorf("Free of a partial view released the allocation")
	}
	d.Free(x.Reshape(12)) // a view of all of it
	if n, _ := d.Allocated(); n != 1 {
		t.Errorf("Free of a whole view left %d allocations, want 1", n)
	}
	Use(d)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, ok := tensor.Default().(tensor.CPU); !ok {
		t.Errorf("after Close of the default device, Default() = %v, want the CPU", tensor.Default().Name())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "closed Device") {
			t.Errorf("an op on a closed Device: panic %v, want one about the closed Device", r)
		}
	}()
	d.Zeros(1)
}

// TestIndexFault checks that an index out of range in a kernel surfaces as
// Sync's error naming the op, and that the device works afterwards.
func TestIndexFault(t *testing.T) {
	d := open(t)
	x := d.Zeros(4, 2)
	y := d.Zeros(2, 2)
	idx := d.FromHost(tensor.FromInt32s([]int32{1, 9}, 2))
	d.GatherRows(y, x, idx)
	err := d.Sync()
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "GatherRows") {
		t.Fatalf("Sync after GatherRows with index 9 of 4 rows: %v, want an *Error naming GatherRows", err)
	}
	d.ScatterAddRows(x, y, idx)
	if err := d.Sync(); err == nil || !strings.Contains(err.Error(), "ScatterAddRows") {
		t.Fatalf("Sync after ScatterAddRows with index 9 of 4 rows: %v, want an error naming ScatterAddRows", err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("second Sync: %v, want nil", err)
	}
	d.Fill(x, 2)
	if got := d.Sum(x); got != 16 {
		t.Errorf("Sum after the faults = %g, want 16", got)
	}
}

func TestForeignTensorsPanic(t *testing.T) {
	d := open(t)
	for name, f := range map[string]func(){
		"host tensor": func() { d.Fill(tensor.New(3), 1) },
		"freed":       func() { x := d.Zeros(3); d.Free(x); d.Fill(x, 1) },
		"New(-1)": func() {
			if _, err := New(-1); err != nil {
				panic(err.Error())
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			f()
		})
	}
}

// TestConcurrentUse runs ops on one Device from several goroutines; each
// checks its own results (and the race detector the Device's state).
func TestConcurrentUse(t *testing.T) {
	d := open(t)
	const workers, rounds, n = 4, 20, 1000
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			a := d.FromHost(tensor.FromFloat32s(make([]float32, n), n))
			var err error
			for r := range rounds {
				d.Fill(a, float32(w))
				d.Scale(float32(r), a)
				if got, want := d.Sum(a), float64(w*r*n); got != want {
					err = fmt.Errorf("worker %d round %d: Sum = %g, want %g", w, r, got, want)
					break
				}
			}
			d.Free(a)
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestLargeShapes runs the suite's large and ragged shapes: the 128 x 128
// tiles of Gemm, the convolutions and CosineSimilarity, Nearest beyond 64
// centroids and over several chunks, the hinge's large cases. On a GPU at
// full size; on the emulation at the reduced sizes that reach the same
// paths.
func TestLargeShapes(t *testing.T) {
	d := open(t)
	sizes := devicetest.Full
	if emulated {
		sizes = devicetest.Reduced
	}
	devicetest.RunLarge(t, d, tolerance(), sizes)
}
