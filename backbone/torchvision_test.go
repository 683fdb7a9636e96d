package backbone

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/internal/tensor"
)

// The fixtures come from scripts/torchvision_fixtures.py (torch 1.13,
// torchvision 0.14, random weights with a fixed seed).
const tvTestdata = "testdata/torchvision"

var tvArchNames = []string{"resnet18", "resnet50", "wide_resnet50_2"}

// tvReference is keys.json: per architecture, torchvision's state-dict keys
// and shapes, and each convolution's kernel size, stride and padding.
type tvReference map[string]struct {
	Keys  [][2]json.RawMessage
	Convs map[string][3]int
}

func readTVReference(t *testing.T) tvReference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tvTestdata, "keys.json"))
	require.NoError(t, err)
	var ref tvReference
	require.NoError(t, json.Unmarshal(b, &ref))
	require.Len(t, ref, len(tvArchNames))
	return ref
}

// TestTorchvisionKeysMatchTorchvision compares the tensors the builder reads
// for the whole networks with torchvision's own state dicts, key by key in
// order, and checks that a partial build reads a prefix of them.
func TestTorchvisionKeysMatchTorchvision(t *testing.T) {
	want := readTVReference(t)
	for _, arch := range tvArchNames {
		var wantKeys []tvKey
		for _, kv := range want[arch].Keys {
			var k tvKey
			require.NoError(t, json.Unmarshal(kv[0], &k.Name))
			require.NoError(t, json.Unmarshal(kv[1], &k.Shape))
			wantKeys = append(wantKeys, k)
		}
		got, err := torchvisionKeys(arch, 0)
		require.NoError(t, err)
		require.Equal(t, wantKeys, got, arch)
		for stages := 1; stages <= 4; stages++ {
			got, err := torchvisionKeys(arch, stages)
			require.NoError(t, err)
			var prefix []tvKey
			for _, k := range wantKeys {
				if strings.HasPrefix(k.Name, "conv1.") || strings.HasPrefix(k.Name, "bn1.") ||
					(strings.HasPrefix(k.Name, "layer") && k.Name[5]-'0' <= byte(stages)) {
					prefix = append(prefix, k)
				}
			}
			require.Equal(t, prefix, got, "%s up to layer%d", arch, stages)
		}
	}
	_, err := torchvisionKeys("resnext50_32x4d", 0)
	require.ErrorContains(t, err, `unknown torchvision architecture "resnext50_32x4d" (have resnet18, resnet50, wide_resnet50_2)`)
	_, err = torchvisionKeys("resnet18", 5)
	require.ErrorContains(t, err, "Stages 5, want 1..4, or 0")
}

// TestTorchvisionMatchesReference loads the stem and layer1 of a resnet18
// (.pth, float32) and a resnet50 (.safetensors of mixed dtypes) with random
// BatchNorm statistics, and compares the folded float32 network with
// torchvision's float64 outputs.
func TestTorchvisionMatchesReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tvTestdata, "expected.json"))
	require.NoError(t, err)
	var fix struct {
		Height, Width int
		Checkpoints   map[string]struct {
			Arch string
			Taps map[string]struct {
				Shape       []int
				Mean, First []float64
			}
		}
	}
	require.NoError(t, json.Unmarshal(b, &fix))
	require.Len(t, fix.Checkpoints, 2)
	x, err := TorchvisionNormalization.Input(formulaImage("ramp", fix.Height, fix.Width))
	require.NoError(t, err)
	worst := 0.0
	defer func() { t.Logf("worst relative L2 error: %.3g", worst) }()
	for file, c := range fix.Checkpoints {
		net, err := Torchvision(c.Arch, filepath.Join(tvTestdata, file), TorchvisionOptions{Stages: 1})
		require.NoError(t, err, file)
		require.Equal(t, c.Arch, net.Name())
		require.Equal(t, 1, net.Stages())
		require.Equal(t, TorchvisionNormalization, net.Normalization())
		require.Nil(t, net.Classes())
		stage, err := net.resolve("stage1")
		require.NoError(t, err)
		layer, err := net.resolve("layer1")
		require.NoError(t, err)
		require.Equal(t, stage, layer)
		require.Equal(t, "layer1."+map[string]string{"resnet18": "1", "resnet50": "2"}[c.Arch], net.nodes[stage].name)

		// Go's taps and the names in expected.json.
		taps := []string{"conv1", "maxpool", "stage1"}
		ref := map[string]string{"conv1": "conv1", "maxpool": "maxpool", "stage1": "layer1"}
		outs, err := net.Forward(tensor.CPU{}, x, taps...)
		require.NoError(t, err)
		for k, tap := range taps {
			want := c.Taps[ref[tap]]
			got := outs[k]
			require.Equal(t, append([]int{1}, want.Shape...), got.Shape(), "%s %s", file, tap)
			ch, hw := want.Shape[0], want.Shape[1]*want.Shape[2]
			v := got.Float32s()
			mean := make([]float32, ch)
			for i := range ch {
				var s float64
				for _, u := range v[i*hw : (i+1)*hw] {
					s += float64(u)
				}
				mean[i] = float32(s / float64(hw))
			}
			for name, pair := range map[string]struct {
				got  []float32
				want []float64
			}{"mean": {mean, want.Mean}, "first 4 channels": {v[:4*hw], want.First}} {
				require.Len(t, pair.want, len(pair.got))
				e := relL2(pair.got, pair.want)
				worst = max(worst, e)
				require.Less(t, e, 1e-4, "%s %s %s: relative L2 error", file, tap, name)
			}
		}
	}
}

