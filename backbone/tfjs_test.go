package backbone

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// A tiny Keras model in TensorFlow.js form, written by the test: a 3x3
// "same" convolution with BatchNorm and ReLU, a 1x1 convolution with its
// own ReLU activation, a residual addition, global average pooling and a
// softmax classifier. Some weights are stored quantized (uint8, uint16) or
// as float16, as the format allows. The Go network is checked against a
// direct float64 evaluation of the same layers in channels-last layout.

const (
	tinyH, tinyW, tinyC, tinyF, tinyK = 5, 6, 2, 3, 4
)

type tinyWeight struct {
	name  string
	shape []int
	quant string // "", "uint8", "uint16", "float16"
	vals  []float64
	bytes []byte
	spec  map[string]any
}

// encode stores the values as the quantization says and replaces them by
// the values a reader recovers.
func (w *tinyWeight) encode() {
	w.spec = map[string]any{"name": w.name, "shape": w.shape, "dtype": "float32"}
	le := binary.LittleEndian
	switch w.quant {
	case "":
		for _, v := range w.vals {
			w.bytes = le.AppendUint32(w.bytes, math.Float32bits(float32(v)))
		}
		for i, v := range w.vals {
			w.vals[i] = float64(float32(v))
		}
	case "float16":
		w.spec["quantization"] = map[string]any{"dtype": "float16"}
		for i, v := range w.vals {
			// Values k/64 for small integers k are exact in float16.
			q := math.Round(v * 64)
			w.vals[i] = q / 64
			w.bytes = le.AppendUint16(w.bytes, floatToHalf(float32(q/64)))
		}
	default:
		lo, hi := w.vals[0], w.vals[0]
		for _, v := range w.vals {
			lo, hi = min(lo, v), max(hi, v)
		}
		levels := 255.0
		if w.quant == "uint16" {
			levels = 65535
		}
		scale := (hi - lo) / levels
		w.spec["quantization"] = map[string]any{"dtype": w.quant, "scale": scale, "min": lo}
		for i, v := range w.vals {
			q := math.Round((v - lo) / scale)
			if w.quant == "uint8" {
				w.bytes = append(w.bytes, uint8(q))
			} else {
				w.bytes = le.AppendUint16(w.bytes, uint16(q))
			}
			w.vals[i] = float64(float32(q*scale + lo))
		}
	}
}

// floatToHalf converts float32 values that are exact in binary16.
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	if f == 0 {
		return sign
	}
	exp := int(b>>23&0xff) - 127 + 15
	return sign | uint16(exp)<<10 | uint16(b>>13&0x3ff)
}

