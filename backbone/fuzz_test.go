package backbone

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/org/anomnet/internal/testutil"
)

// The fuzz targets feed the readers of outside weight files arbitrary
// bytes. Each asserts that the reader returns (an error or a value) without
// panicking, and that what it allocates stays proportional to its input:
// a forged size field must not turn a small file into a huge allocation.

// fuzzLimit is the allocation allowed for an input of n bytes: a fixed
// allowance for decoder state plus a multiple of the input.
func fuzzLimit(n int) uint64 { return 4<<20 + 64*uint64(n) }

// tinyTFJS is a one-convolution TensorFlow.js model and its shard.
func tinyTFJS() (modelJSON, shard []byte) {
	const c, f = 3, 2
	for i := range 3 * 3 * c * f {
		shard = binary.LittleEndian.AppendUint32(shard, math.Float32bits(float32(i%7)/7))
	}
	for i := range f {
		shard = binary.LittleEndian.AppendUint32(shard, math.Float32bits(float32(i)))
	}
	layer := func(name, class string, cfg map[string]any, in ...string) map[string]any {
		cfg["name"] = name
		var nodes []any
		for _, s := range in {
			nodes = append(nodes, []any{[]any{s, 0, 0, map[string]any{}}})
		}
		return map[string]any{"name": name, "class_name": class, "config": cfg, "inbound_nodes": nodes}
	}
	model := map[string]any{
		"format": "layers-model",
		"modelTopology": map[string]any{"model_config": map[string]any{
			"class_name": "Model",
			"config": map[string]any{"name": "tiny", "layers": []any{
				layer("in", "InputLayer", map[string]any{"batch_input_shape": []any{nil, 8, 8, c}}),
				layer("conv", "Conv2D", map[string]any{"filters": f, "kernel_size": []int{3, 3}, "strides": []int{1, 1},
					"padding": "same", "activation": "relu", "use_bias": true}, "in"),
			}},
		}},
		"weightsManifest": []any{map[string]any{"paths": []string{"shard1"}, "weights": []any{
			map[string]any{"name": "conv/kernel", "shape": []int{3, 3, c, f}, "dtype": "float32"},
			map[string]any{"name": "conv/bias", "shape": []int{f}, "dtype": "float32"},
		}}},
	}
	b, err := json.Marshal(model)
	if err != nil {
		panic(err)
	}
	return b, shard
}

// FuzzTFJS parses model.json, reads the manifest's weights from one shard
// and builds the network.
func FuzzTFJS(f *testing.F) {
	mj, shard := tinyTFJS()
	f.Add(mj, shard)
	f.Add(mj, shard[:len(shard)/2])
	f.Add(mj[:len(mj)/2], shard)
	// A manifest entry claiming 2^40 elements backed by a few bytes.
	f.Add([]byte(`{"modelTopology":{"class_name":"Model","config":{"layers":[{"class_name":"InputLayer","name":"in","config":{"batch_input_shape":[null,8,8,3]}}]}},"weightsManifest":[{"paths":["s"],"weights":[{"name":"w","shape":[1048576,1048576],"dtype":"float32"}]}]}`), shard)
	f.Add([]byte(`{"modelTopology":{"class_name":"Model","config":{"layers":[{"class_name":"InputLayer","name":"in","config":{"batch_input_shape":[null,1000000000,1000000000,3]}}]}}}`), []byte{})
	f.Fuzz(func(t *testing.T, modelJSON, shard []byte) {
		testutil.AllocBound(t, fuzzLimit(len(modelJSON)+len(shard)), func() {
			// Only the first shard has bytes, so that a manifest naming
			// many paths cannot multiply the input.
			served := false
			read := func(string) ([]byte, error) {
				if served {
					return nil, nil
				}
				served = true
				return shard, nil
			}
			net, err := loadTFJS("model.json", modelJSON, read, Normalization{})
			if err == nil && net == nil {
				t.Fatal("nil network without an error")
			}
		})
	})
}

// tinySafetensors is a safetensors file holding one F32 tensor of shape
// [2, 3] and a metadata entry.
func tinySafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// FuzzSafetensors reads arbitrary bytes as a .safetensors checkpoint.
func FuzzSafetensors(f *testing.F) {
	data := make([]byte, 24)
	for i := range 6 {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(i)))
	}
	good := tinySafetensors(`{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}`, data)
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(tinySafetensors(`{"w":{"dtype":"F32","shape":[1073741824,1073741824],"data_offsets":[0,24]}}`, data))
	f.Add(tinySafetensors(`{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"v":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}`, data))
	huge := binary.LittleEndian.AppendUint64(nil, 1<<62) // a header length past the file
	f.Add(append(huge, '{', '}'))
	if b, err := os.ReadFile(filepath.Join("testdata", "torchvision", "resnet50_stage1.safetensors")); err == nil {
		f.Add(b[:min(len(b), 4096)]) // the real header, truncated data
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.AllocBound(t, fuzzLimit(len(b)), func() {
			ws, err := readSafetensors(file, func(string) bool { return true })
			if err == nil && ws == nil {
				t.Fatal("nil weights without an error")
			}
		})
	})
}

// FuzzPTH reads arbitrary bytes as a torch.save zip checkpoint.
func FuzzPTH(f *testing.F) {
	for _, name := range []string{"pth_dtypes.pth", "whole_model.pth", "legacy.pth"} {
		b, err := os.ReadFile(filepath.Join("testdata", "torchvision", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		flipped := append([]byte(nil), b...)
		flipped[len(flipped)/3] ^= 0x40
		f.Add(flipped)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(dir, "fuzz.pth")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.AllocBound(t, fuzzLimit(len(b)), func() {
			ws, err := readPTH(file, func(string) bool { return true })
			if err == nil && ws == nil {
				t.Fatal("nil weights without an error")
			}
		})
	})
}

// TestPTHBitFlips flips each byte of a small checkpoint in turn: the reader
// must report the damage or return exactly the original weights. (The zip
// records' CRC-32 went unchecked before readRecord read on to EOF, and 264
// of these flips changed weights silently.)
func TestPTHBitFlips(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "torchvision", "pth_dtypes.pth"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "flipped.pth")
	floats := func(k string) bool { return !strings.Contains(k, "i64") && !strings.Contains(k, "num_batches") }
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	want, err := readPTH(file, floats)
	if err != nil {
		t.Fatal(err)
	}
	var sample error
	for at := range b {
		flipped := bytes.Clone(b)
		flipped[at] ^= 0x40
		if err := os.WriteFile(file, flipped, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readPTH(file, floats)
		if err != nil {
			if sample == nil && strings.Contains(err.Error(), "checksum") {
				sample = err
			}
			continue
		}
		for k, w := range got {
			if o, ok := want[k]; ok && !slices.Equal(o.data, w.data) {
				t.Fatalf("flip at byte %d changed %s without an error", at, k)
			}
		}
	}
	t.Logf("a flipped data byte: %v", sample)
}
