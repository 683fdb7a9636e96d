package backbone

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// This file reads TensorFlow.js layers models: model.json (a Keras model
// topology and a weights manifest) and the binary weight shards it names.

// tfjsModel is the part of model.json that anomnet reads.
type tfjsModel struct {
	Format          string          `json:"format"`
	ModelTopology   json.RawMessage `json:"modelTopology"`
	WeightsManifest []struct {
		Paths   []string         `json:"paths"`
		Weights []tfjsWeightSpec `json:"weights"`
	} `json:"weightsManifest"`
}

type tfjsWeightSpec struct {
	Name         string `json:"name"`
	Shape        []int  `json:"shape"`
	DType        string `json:"dtype"`
	Quantization *struct {
		DType string   `json:"dtype"`
		Scale *float64 `json:"scale"`
		Min   *float64 `json:"min"`
	} `json:"quantization"`
}

// kerasModel is a Keras functional model's config.
type kerasModel struct {
	Name         string          `json:"name"`
	Layers       []kerasLayer    `json:"layers"`
	InputLayers  json.RawMessage `json:"input_layers"`
	OutputLayers json.RawMessage `json:"output_layers"`
}

type kerasLayer struct {
	Name         string          `json:"name"`
	ClassName    string          `json:"class_name"`
	Config       json.RawMessage `json:"config"`
	InboundNodes json.RawMessage `json:"inbound_nodes"`
}

// weight is one named array of the manifest, dequantized to float32.
type weight struct {
	shape []int
	data  []float32
}

// maxWeightElems bounds what one manifest entry may ask for (4 Gi elements
// would be 16 GB), so that a forged manifest cannot exhaust memory.
const maxWeightElems = 1 << 30

// parseTFJS decodes model.json and returns the Keras model config.
func parseTFJS(file string, b []byte) (*tfjsModel, *kerasModel, error) {
	var m tfjsModel
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("anomnet/backbone: %s: not a TensorFlow.js model.json: %v", file, err)
	}
	if m.Format != "" && m.Format != "layers-model" {
		return nil, nil, fmt.Errorf("anomnet/backbone: %s: format %q, want a layers-model (graph models are not supported)", file, m.Format)
	}
	if len(m.ModelTopology) == 0 {
		return nil, nil, fmt.Errorf("anomnet/backbone: %s: no modelTopology", file)
	}
	// The topology is either {"model_config": {...}} (Keras save format)
	// or the model config itself.
	var top struct {
		ModelConfig *struct {
			ClassName string     `json:"class_name"`
			Config    kerasModel `json:"config"`
		} `json:"model_config"`
		ClassName string     `json:"class_name"`
		Config    kerasModel `json:"config"`
	}
	if err := json.Unmarshal(m.ModelTopology, &top); err != nil {
		return nil, nil, fmt.Errorf("anomnet/backbone: %s: modelTopology: %v", file, err)
	}
	cls, cfg := top.ClassName, top.Config
	if top.ModelConfig != nil {
		cls, cfg = top.ModelConfig.ClassName, top.ModelConfig.Config
	}
	if cls != "Model" && cls != "Functional" {
		return nil, nil, fmt.Errorf("anomnet/backbone: %s: model class %q, want a functional Keras Model", file, cls)
	}
	if len(cfg.Layers) == 0 {
		return nil, nil, fmt.Errorf("anomnet/backbone: %s: the model has no layers", file)
	}
	return &m, &cfg, nil
}

// readWeights concatenates the shards of each manifest group, as the format
// defines, and cuts them into the named weights. read returns a shard's
// bytes given its path relative to model.json.
func readWeights(m *tfjsModel, read func(path string) ([]byte, error)) (map[string]*weight, error) {
	out := make(map[string]*weight)
	for gi, g := range m.WeightsManifest {
		var buf []byte
		var ends []int // cumulative shard ends, to name the shard a weight lies in
		for _, p := range g.Paths {
			b, err := read(p)
			if err != nil {
				return nil, err
			}
			buf = append(buf, b...)
			ends = append(ends, len(buf))
		}
		off := 0
		for _, w := range g.Weights {
			n := 1
			for _, d := range w.Shape {
				if d < 0 || (d > 0 && n > maxWeightElems/d) {
					return nil, fmt.Errorf("anomnet/backbone: weight %s: bad shape %v", w.Name, w.Shape)
				}
				n *= d
			}
			dt := w.DType
			if w.Quantization != nil {
				dt = w.Quantization.DType
			}
			size := map[string]int{"float32": 4, "int32": 4, "uint8": 1, "uint16": 2, "float16": 2}[dt]
			if size == 0 {
				return nil, fmt.Errorf("anomnet/backbone: weight %s: unsupported dtype %q", w.Name, dt)
			}
			if off+n*size > len(buf) {
				shard := "past the last shard"
				if len(g.Paths) > 0 {
					shard = g.Paths[len(g.Paths)-1]
				}
				for i, e := range ends {
					if off+n*size <= e || i == len(ends)-1 {
						shard = g.Paths[i]
						break
					}
				}
				return nil, fmt.Errorf("anomnet/backbone: weight %s needs bytes [%d, %d) of group %d but its shards hold %d: %s is truncated or missing; fetch the weights again",
					w.Name, off, off+n*size, gi, len(buf), shard)
			}
			data, err := decodeWeight(w, dt, buf[off:off+n*size], n)
			if err != nil {
				return nil, err
			}
			off += n * size
			if _, dup := out[w.Name]; dup {
				return nil, fmt.Errorf("anomnet/backbone: weight %s appears twice in the manifest", w.Name)
			}
			out[w.Name] = &weight{shape: append([]int(nil), w.Shape...), data: data}
		}
		if off != len(buf) {
			return nil, fmt.Errorf("anomnet/backbone: weight group %d: the manifest uses %d bytes but the shards hold %d", gi, off, len(buf))
		}
	}
	return out, nil
}

func decodeWeight(w tfjsWeightSpec, dt string, b []byte, n int) ([]float32, error) {
	data := make([]float32, n)
	le := binary.LittleEndian
	switch dt {
	case "float32":
		for i := range data {
			data[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return data, nil
	case "int32":
		for i := range data {
			data[i] = float32(int32(le.Uint32(b[4*i:])))
		}
		return data, nil
	case "float16":
		for i := range data {
			data[i] = halfToFloat(le.Uint16(b[2*i:]))
		}
		return data, nil
	}
	// uint8 and uint16: affine quantization, value = q*scale + min.
	q := w.Quantization
	if q == nil || q.Scale == nil || q.Min == nil {
		return nil, fmt.Errorf("anomnet/backbone: weight %s: %s quantization without scale and min", w.Name, dt)
	}
	scale, lo := *q.Scale, *q.Min
	for i := range data {
		var v uint16
		if dt == "uint8" {
			v = uint16(b[i])
		} else {
			v = le.Uint16(b[2*i:])
		}
		data[i] = float32(float64(v)*scale + lo)
	}
	return data, nil
}

// halfToFloat converts an IEEE 754 binary16 value to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}
