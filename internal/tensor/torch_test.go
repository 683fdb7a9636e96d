package tensor_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// The conformance suite checks the ops against float64 references written
// from PyTorch's documented semantics; this test checks those semantics
// against PyTorch itself, through fixtures made by scripts/torch_fixtures.py.

type torchArray struct {
	Shape []int  `json:"shape"`
	Data  string `json:"data"`
}

type torchCase struct {
	Op      string                `json:"op"`
	Params  map[string]float64    `json:"params"`
	Inputs  map[string]torchArray `json:"inputs"`
	Outputs map[string]torchArray `json:"outputs"`
}

func (a torchArray) tensor(t *testing.T) *tensor.Tensor {
	t.Helper()
	fields := strings.Fields(a.Data)
	data := make([]float32, len(fields))
	for i, f := range fields {
		v, err := strconv.ParseFloat(f, 32)
		require.NoError(t, err)
		data[i] = float32(v)
	}
	shape := a.Shape
	if len(shape) == 0 {
		shape = []int{1}
	}
	return tensor.FromFloat32s(data, shape...)
}

func loadTorchCases(t *testing.T) []torchCase {
	t.Helper()
	const path = "testdata/torch_ops.json"
	b, err := os.ReadFile(path)
	require.NoError(t, err, "fixtures missing: regenerate them with scripts/torch_fixtures.py")
	var f struct {
		Torch string      `json:"torch"`
		Cases []torchCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &f), path)
	require.NotEmpty(t, f.Cases, path)
	t.Logf("%s: %d cases from torch %s", path, len(f.Cases), f.Torch)
	return f.Cases
}

// closeTo fails unless got matches want within tol*(1+|want|) everywhere,
// reporting the worst element.
func closeTo(t *testing.T, name string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	require.Equal(t, want.Shape(), got.Shape(), name)
	g, w := got.Float32s(), want.Float32s()
	worst, at := 0.0, -1
	for i := range w {
		e := math.Abs(float64(g[i])-float64(w[i])) / (1 + math.Abs(float64(w[i])))
		if e > worst || math.IsNaN(e) {
			worst, at = e, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Errorf("%s: worst relative error %.3g at %d: got %g, PyTorch %g", name, worst, at, g[at], w[at])
	}
}

func TestMatchesPyTorch(t *testing.T) {
	d := tensor.CPU{}
	for i, c := range loadTorchCases(t) {
		t.Run(fmt.Sprintf("%d_%s", i, c.Op), func(t *testing.T) {
			in := func(k string) *tensor.Tensor { return c.Inputs[k].tensor(t) }
			out := func(k string) *tensor.Tensor { return c.Outputs[k].tensor(t) }
			like := func(k string) *tensor.Tensor { return tensor.New(c.Outputs[k].Shape...) }
			const tol = 2e-5
			switch c.Op {
			case "conv2d":
				s, p := int(c.Params["stride"]), int(c.Params["pad"])
				cp := tensor.Conv2DParams{StrideH: s, StrideW: s, PadH: p, PadW: p}
				x, w, b, g := in("x"), in("w"), in("b"), in("g")
				y, dx, dw, db := like("y"), like("dx"), like("dw"), like("db")
				d.Conv2D(y, x, w, b, cp)
				d.Conv2DBackwardData(dx, g, w, cp)
				d.Conv2DBackwardFilter(dw, db, x, g, cp)
				closeTo(t, "y", y, out("y"), tol)
				closeTo(t, "dx", dx, out("dx"), tol)
				closeTo(t, "dw", dw, out("dw"), tol)
				closeTo(t, "db", db, out("db"), tol)
			case "max_pool2d", "avg_pool2d":
				pp := tensor.Pool2DParams{Kernel: int(c.Params["kernel"]), Stride: int(c.Params["stride"]), Pad: int(c.Params["pad"])}
				y := like("y")
				if c.Op == "max_pool2d" {
					d.MaxPool2D(y, in("x"), pp)
				} else {
					dx := like("dx")
					d.AvgPool2D(y, in("x"), pp)
					d.AvgPool2DBackward(dx, in("g"), pp)
					closeTo(t, "dx", dx, out("dx"), tol)
				}
				closeTo(t, "y", y, out("y"), tol)
			case "adaptive_avg_pool2d":
				y, dx := like("y"), like("dx")
				d.AdaptiveAvgPool2D(y, in("x"))
				d.AdaptiveAvgPool2DBackward(dx, in("g"))
				closeTo(t, "y", y, out("y"), tol)
				closeTo(t, "dx", dx, out("dx"), tol)
			case "resize_bilinear":
				y, dx := like("y"), like("dx")
				d.ResizeBilinear(y, in("x"))
				d.ResizeBilinearBackward(dx, in("g"))
				closeTo(t, "y", y, out("y"), tol)
				closeTo(t, "dx", dx, out("dx"), tol)
			case "gaussian_blur":
				sigma, r := c.Params["sigma"], int(c.Params["radius"])
				require.Equal(t, r, tensor.GaussianRadius(sigma), "METHOD.md's radius rule")
				y := like("y")
				d.GaussianBlur(y, in("x"), sigma, r)
				closeTo(t, "y", y, out("y"), tol)
			case "cosine_similarity":
				s := like("s")
				d.CosineSimilarity(s, in("x"), float32(c.Params["eps"]))
				closeTo(t, "s", s, out("s"), tol)
			case "adam":
				p := in("p")
				m, v := tensor.New(p.Len()), tensor.New(p.Len())
				for step, g := range []string{"g1", "g2", "g3"} {
					d.Adam(p, in(g), m, v, tensor.AdamParams{
						LR: float32(c.Params["lr"]), Beta1: float32(c.Params["beta1"]), Beta2: float32(c.Params["beta2"]),
						Eps: float32(c.Params["eps"]), WeightDecay: float32(c.Params["weight_decay"]), Step: step + 1,
					})
				}
				closeTo(t, "p", p, out("p"), tol)
			default:
				t.Fatalf("unknown op %q in the fixtures", c.Op)
			}
		})
	}
}