func tinyModel(t *testing.T, dir string) map[string]*tinyWeight {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int, scale, off float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = r.NormFloat64()*scale + off
		}
		return v
	}
	ws := []*tinyWeight{
		{name: "c1/kernel", shape: []int{3, 3, tinyC, tinyF}, vals: rnd(9*tinyC*tinyF, 0.5, 0)},
		{name: "c1/bias", shape: []int{tinyF}, vals: rnd(tinyF, 0.5, 0)},
		{name: "bn1/gamma", shape: []int{tinyF}, quant: "float16", vals: rnd(tinyF, 0.3, 1)},
		{name: "bn1/beta", shape: []int{tinyF}, vals: rnd(tinyF, 0.5, 0)},
		{name: "bn1/moving_mean", shape: []int{tinyF}, vals: rnd(tinyF, 0.5, 0)},
		{name: "bn1/moving_variance", shape: []int{tinyF}, vals: rnd(tinyF, 0.1, 1)},
		{name: "c2/kernel", shape: []int{1, 1, tinyF, tinyF}, quant: "uint8", vals: rnd(tinyF*tinyF, 0.5, 0)},
		{name: "c2/bias", shape: []int{tinyF}, vals: rnd(tinyF, 0.5, 0)},
		{name: "fc/kernel", shape: []int{tinyF, tinyK}, quant: "uint16", vals: rnd(tinyF*tinyK, 1, 0)},
		{name: "fc/bias", shape: []int{tinyK}, vals: rnd(tinyK, 1, 0)},
	}
	var shard []byte
	var specs []any
	byName := map[string]*tinyWeight{}
	for _, w := range ws {
		w.encode()
		shard = append(shard, w.bytes...)
		specs = append(specs, w.spec)
		byName[w.name] = w
	}
	layer := func(name, class string, cfg map[string]any, in ...string) map[string]any {
		cfg["name"] = name
		var nodes []any
		if len(in) > 0 {
			var node []any
			for _, s := range in {
				node = append(node, []any{s, 0, 0, map[string]any{}})
			}
			nodes = []any{node}
		}
		return map[string]any{"name": name, "class_name": class, "config": cfg, "inbound_nodes": nodes}
	}
	layers := []any{
		layer("in", "InputLayer", map[string]any{"batch_input_shape": []any{nil, tinyH, tinyW, tinyC}}),
		layer("c1", "Conv2D", map[string]any{"filters": tinyF, "kernel_size": []int{3, 3}, "strides": []int{1, 1}, "padding": "same", "activation": "linear", "use_bias": true}, "in"),
		layer("bn1", "BatchNormalization", map[string]any{"axis": []int{3}, "epsilon": 0.001, "center": true, "scale": true}, "c1"),
		layer("r1", "Activation", map[string]any{"activation": "relu"}, "bn1"),
		layer("c2", "Conv2D", map[string]any{"filters": tinyF, "kernel_size": []int{1, 1}, "strides": []int{1, 1}, "padding": "valid", "activation": "relu", "use_bias": true}, "r1"),
		layer("add", "Add", map[string]any{}, "r1", "c2"),
		layer("gap", "GlobalAveragePooling2D", map[string]any{}, "add"),
		layer("fc", "Dense", map[string]any{"units": tinyK, "activation": "softmax", "use_bias": true}, "gap"),
	}
	model := map[string]any{
		"format": "layers-model",
		"modelTopology": map[string]any{"model_config": map[string]any{
			"class_name": "Model",
			"config":     map[string]any{"name": "tiny", "layers": layers},
		}},
		"weightsManifest": []any{map[string]any{"paths": []string{"shard1", "shard2"}, "weights": specs}},
	}
	b, err := json.Marshal(model)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.json"), b, 0o644))
	// Two shards, split mid-weight, as the converter does at 4 MB.
	half := len(shard)/2 + 1
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shard1"), shard[:half], 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shard2"), shard[half:], 0o644))
	return byName
}

// tinyReference evaluates the tiny model in float64, channels last.
func tinyReference(w map[string]*tinyWeight, x []float64) []float64 {
	at := func(i, j, c int) float64 { return x[(i*tinyW+j)*tinyC+c] }
	r1 := make([]float64, tinyH*tinyW*tinyF)
	k1, b1 := w["c1/kernel"].vals, w["c1/bias"].vals
	for i := range tinyH {
		for j := range tinyW {
			for f := range tinyF {
				s := b1[f]
				for di := -1; di <= 1; di++ {
					for dj := -1; dj <= 1; dj++ {
						if i+di < 0 || i+di >= tinyH || j+dj < 0 || j+dj >= tinyW {
							continue
						}
						for c := range tinyC {
							s += at(i+di, j+dj, c) * k1[(((di+1)*3+dj+1)*tinyC+c)*tinyF+f]
						}
					}
				}
				g, be := w["bn1/gamma"].vals[f], w["bn1/beta"].vals[f]
				m, v := w["bn1/moving_mean"].vals[f], w["bn1/moving_variance"].vals[f]
				s = (s-m)/math.Sqrt(v+0.001)*g + be
				r1[(i*tinyW+j)*tinyF+f] = max(s, 0)
			}
		}
	}
	gap := make([]float64, tinyF)
	k2, b2 := w["c2/kernel"].vals, w["c2/bias"].vals
	for p := range tinyH * tinyW {
		for f := range tinyF {
			s := b2[f]
			for c := range tinyF {
				s += r1[p*tinyF+c] * k2[c*tinyF+f]
			}
			gap[f] += (r1[p*tinyF+f] + max(s, 0)) / float64(tinyH*tinyW)
		}
	}
	logits := make([]float64, tinyK)
	var z float64
	for k := range tinyK {
		s := w["fc/bias"].vals[k]
		for f := range tinyF {
			s += gap[f] * w["fc/kernel"].vals[f*tinyK+k]
		}
		logits[k] = math.Exp(s)
		z += logits[k]
	}
	for k := range logits {
		logits[k] /= z
	}
	return logits
}