// TestTorchvisionPTHDtypes reads tensors that torch.save wrote in each float
// dtype, as strided views of a shared storage, with "module." prefixes, in
// a {"state_dict": ...} wrapper.
func TestTorchvisionPTHDtypes(t *testing.T) {
	file := filepath.Join(tvTestdata, "pth_dtypes.pth")
	floats := func(name string) bool { return name != "i64" && !strings.HasSuffix(name, "num_batches_tracked") }
	w, err := readCheckpoint(file, floats)
	require.NoError(t, err)
	base := func(i, j int) float32 { return float32(i*5+j) / 4 }
	var want []float32
	for i := range 4 {
		for j := range 5 {
			want = append(want, base(i, j))
		}
	}
	for _, name := range []string{"f32", "f16", "bf16", "f64"} {
		require.Contains(t, w, name)
		assert.Equal(t, []int{4, 5}, w[name].shape, name)
		assert.Equal(t, want, w[name].data, name)
	}
	want = want[:0]
	for i := range 3 {
		for j := range 4 {
			want = append(want, base(i+1, j+1))
		}
	}
	assert.Equal(t, []int{3, 4}, w["view"].shape)
	assert.Equal(t, want, w["view"].data, "base[1:, 1:]")
	want = want[:0]
	for i := range 5 {
		for j := range 4 {
			want = append(want, base(j, i))
		}
	}
	assert.Equal(t, []int{5, 4}, w["t"].shape)
	assert.Equal(t, want, w["t"].data, "base.t()")
	// Tensors that are not kept are listed, not decoded.
	assert.Equal(t, &weight{shape: []int{3}}, w["i64"])
	assert.Equal(t, &weight{shape: []int{}}, w["bn.num_batches_tracked"])
	require.Len(t, w, 8)

	_, err = readCheckpoint(file, nil)
	require.ErrorContains(t, err, file+": key module.i64: int64 elements; anomnet reads float32, float16, bfloat16 and float64")
}

// writeSafetensors writes tensors (name, dtype, shape, little-endian data)
// in the safetensors format.
func writeSafetensors(t *testing.T, file string, tensors []stTensor) {
	t.Helper()
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, st := range tensors {
		header[st.name] = map[string]any{"dtype": st.dtype, "shape": st.shape, "data_offsets": []int{len(data), len(data) + len(st.data)}}
		data = append(data, st.data...)
	}
	h, err := json.Marshal(header)
	require.NoError(t, err)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	out = append(append(out, h...), data...)
	require.NoError(t, os.WriteFile(file, out, 0o644))
}

type stTensor struct {
	name, dtype string
	shape       []int
	data        []byte
}

// synthCheckpoint returns the tensors of arch up to the given stages, as
// F16 zeros but for fc.bias (i%64)/8, with the key prefix given.
func synthCheckpoint(t *testing.T, arch string, stages int, prefix string) []stTensor {
	t.Helper()
	keys, err := torchvisionKeys(arch, stages)
	require.NoError(t, err)
	var tensors []stTensor
	for _, k := range keys {
		n := 1
		for _, d := range k.Shape {
			n *= d
		}
		data := make([]byte, 2*n)
		if k.Name == "fc.bias" {
			for i := range n {
				binary.LittleEndian.PutUint16(data[2*i:], float16Bits(float32(i%64)/8))
			}
		}
		tensors = append(tensors, stTensor{prefix + k.Name, "F16", k.Shape, data})
	}
	return append(tensors, stTensor{prefix + "bn1.num_batches_tracked", "I64", []int{}, make([]byte, 8)})
}

