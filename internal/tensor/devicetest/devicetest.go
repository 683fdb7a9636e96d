// Package devicetest is the conformance suite of tensor.Device, in the
// manner of gonum's blas/testblas: every implementation (the pure-Go CPU,
// the CUDA device) calls Run from its own tests and is checked against
// straightforward float64 references written here from the doc comments of
// tensor.Device and, where they cite it, PyTorch's semantics.
//
// Inputs are fresh random values each run; the seed is logged, and setting
// DEVICETEST_SEED to it repeats a run. Every output lives inside a band of
// NaN (or, for int32, a sentinel) guard elements, so that writes out of
// bounds, and outputs left unwritten, are caught. Backward ops are checked
// against central differences of the float64 reference forward, and the
// forwards against the references, which closes the chain.
package devicetest

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/org/anomnet/internal/tensor"
)

// Tolerance bounds the error of a device result against the float64
// reference: an element passes when |got - want| <= Abs + Rel*scale, where
// scale is the sum of the magnitudes of the terms the element is made of
// (|want| for an elementwise op, sum_k |a_ik b_kj| for Gemm, sum |w x| for a
// convolution). Bounding by that sum rather than by |want| keeps results
// that cancel to near zero from failing, while an off-by-one, which moves an
// element by a whole term, still fails by orders of magnitude.
type Tolerance struct {
	// Rel is the allowed error per unit of scale, for forward results and
	// for gradients against finite differences alike: 1e-5 for float32
	// arithmetic, about 1e-3 for TF32 on a GPU.
	Rel float64
	// Abs is an absolute floor added to every bound.
	Abs float64
	// Sum is Rel for Sum and Dot, which promise float64 accumulation: a
	// float32 accumulator over the suite's 1e5 elements is off by far more.
	Sum float64
}

// DefaultTolerance returns the tolerance for a device that computes in
// float32 (the CPU): Rel is about 170 float32 roundings (u = 6e-8), so
// rounding never fails a test while any indexing error does.
func DefaultTolerance() Tolerance {
	return Tolerance{Rel: 1e-5, Abs: 1e-6, Sum: 1e-7}
}

// SeedEnv is the environment variable that fixes the seed of Run.
const SeedEnv = "DEVICETEST_SEED"

// seedOf returns $DEVICETEST_SEED, or a fresh seed.
func seedOf(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(SeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("devicetest: %s=%q: %v", SeedEnv, s, err)
		}
		seed = v
	}
	return seed
}

// checker carries the device under test and the run's settings through the
// checks.
type checker struct {
	d    tensor.Device
	tol  Tolerance
	seed uint64
}

// Run checks every op of d against float64 references.
func Run(t *testing.T, d tensor.Device, tol Tolerance) {
	seed := seedOf(t)
	t.Logf("devicetest: device %q, seed %d (%s=%d repeats this run), tolerance %+v", d.Name(), seed, SeedEnv, seed, tol)
	c := &checker{d: d, tol: tol, seed: seed}
	for _, op := range []struct {
		name  string
		check func(*testing.T)
	}{
		{"Basics", c.basics},
		{"Transfer", c.transfer},
		{"ShapeChecks", c.shapeChecks},
		{"Copy", c.copyOp},
		{"Fill", c.fill},
		{"Add", c.add},
		{"Axpy", c.axpy},
		{"Scale", c.scale},
		{"Sum", c.sum},
		{"Dot", c.dot},
		{"Gemm", c.gemm},
		{"Conv2D", c.conv2D},
		{"Conv2DBackwardData", c.conv2DBackwardData},
		{"Conv2DBackwardFilter", c.conv2DBackwardFilter},
		{"ReLU", c.relu},
		{"ReLUBackward", c.reluBackward},
		{"ZeroPad2D", c.zeroPad2D},
		{"MaxPool2D", c.maxPool2D},
		{"AvgPool2D", c.avgPool2D},
		{"AvgPool2DBackward", c.avgPool2DBackward},
		{"AdaptiveAvgPool2D", c.adaptiveAvgPool2D},
		{"AdaptiveAvgPool2DBackward", c.adaptiveAvgPool2DBackward},
		{"ResizeBilinear", c.resizeBilinear},
		{"ResizeBilinearBackward", c.resizeBilinearBackward},
		{"GaussianBlur", c.gaussianBlur},
		{"Concat", c.concat},
		{"Split", c.split},
		{"AppendCoords", c.appendCoords},
		{"ChannelsLast", c.channelsLast},
		{"ChannelsFirst", c.channelsFirst},
		{"Nearest", c.nearest},
		{"GatherRows", c.gatherRows},
		{"ScatterAddRows", c.scatterAddRows},
		{"NormalizeRows", c.normalizeRows},
		{"NormalizeRowsBackward", c.normalizeRowsBackward},
		{"CosineSimilarity", c.cosineSimilarity},
		{"NegativeHinge", c.negativeHinge},
		{"Adam", c.adam},
	} {
		t.Run(op.name, func(t *testing.T) {
			defer fatalOnPanic(t)
			op.check(t)
		})
	}
}

// run runs f as a subtest that turns a panic (an op not implemented, say)
// into a failure of that subtest instead of a crash of the whole binary.
func run(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		defer fatalOnPanic(t)
		f(t)
	})
}

// fatalOnPanic must be deferred directly, so that its recover sees the
// panic.
func fatalOnPanic(t *testing.T) {
	if r := recover(); r != nil {
		t.Fatalf("panic: %v\n%s", r, debug.Stack())
	}
}

// rng returns the random source of subtest t: derived from the run's seed
// and t's name, so that a subtest draws the same inputs for a seed whatever
// other subtests run.
func (c *checker) rng(t *testing.T) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	return rand.New(rand.NewPCG(c.seed, h.Sum64()))
}

// mapName names a feature map shape in subtest names.
func mapName(n, ch, h, w int) string {
	return fmt.Sprintf("N=%d,C=%d,H=%d,W=%d", n, ch, h, w)
}
