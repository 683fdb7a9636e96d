package backbone

import (
	"context"
	"encoding/json"
	"image"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// resnet50 loads the real ResNet-50 once for all tests, fetching it into the
// cache through FetchResNet50 if needed. Without npm or network the tests
// that need it are skipped, except under CI, where that is a failure.
var resnet50 = sync.OnceValues(func() (*Net, error) {
	return LoadResNet50(context.Background(), FetchOptions{})
})

func needResNet50(t *testing.T) *Net {
	t.Helper()
	net, err := resnet50()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ResNet-50 weights: %v", err)
		}
		t.Skipf("ResNet-50 weights unavailable (CI fetches them): %v", err)
	}
	return net
}

// formulaImage is the synthetic RGB image scripts/keras_resnet50_fixtures.py
// computes with the same formulas.
func formulaImage(kind string, h, w int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			for c := range 3 {
				var v int
				switch kind {
				case "ramp":
					v = (x*3 + y*5 + c*50) % 256
				case "xor":
					v = ((x ^ y) + 40*c) % 256
				default:
					panic(kind)
				}
				img.Pix[img.PixOffset(x, y)+c] = uint8(v)
			}
			img.Pix[img.PixOffset(x, y)+3] = 255
		}
	}
	return img
}

// relL2 is ||got - want|| / ||want||, or ||got|| where want is all zeros
// (a channel that ReLU switched off).
func relL2(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

type tapSummary struct {
	Shape []int     `json:"shape"`
	Mean  []float64 `json:"mean"`
	First []float64 `json:"first"`
	Last  []float64 `json:"last"`
	At11  []float64 `json:"at11"`
	All   []float64 `json:"all"`
}

// TestResNet50MatchesReference compares the Go network, built from the
// topology in model.json with BatchNorm folded, against an independent
// float64 PyTorch interpretation of the same file, at every stage and the
// classifier output, for three synthetic images (one of them non-square and
// smaller than the model's nominal 224).
func TestResNet50MatchesReference(t *testing.T) {
	net := needResNet50(t)
	b, err := os.ReadFile("testdata/keras_resnet50.json")
	require.NoError(t, err)
	var fix struct {
		Cases []struct {
			Image  string                `json:"image"`
			Height int                   `json:"height"`
			Width  int                   `json:"width"`
			Taps   map[string]tapSummary `json:"taps"`
			Layers map[string]string     `json:"layers"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &fix))
	require.Len(t, fix.Cases, 3)
	taps := []string{"stage1", "stage2", "stage3", "stage4", "output"}
	d := tensor.CPU{}
	worst := 0.0
	defer func() { t.Logf("worst relative L2 error: %.3g", worst) }()
	for _, c := range fix.Cases {
		// The stages found from the graph must be the layers the reference
		// script names.
		for tap, layer := range c.Layers {
			i, err := net.resolve(tap)
			require.NoError(t, err)
			require.Equal(t, layer, net.nodes[i].name, tap)
		}
		x, err := net.Input(formulaImage(c.Image, c.Height, c.Width))
		require.NoError(t, err)
		outs, err := net.Forward(d, x, taps...)
		require.NoError(t, err)
		for k, tap := range taps {
			want, got := c.Taps[tap], outs[k]
			const tol = 1e-4
			if tap == "output" {
				e := relL2(got.Float32s(), want.All)
				worst = max(worst, e)
				require.Less(t, e, tol, "%s %s: relative L2 error", c.Image, tap)
				continue
			}
			require.Equal(t, want.Shape, got.Shape()[1:], tap)
			ch, h, w := want.Shape[0], want.Shape[1], want.Shape[2]
			v := got.Float32s()
			mean := make([]float32, ch)
			at11 := make([]float32, ch)
			for i := range ch {
				var s float64
				for _, u := range v[i*h*w : (i+1)*h*w] {
					s += float64(u)
				}
				mean[i] = float32(s / float64(h*w))
				at11[i] = v[i*h*w+w+1]
			}
			for name, pair := range map[string]struct {
				got  []float32
				want []float64
			}{
				"mean":  {mean, want.Mean},
				"first": {v[:h*w], want.First},
				"last":  {v[(ch-1)*h*w : ch*h*w], want.Last},
				"at11":  {at11, want.At11},
			} {
				e := relL2(pair.got, pair.want)
				worst = max(worst, e)
				require.Less(t, e, tol, "%s %dx%d %s %s: relative L2 error", c.Image, c.Height, c.Width, tap, name)
			}
		}
	}
}

func TestResNet50Taps(t *testing.T) {
	net := needResNet50(t)
	require.Equal(t, 4, net.Stages())
	require.Len(t, net.Classes(), 1000)
	require.Equal(t, "bald eagle", net.Classes()[22])
	x := tensor.New(2, 3, 64, 64)
	outs, err := net.Forward(tensor.CPU{}, x, "stage2", "activation_21", "max_pooling2d")
	require.NoError(t, err)
	require.Equal(t, []int{2, 512, 8, 8}, outs[0].Shape())
	require.Equal(t, outs[0].Float32s(), outs[1].Float32s(), "stage2 is activation_21")
	require.Equal(t, []int{2, 64, 16, 16}, outs[2].Shape())

	_, err = net.Forward(tensor.CPU{}, x, "bn2a_branch2a")
	require.ErrorContains(t, err, `"bn2a_branch2a" is folded into "activation_1"`)
	_, err = net.Forward(tensor.CPU{}, x, "stage5")
	require.ErrorContains(t, err, "stage1..stage4")
	_, err = net.Forward(tensor.CPU{}, x, "nope")
	require.ErrorContains(t, err, `no layer "nope"`)
	_, err = net.Forward(tensor.CPU{}, tensor.New(1, 1, 64, 64), "stage1")
	require.ErrorContains(t, err, "want N x 3 x H x W")
}

// BenchmarkResNet50Stage3 is the backbone's work in the pipeline: a batch of
// 8 images at 224x224 through ResNet-50 up to stage 3.
func BenchmarkResNet50Stage3(b *testing.B) {
	net, err := resnet50()
	if err != nil {
		b.Skipf("ResNet-50 weights unavailable: %v", err)
	}
	const batch = 8
	d := tensor.CPU{}
	x := tensor.New(batch, 3, 224, 224)
	for b.Loop() {
		if _, err := net.Forward(d, x, "stage3"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
}