// TestTorchvisionConvGeometry checks every convolution's kernel, stride and
// padding against torchvision's modules, in particular that a bottleneck
// strides in its 3x3 convolution (ResNet v1.5). The networks are built up
// to layer2, the first strided stage (resnet18 whole).
func TestTorchvisionConvGeometry(t *testing.T) {
	ref := readTVReference(t)
	dir := t.TempDir()
	for _, arch := range tvArchNames {
		stages := 2
		if arch == "resnet18" {
			stages = 4
		}
		file := filepath.Join(dir, arch+".safetensors")
		writeSafetensors(t, file, synthCheckpoint(t, arch, stages, ""))
		net, err := Torchvision(arch, file, TorchvisionOptions{Stages: stages})
		require.NoError(t, err)
		seen := 0
		for _, nd := range net.nodes {
			conv, ok := nd.op.(*convOp)
			if !ok {
				continue
			}
			module := nd.name
			if conv.residual { // the block's addition fused into its last convolution
				for name, into := range net.folded {
					if _, isConv := ref[arch].Convs[name]; into == nd.name && isConv {
						module = name
					}
					if _, isConv := ref[arch].Convs[name+".0"]; into == nd.name && strings.HasSuffix(name, ".downsample") && isConv {
						module = name + ".0"
					}
				}
			}
			if strings.HasSuffix(module, ".downsample") {
				module += ".0"
			}
			want, ok := ref[arch].Convs[module]
			require.True(t, ok, "%s: node %s is no torchvision convolution", arch, nd.name)
			require.False(t, conv.same, module)
			require.Equal(t, want, [3]int{conv.w.Dim(2), conv.stride, conv.pad}, "%s %s: kernel, stride, padding", arch, module)
			require.Equal(t, conv.w.Dim(2), conv.w.Dim(3))
			seen++
		}
		wantSeen := 0
		for module := range ref[arch].Convs {
			if !strings.HasPrefix(module, "layer") || module[5]-'0' <= byte(stages) {
				wantSeen++
			}
		}
		require.Equal(t, wantSeen, seen, arch)
	}
}

// TestTorchvisionWholeNetwork builds a whole resnet18 from a synthetic
// checkpoint (zeros but for fc.bias, keys with DataParallel's prefix), so
// that the output is fc's bias, and checks the stages, taps and key checks.
func TestTorchvisionWholeNetwork(t *testing.T) {
	tensors := synthCheckpoint(t, "resnet18", 0, "module.")
	dir := t.TempDir()
	file := filepath.Join(dir, "resnet18.safetensors")
	writeSafetensors(t, file, tensors)

	net, err := Torchvision("resnet18", file, TorchvisionOptions{})
	require.NoError(t, err)
	require.Equal(t, 4, net.Stages())
	for s := 1; s <= 4; s++ {
		i, err := net.resolve("stage" + string(rune('0'+s)))
		require.NoError(t, err)
		j, err := net.resolve("layer" + string(rune('0'+s)))
		require.NoError(t, err)
		require.Equal(t, i, j)
		require.Equal(t, "layer"+string(rune('0'+s))+".1", net.nodes[i].name)
	}
	// Each block's addition is fused into its last convolution (the
	// shortcut's where it has one), whose name folds into the block's.
	require.Contains(t, net.Layers(), "layer2.0.conv1")
	require.NotContains(t, net.Layers(), "layer2.0.downsample")
	require.Equal(t, "fc", net.Layers()[len(net.Layers())-1])
	x := tensor.New(1, 3, 40, 36)
	outs, err := net.Forward(tensor.CPU{}, x, "stage4", "output", "layer3.1.conv1")
	require.NoError(t, err)
	require.Equal(t, []int{1, 512, 2, 2}, outs[0].Shape())
	require.Equal(t, []int{1, 1000, 1, 1}, outs[1].Shape())
	require.Equal(t, []int{1, 256, 3, 3}, outs[2].Shape())
	for i, v := range outs[1].Float32s() {
		require.Equal(t, float32(i%64)/8, v, "output %d is fc.bias", i)
	}
	for tap, into := range map[string]string{"bn1": "conv1", "relu": "conv1", "layer2.0.bn2": "layer2.0.conv2",
		"layer2.0.downsample.1": "layer2.0", "layer2.0.downsample": "layer2.0", "layer3.1.conv2": "layer3.1",
		"layer2.0.relu": "layer2.0"} {
		_, err = net.Forward(tensor.CPU{}, x, tap)
		require.ErrorContains(t, err, `"`+tap+`" is folded into "`+into+`"`)
	}

	// A key the architecture lacks is an error for a whole network only.
	tensors = append(tensors, stTensor{"module.layer5.0.conv1.weight", "F16", []int{1}, make([]byte, 2)})
	writeSafetensors(t, file, tensors)
	_, err = Torchvision("resnet18", file, TorchvisionOptions{})
	require.ErrorContains(t, err, file+": unexpected key layer5.0.conv1.weight: is this checkpoint a resnet18?")
	net, err = Torchvision("resnet18", file, TorchvisionOptions{Stages: 2})
	require.NoError(t, err)
	require.Equal(t, 2, net.Stages())
	_, err = net.Forward(tensor.CPU{}, x, "layer3")
	require.ErrorContains(t, err, `no layer "layer3"`)

	// A resnet18 is not a resnet50.
	_, err = Torchvision("resnet50", file, TorchvisionOptions{Stages: 1})
	require.ErrorContains(t, err, file+": key layer1.0.conv1.weight has shape [64 64 3 3], want [64 64 1 1] for resnet50")
}