func TestTFJSTinyModel(t *testing.T) {
	dir := t.TempDir()
	w := tinyModel(t, dir)
	net, err := LoadTFJS(filepath.Join(dir, "model.json"), TorchvisionNormalization)
	require.NoError(t, err)
	require.Equal(t, "tiny", net.Name())
	// BatchNorm and both ReLUs are folded; the addition stays.
	require.Equal(t, []string{"in", "r1", "c2", "add", "gap", "fc"}, net.Layers())
	require.Equal(t, 1, net.Stages())

	r := rand.New(rand.NewPCG(3, 4))
	xhwc := make([]float64, tinyH*tinyW*tinyC)
	x := tensor.New(1, tinyC, tinyH, tinyW)
	for i := range tinyH {
		for j := range tinyW {
			for c := range tinyC {
				v := float32(r.NormFloat64())
				xhwc[(i*tinyW+j)*tinyC+c] = float64(v)
				x.Float32s()[(c*tinyH+i)*tinyW+j] = v
			}
		}
	}
	out, err := net.Forward(tensor.CPU{}, x, "output")
	require.NoError(t, err)
	want := tinyReference(w, xhwc)
	got := out[0].Float32s()
	for k := range want {
		require.InDelta(t, want[k], got[k], 1e-5, "class %d", k)
	}
}

func TestTFJSErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(dir string)
		want   []string
	}{
		{"truncated shard", func(dir string) {
			p := filepath.Join(dir, "shard2")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-3], 0o644)
		}, []string{"shard2 is truncated", "fetch the weights again"}},
		{"missing shard", func(dir string) { os.Remove(filepath.Join(dir, "shard1")) }, []string{"shard1"}},
		{"extra bytes", func(dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, "shard2"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{1, 2, 3, 4})
			f.Close()
		}, []string{"the shards hold"}},
		{"not json", func(dir string) { os.WriteFile(filepath.Join(dir, "model.json"), []byte("{"), 0o644) },
			[]string{"model.json", "not a TensorFlow.js model.json"}},
		{"unsupported layer", func(dir string) { editModel(dir, `"GlobalAveragePooling2D"`, `"Flatten"`) },
			[]string{"layer gap", "Flatten is not supported"}},
		{"wrong kernel shape", func(dir string) { editModel(dir, `"filters":3,"kernel_size":[1,1]`, `"filters":3,"kernel_size":[3,3]`) },
			[]string{"layer c2", "c2/kernel has shape [1 1 3 3], want [3 3 3 3]"}},
		{"graph model", func(dir string) { editModel(dir, `"layers-model"`, `"graph-model"`) },
			[]string{"graph models are not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tinyModel(t, dir)
			tc.mutate(dir)
			_, err := LoadTFJS(filepath.Join(dir, "model.json"), TorchvisionNormalization)
			require.Error(t, err)
			t.Log(err)
			for _, s := range tc.want {
				require.ErrorContains(t, err, s)
			}
		})
	}
}

// editModel replaces old by new in model.json, failing if old is absent.
func editModel(dir, old, new string) {
	p := filepath.Join(dir, "model.json")
	b, _ := os.ReadFile(p)
	s := string(b)
	if !strings.Contains(s, old) {
		panic(fmt.Sprintf("model.json has no %s", old))
	}
	os.WriteFile(p, []byte(strings.Replace(s, old, new, 1)), 0o644)
}

func TestHalfToFloat(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{
		{0x0000, 0}, {0x3c00, 1}, {0xc000, -2}, {0x3555, 0.333251953125},
		{0x7bff, 65504}, {0x0001, 5.960464477539063e-08}, {0x0400, 6.103515625e-05},
	} {
		require.Equal(t, c.f, halfToFloat(c.h), "%#04x", c.h)
	}
	require.True(t, math.IsInf(float64(halfToFloat(0x7c00)), 1))
	require.True(t, math.IsNaN(float64(halfToFloat(0x7e00))))
}