// float16Bits rounds f (exactly representable in this test) to IEEE half.
func float16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	if f == 0 {
		return sign
	}
	return sign | uint16(exp)<<10 | uint16(b>>13&0x3ff)
}

// TestTorchvisionCheckpointErrors checks that damaged, forged and wrong
// files give errors naming the file and the problem.
func TestTorchvisionCheckpointErrors(t *testing.T) {
	dir := t.TempDir()
	r18 := filepath.Join(tvTestdata, "resnet18_stage1.pth")
	r50 := filepath.Join(tvTestdata, "resnet50_stage1.safetensors")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		return b
	}
	// pthWith is a zip checkpoint whose data.pkl is pkl.
	pthWith := func(name string, pkl []byte) string {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
		require.NoError(t, err)
		_, err = w.Write(pkl)
		require.NoError(t, err)
		require.NoError(t, zw.Close())
		return write(name, buf.Bytes())
	}
	huge := binary.LittleEndian.AppendUint64(nil, 1<<40)
	// str is a pickled string (BINUNICODE).
	str := func(s string) []byte {
		return append(append([]byte{'X'}, binary.LittleEndian.AppendUint32(nil, uint32(len(s)))...), s...)
	}
	// {"model": {"conv1.weight": 1}, "epoch": 1}
	var wrapped []byte
	for _, part := range [][]byte{{0x80, 2, '}', '('}, str("model"), {'}', '('}, str("conv1.weight"), {'K', 1, 'u'},
		str("epoch"), {'K', 1, 'u', '.'}} {
		wrapped = append(wrapped, part...)
	}

	for _, c := range []struct {
		name, arch string
		file       func() string
		stages     int
		want       []string
	}{
		{"missing key", "resnet18", func() string { return r18 }, 2,
			[]string{r18 + ": no key layer2.0.conv1.weight (want shape [128 64 3 3] for resnet18; the checkpoint has 30 keys: bn1.bias, "}},
		{"wrong shape", "resnet50", func() string { return r18 }, 1,
			[]string{r18 + ": key layer1.0.conv1.weight has shape [64 64 3 3], want [64 64 1 1] for resnet50"}},
		{"wrong shape safetensors", "resnet18", func() string { return r50 }, 1,
			[]string{r50 + ": key layer1.0.conv1.weight has shape [64 64 1 1], want [64 64 3 3] for resnet18"}},
		{"pt extension", "resnet18", func() string { return write("r18.pt", read(r18)) }, 1, nil},
		{"unknown extension", "resnet18", func() string { return write("r18.onnx", read(r18)) }, 1,
			[]string{"r18.onnx: unknown checkpoint extension \".onnx\" (supported: .pth and .pt from torch.save, .safetensors)"}},
		{"no file", "resnet18", func() string { return filepath.Join(dir, "absent.pth") }, 1,
			[]string{"absent.pth: no such file"}},
		{"truncated safetensors", "resnet50", func() string {
			b := read(r50)
			return write("trunc.safetensors", b[:len(b)/2])
		}, 1, []string{"trunc.safetensors: tensor ", "data_offsets", "outside the", "truncated file?"}},
		{"truncated safetensors header", "resnet50", func() string {
			return write("trunc_header.safetensors", read(r50)[:100])
		}, 1, []string{"trunc_header.safetensors: header length", "truncated or not a safetensors file"}},
		{"tiny safetensors", "resnet50", func() string { return write("tiny.safetensors", []byte{1, 2}) }, 1,
			[]string{"tiny.safetensors: not a safetensors file: 2 bytes"}},
		{"forged huge tensor", "resnet18", func() string {
			h := []byte(`{"conv1.weight":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}`)
			return write("forged.safetensors", append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...), make([]byte, 16)...))
		}, 1, []string{"forged.safetensors: tensor conv1.weight: data_offsets [0 4398046511104] outside the 16 bytes of data"}},
		{"forged shape", "resnet18", func() string {
			h := []byte(`{"conv1.weight":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,16]}}`)
			return write("shape.safetensors", append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...), make([]byte, 16)...))
		}, 1, []string{"shape.safetensors: tensor conv1.weight: shape [1099511627776 1099511627776] of F32 does not fit data_offsets [0 16] (16 bytes)"}},
		{"forged header length", "resnet18", func() string {
			return write("hlen.safetensors", append(binary.LittleEndian.AppendUint64(nil, 1<<62), make([]byte, 32)...))
		}, 1, []string{"hlen.safetensors: header length 4611686018427387904, but 32 bytes follow it"}},
		{"bad header json", "resnet18", func() string {
			return write("json.safetensors", append(binary.LittleEndian.AppendUint64(nil, 4), "{nop"...))
		}, 1, []string{"json.safetensors: header is not a JSON object"}},
		{"not a zip", "resnet18", func() string { return write("junk.pth", bytes.Repeat([]byte("junk"), 100)) }, 1,
			[]string{"junk.pth: not a PyTorch checkpoint: not a zip archive"}},
		{"truncated pth", "resnet18", func() string {
			b := read(r18)
			return write("trunc.pth", b[:len(b)/2])
		}, 1, []string{"trunc.pth: not a PyTorch checkpoint: not a zip archive, or a truncated one"}},
		{"forged pickle length", "resnet18", func() string {
			return pthWith("forged.pth", append([]byte{0x80, 2, 0x8e}, huge...))
		}, 1, []string{"forged.pth: corrupt archive/data.pkl: opcode 0x8e at 2 declares 1099511627776 bytes, 0 remain"}},
		{"corrupt pickle", "resnet18", func() string { return pthWith("corrupt.pth", []byte{0x80, 2, 0xff, '.'}) }, 1,
			[]string{"corrupt.pth: corrupt archive/data.pkl: unknown opcode 0xff at 2"}},
		{"pickle of a list", "resnet18", func() string { return pthWith("list.pth", []byte{0x80, 2, ']', '.'}) }, 1,
			[]string{"list.pth: holds a list, not a state dict"}},
		{"not a tensor", "resnet18", func() string { return pthWith("wrapped.pth", wrapped) }, 1,
			[]string{"wrapped.pth: key conv1.weight holds an int, not a tensor"}},
		{"module prefix twice", "resnet18", func() string {
			p := filepath.Join(dir, "twice.safetensors")
			writeSafetensors(t, p, []stTensor{{"conv1.weight", "F32", []int{1}, make([]byte, 4)},
				{"module.conv1.weight", "F32", []int{1}, make([]byte, 4)}})
			return p
		}, 1, []string{"twice.safetensors: key conv1.weight appears both with and without the \"module.\" prefix"}},
		{"non-float safetensors", "resnet18", func() string {
			p := filepath.Join(dir, "int.safetensors")
			writeSafetensors(t, p, []stTensor{{"conv1.weight", "I32", []int{1}, make([]byte, 4)}})
			return p
		}, 1, []string{"int.safetensors: tensor conv1.weight is I32; anomnet reads F32, F16, BF16 and F64"}},
		{"whole model", "resnet18", func() string { return filepath.Join(tvTestdata, "whole_model.pth") }, 1,
			[]string{"whole_model.pth: holds a pickled torch.nn.modules.container.Sequential, not a state dict; save one with torch.save(model.state_dict(), path)"}},
		{"legacy format", "resnet18", func() string { return filepath.Join(tvTestdata, "legacy.pth") }, 1,
			[]string{"legacy.pth: PyTorch's legacy (pre-1.6) format"}},
		{"unknown arch", "resnet19", func() string { return r18 }, 1, []string{`unknown torchvision architecture "resnet19"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			net, err := Torchvision(c.arch, c.file(), TorchvisionOptions{Stages: c.stages})
			if c.want == nil {
				require.NoError(t, err)
				require.Equal(t, c.stages, net.Stages())
				return
			}
			require.Error(t, err)
			require.Nil(t, net)
			t.Log(err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
			require.True(t, strings.HasPrefix(err.Error(), "anomnet/backbone: "), err.Error())
		})
	}
}

// TestTorchvisionCheckPickle checks the guard on pickles against the
// pickles of the fixtures (it must pass them all) and forged ones.
func TestTorchvisionCheckPickle(t *testing.T) {
	for _, f := range []string{"resnet18_stage1.pth", "pth_dtypes.pth", "whole_model.pth"} {
		zr, err := zip.OpenReader(filepath.Join(tvTestdata, f))
		require.NoError(t, err)
		for _, rec := range zr.File {
			if strings.HasSuffix(rec.Name, "/data.pkl") {
				b, err := readRecord(rec, maxPickle, 1<<30)
				require.NoError(t, err)
				require.NoError(t, checkPickle(b), f)
			}
		}
		zr.Close()
	}
	for _, p := range [][]byte{
		{'X', 0xff, 0xff, 0xff, 0x7f},           // BINUNICODE of 2 GiB
		{0x95, 0, 0, 0, 0, 0, 0, 0, 1},          // FRAME of 2^56 bytes
		{0x80, 4, 0x8c, 5, 'a', 'b'},            // SHORT_BINUNICODE past the end
		{0x80, 4, 0x95, 3, 0, 0, 0, 0, 0, 0, 0}, // FRAME past the end
		{0x80, 2, 0x99, '.'},                    // not an opcode
	} {
		require.Error(t, checkPickle(p), "%x", p)
	}
	require.NoError(t, checkPickle([]byte{0x80, 4, 0x95, 4, 0, 0, 0, 0, 0, 0, 0, 0x8c, 1, 'a', '.'}))
}

// FuzzTorchvisionPTH feeds arbitrary pickles, beside the storages of
// pth_dtypes.pth, to the .pth reader: it may fail, never panic or allocate
// without bound.
func FuzzTorchvisionPTH(f *testing.F) {
	zr, err := zip.OpenReader(filepath.Join(tvTestdata, "pth_dtypes.pth"))
	require.NoError(f, err)
	defer zr.Close()
	records := map[string][]byte{}
	for _, rec := range zr.File {
		b, err := readRecord(rec, 1<<20, 1<<20)
		require.NoError(f, err)
		name := rec.Name[strings.IndexByte(rec.Name, '/')+1:]
		if name == "data.pkl" {
			f.Add(b)
			continue
		}
		records[name] = b
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		records["data.pkl"] = pkl
		for name, b := range records {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: zip.Store})
			require.NoError(t, err)
			_, err = w.Write(b)
			require.NoError(t, err)
		}
		require.NoError(t, zw.Close())
		file := filepath.Join(t.TempDir(), "fuzz.pth")
		require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o644))
		_, _ = readCheckpoint(file, nil)
	})
}

// FuzzTorchvisionSafetensors feeds arbitrary files to the safetensors
// reader: it may fail, never panic or allocate more than the file holds.
func FuzzTorchvisionSafetensors(f *testing.F) {
	h := []byte(`{"__metadata__":{"a":"b"},"w":{"dtype":"F16","shape":[2,1],"data_offsets":[0,4]},"v":{"dtype":"BF16","shape":[],"data_offsets":[4,6]}}`)
	f.Add(append(append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...), 1, 2, 3, 4, 5, 6))
	f.Fuzz(func(t *testing.T, b []byte) {
		file := filepath.Join(t.TempDir(), "fuzz.safetensors")
		require.NoError(t, os.WriteFile(file, b, 0o644))
		w, err := readCheckpoint(file, nil)
		if err == nil {
			var n int
			for _, x := range w {
				n += 4 * len(x.data)
			}
			require.LessOrEqual(t, n, 2*8*len(b), "decoded more than the file holds")
		}
	})
}
