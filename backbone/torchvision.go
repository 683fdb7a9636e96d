package backbone

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"

	"github.com/org/anomnet/internal/tensor"
)

// This file builds torchvision's ResNets (torchvision 0.14's definitions)
// from a state dict, and reads state dicts from PyTorch's zip checkpoints
// (.pth, .pt) and from safetensors files.

// TorchvisionOptions configure Torchvision.
type TorchvisionOptions struct {
	// Stages is how much of the network to build. N in 1..4 builds the stem
	// and layer1..layerN, the feature extractor, and reads only their
	// tensors from the checkpoint (the rest is ignored, so a truncated
	// checkpoint will do). 0 builds the whole network, avgpool and fc
	// included, and requires the checkpoint to hold exactly its tensors.
	Stages int
}

// tvArch is one member of torchvision's ResNet family.
type tvArch struct {
	bottleneck bool
	blocks     [4]int
	// width is width_per_group: a bottleneck's 1x1-3x3 part has
	// planes*width/64 channels (64: ResNet-50; 128: the wide ResNets).
	width int
}

var tvArchs = map[string]tvArch{
	"resnet18":        {blocks: [4]int{2, 2, 2, 2}, width: 64},
	"resnet50":        {bottleneck: true, blocks: [4]int{3, 4, 6, 3}, width: 64},
	"wide_resnet50_2": {bottleneck: true, blocks: [4]int{3, 4, 6, 3}, width: 128},
}

// bnEps is torchvision's BatchNorm2d epsilon.
const bnEps = 1e-5

// Torchvision builds the torchvision ResNet arch ("resnet18", "resnet50" or
// "wide_resnet50_2", as torchvision 0.14 defines them: the stride of a
// bottleneck on its 3x3 convolution) from a state dict in checkpoint: a
// .pth/.pt file written by torch.save (zip format; a dict holding the state
// dict under "state_dict" or "model" is unwrapped) or a .safetensors file.
// Keys may carry DataParallel's "module." prefix; float32, float16,
// bfloat16 and float64 tensors are read, as float32.
//
// Nodes (taps) are named after the state dict's modules, a convolution
// node computing its BatchNorm and, where one follows, its ReLU too:
//
//	input
//	conv1                relu(bn1(conv1(x))): bn1 and relu are folded in
//	maxpool
//	layerS.B.convK       convolution K of block B of layer S with its
//	                     BatchNorm, and its ReLU but for the block's last
//	layerS.B.downsample  the shortcut's 1x1 convolution and BatchNorm
//	layerS.B             the block's output, after the addition's ReLU
//	avgpool, fc          the head (Stages 0); "output" is fc's logits
//
// Besides those (Layers lists them), Forward takes "stageS" and "layerS"
// for layer S's output (its last block's), and "output". Tapping a folded
// module (bn1, layer1.0.bn2, layer1.0.downsample.1, ...) is an error that
// names the node to tap instead. The input is normalised with
// TorchvisionNormalization; Classes is nil.
func Torchvision(arch, checkpoint string, opts TorchvisionOptions) (*Net, error) {
	keys, err := torchvisionKeys(arch, opts.Stages)
	if err != nil {
		return nil, err
	}
	need := make(map[string]bool, len(keys))
	for _, k := range keys {
		need[k.Name] = true
	}
	weights, err := readCheckpoint(checkpoint, func(name string) bool { return need[name] })
	if err != nil {
		return nil, err
	}
	b := newTVBuilder(checkpoint, arch, weights)
	if err := b.build(tvArchs[arch], opts.Stages); err != nil {
		return nil, err
	}
	if opts.Stages == 0 {
		var extra []string
		for name := range weights {
			if !b.used[name] && !strings.HasSuffix(name, "num_batches_tracked") {
				extra = append(extra, name)
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			more := ""
			if len(extra) > 1 {
				more = fmt.Sprintf(" (and %d more)", len(extra)-1)
			}
			return nil, fmt.Errorf("anomnet/backbone: %s: unexpected key %s%s: is this checkpoint a %s?", checkpoint, extra[0], more, arch)
		}
	}
	n := b.net
	n.norm = TorchvisionNormalization
	if err := n.markStages(224); err != nil {
		return nil, err
	}
	want := opts.Stages
	if want == 0 {
		want = 4
	}
	if len(n.stages) != want {
		return nil, fmt.Errorf("anomnet/backbone: %s: found %d stages in %s, want %d (a bug in the builder)", checkpoint, len(n.stages), arch, want)
	}
	return n, nil
}

// tvKey is a tensor of a state dict: its key and shape.
type tvKey struct {
	Name  string
	Shape []int
}

// torchvisionKeys lists the tensors (num_batches_tracked left out) that
// Torchvision reads for arch built to the given stages, in state-dict
// order. It runs the builder without weights, so the list cannot drift
// from what the builder takes.
func torchvisionKeys(arch string, stages int) ([]tvKey, error) {
	a, ok := tvArchs[arch]
	if !ok {
		names := make([]string, 0, len(tvArchs))
		for k := range tvArchs {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("anomnet/backbone: unknown torchvision architecture %q (have %s)", arch, strings.Join(names, ", "))
	}
	if stages < 0 || stages > 4 {
		return nil, fmt.Errorf("anomnet/backbone: %s: Stages %d, want 1..4, or 0 for the whole network", arch, stages)
	}
	b := newTVBuilder("", arch, nil)
	if err := b.build(a, stages); err != nil {
		return nil, err
	}
	return b.keys, nil
}

// tvBuilder adds torchvision's modules to a Net. Without weights it only
// records the keys it would read. The first error sticks (as in
// bufio.Writer), so that build reads as the architecture.
type tvBuilder struct {
	file, arch string
	net        *Net
	weights    map[string]*weight // nil: list keys only
	used       map[string]bool
	keys       []tvKey
	err        error
}

func newTVBuilder(file, arch string, weights map[string]*weight) *tvBuilder {
	return &tvBuilder{
		file: file, arch: arch, weights: weights, used: map[string]bool{},
		net: newNet(arch),
	}
}

// take returns the data of a checkpoint tensor, checking its shape; nil
// when listing keys or after an error.
func (b *tvBuilder) take(name string, shape ...int) []float32 {
	b.keys = append(b.keys, tvKey{name, shape})
	if b.weights == nil || b.err != nil {
		return nil
	}
	w, ok := b.weights[name]
	switch {
	case !ok:
		b.err = fmt.Errorf("anomnet/backbone: %s: no key %s (want shape %v for %s; the checkpoint has %s)", b.file, name, shape, b.arch, someKeys(b.weights))
	case !slices.Equal(w.shape, shape):
		b.err = fmt.Errorf("anomnet/backbone: %s: key %s has shape %v, want %v for %s", b.file, name, w.shape, shape, b.arch)
	default:
		b.used[name] = true
		return w.data
	}
	return nil
}

// someKeys describes a checkpoint's keys by the first few in order, for an
// error to show what the file holds instead.
func someKeys(weights map[string]*weight) string {
	keys := make([]string, 0, len(weights))
	for k := range weights {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	switch {
	case len(keys) == 0:
		return "no keys"
	case len(keys) > 3:
		return fmt.Sprintf("%d keys: %s, ...", len(keys), strings.Join(keys[:3], ", "))
	}
	return fmt.Sprintf("%d keys: %s", len(keys), strings.Join(keys, ", "))
}

// live reports whether ops are to be built: weights given and no error.
func (b *tvBuilder) live() bool { return b.weights != nil && b.err == nil }

// convBN adds node name: convolution conv (k x k, no bias, padding k/2) of
// x to cout channels, with BatchNorm bn folded in and an optional ReLU.
func (b *tvBuilder) convBN(name, conv, bn string, x, cout, k, stride int, relu bool) int {
	cin := b.net.nodes[x].c
	w := b.take(conv+".weight", cout, cin, k, k)
	gamma := b.take(bn+".weight", cout)
	beta := b.take(bn+".bias", cout)
	mean := b.take(bn+".running_mean", cout)
	variance := b.take(bn+".running_var", cout)
	var o op
	if b.live() {
		c := &convOp{w: tensor.FromFloat32s(w, cout, cin, k, k), b: tensor.New(cout), stride: stride, pad: k / 2, relu: relu}
		c.foldBatchNorm(gamma, beta, mean, variance, bnEps)
		o = c
	}
	i := b.net.add(name, o, cout, x)
	for _, m := range []string{conv, bn} {
		if m != name {
			b.net.folded[m] = name
		}
	}
	return i
}

// build adds the stem, layer1..layerN (N = stages, 4 if 0) and, for stages
// 0, the head.
func (b *tvBuilder) build(a tvArch, stages int) error {
	x := b.net.add("input", nil, 3)
	x = b.convBN("conv1", "conv1", "bn1", x, 64, 7, 2, true)
	b.net.folded["relu"] = "conv1"
	x = b.net.add("maxpool", maxPoolOp{tensor.Pool2DParams{Kernel: 3, Stride: 2, Pad: 1}}, 64, x)
	n := stages
	if n == 0 {
		n = 4
	}
	for s := range n {
		planes, stride := 64<<s, 2
		if s == 0 {
			stride = 1 // layer1 follows the max pooling's stride
		}
		for i := range a.blocks[s] {
			x = b.block(a, fmt.Sprintf("layer%d.%d", s+1, i), x, planes, stride)
			stride = 1
		}
		b.net.byName[fmt.Sprintf("layer%d", s+1)] = x
	}
	if stages == 0 {
		c := b.net.nodes[x].c
		x = b.net.add("avgpool", gapOp{}, c, x)
		w := b.take("fc.weight", 1000, c)
		bias := b.take("fc.bias", 1000)
		var o op
		if b.live() {
			o = &denseOp{w: tensor.FromFloat32s(w, 1000, c), b: tensor.FromFloat32s(bias, 1000)}
		}
		b.net.add("fc", o, 1000, x)
	}
	return b.err
}

// block adds torchvision's BasicBlock or Bottleneck; the last ReLU is
// fused into the addition, which is what markStages looks for.
func (b *tvBuilder) block(a tvArch, name string, x, planes, stride int) int {
	cin := b.net.nodes[x].c
	var y, out int
	if a.bottleneck {
		width := planes * a.width / 64
		out = 4 * planes
		y = b.convBN(name+".conv1", name+".conv1", name+".bn1", x, width, 1, 1, true)
		y = b.convBN(name+".conv2", name+".conv2", name+".bn2", y, width, 3, stride, true)
		y = b.convBN(name+".conv3", name+".conv3", name+".bn3", y, out, 1, 1, false)
	} else {
		out = planes
		y = b.convBN(name+".conv1", name+".conv1", name+".bn1", x, out, 3, stride, true)
		y = b.convBN(name+".conv2", name+".conv2", name+".bn2", y, out, 3, 1, false)
	}
	short := x
	if stride != 1 || cin != out {
		short = b.convBN(name+".downsample", name+".downsample.0", name+".downsample.1", x, out, 1, stride, false)
	}
	i := b.net.addResidual(name, true, out, y, short)
	// The block applies its one ReLU module two or three times; the last
	// application is the block's output.
	b.net.folded[name+".relu"] = name
	return i
}

// ---- checkpoints ----

// floatDTypes are the element types read (as float32).
var floatDTypes = map[string]bool{"float32": true, "float16": true, "bfloat16": true, "float64": true}

// readCheckpoint reads a state dict, the reader chosen by file's extension.
// Only the tensors that keep accepts are decoded (and must be of a float
// type); the others are listed with their shapes and nil data. Keys lose
// DataParallel's "module." prefix, before keep sees them.
func readCheckpoint(file string, keep func(name string) bool) (map[string]*weight, error) {
	stripped := func(k string) bool { return keep == nil || keep(strings.TrimPrefix(k, "module.")) }
	var (
		raw map[string]*weight
		err error
	)
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".pth", ".pt":
		raw, err = readPTH(file, stripped)
	case ".safetensors":
		raw, err = readSafetensors(file, stripped)
	default:
		return nil, fmt.Errorf("anomnet/backbone: %s: unknown checkpoint extension %q (supported: .pth and .pt from torch.save, .safetensors)", file, ext)
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]*weight, len(raw))
	for k, w := range raw {
		out[strings.TrimPrefix(k, "module.")] = w
	}
	if len(out) < len(raw) {
		for k := range raw {
			if _, ok := raw["module."+k]; ok {
				return nil, fmt.Errorf("anomnet/backbone: %s: key %s appears both with and without the \"module.\" prefix", file, k)
			}
		}
	}
	return out, nil
}

// decodeFloats converts little-endian elements of dtype (a key of
// floatDTypes) in b to dst.
func decodeFloats(dst []float32, b []byte, dtype string) {
	switch dtype {
	case "float32":
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "float16":
		for i := range dst {
			dst[i] = math.Float32frombits(pytorch.FloatBits16to32(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case "bfloat16":
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case "float64":
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	default:
		panic("anomnet/backbone: decodeFloats of " + dtype)
	}
}

// numel is the number of elements of shape, or -1 if a dimension is
// negative or the count exceeds limit (which also rules out overflow).
func numel(shape []int, limit int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > limit/d {
			return -1
		}
		n *= d
	}
	if n > limit {
		return -1
	}
	return n
}

// ---- safetensors ----

// safetensorsDTypes maps safetensors' dtypes to element sizes, and the
// float ones to floatDTypes' names.
var (
	safetensorsDTypes = map[string]int{
		"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
		"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
	}
	safetensorsFloats = map[string]string{"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}
)

// maxSafetensorsHeader is the safetensors format's own limit on the header.
const maxSafetensorsHeader = 100 << 20

// readSafetensors reads a safetensors file: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}} with an
// optional "__metadata__", then the data. Every size is checked against
// the file's before anything is allocated, so a forged header cannot make
// it allocate more than the file holds.
func readSafetensors(file string, keep func(string) bool) (map[string]*weight, error) {
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("anomnet/backbone: %s: %s", file, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %w", err)
	}
	size := st.Size()
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return nil, errorf("not a safetensors file: %d bytes, too short for the header length", size)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > uint64(size-8) || hlen > maxSafetensorsHeader {
		return nil, errorf("header length %d, but %d bytes follow it (limit %d): truncated or not a safetensors file", hlen, size-8, maxSafetensorsHeader)
	}
	header := make([]byte, hlen)
	if _, err := io.ReadFull(f, header); err != nil {
		return nil, errorf("reading the header: %v", err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(header, &entries); err != nil {
		return nil, errorf("header is not a JSON object: %v", err)
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		if name != "__metadata__" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	start := 8 + int64(hlen)
	dataLen := size - start
	var decoded int64 // bytes read for kept tensors, at most dataLen
	out := make(map[string]*weight, len(names))
	for _, name := range names {
		var e struct {
			DType   string  `json:"dtype"`
			Shape   []int   `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(entries[name], &e); err != nil {
			return nil, errorf("tensor %s: bad header entry: %v", name, err)
		}
		elem, ok := safetensorsDTypes[e.DType]
		if !ok {
			return nil, errorf("tensor %s: unknown dtype %q", name, e.DType)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1] < e.Offsets[0] || e.Offsets[1] > dataLen {
			return nil, errorf("tensor %s: data_offsets %v outside the %d bytes of data (truncated file?)", name, e.Offsets, dataLen)
		}
		nbytes := e.Offsets[1] - e.Offsets[0]
		n := numel(e.Shape, int(dataLen))
		if n < 0 || int64(n*elem) != nbytes {
			return nil, errorf("tensor %s: shape %v of %s does not fit data_offsets %v (%d bytes)", name, e.Shape, e.DType, e.Offsets, nbytes)
		}
		w := &weight{shape: e.Shape}
		if w.shape == nil {
			w.shape = []int{}
		}
		out[name] = w
		if !keep(name) {
			continue
		}
		dtype, ok := safetensorsFloats[e.DType]
		if !ok {
			return nil, errorf("tensor %s is %s; anomnet reads F32, F16, BF16 and F64", name, e.DType)
		}
		if decoded += nbytes; decoded > dataLen {
			return nil, errorf("tensor %s: tensors overlap (more bytes claimed than the file holds)", name)
		}
		buf := make([]byte, nbytes)
		if _, err := f.ReadAt(buf, start+e.Offsets[0]); err != nil {
			return nil, errorf("tensor %s: %v", name, err)
		}
		w.data = make([]float32, n)
		decodeFloats(w.data, buf, dtype)
	}
	return out, nil
}

// ---- PyTorch zip checkpoints ----

// maxPickle bounds data.pkl, the pickled structure of a checkpoint (tens of
// kilobytes for a ResNet's state dict).
const maxPickle = 64 << 20

// legacyMagic starts torch.save's pre-1.6 format: the pickled magic number
// after the protocol opcode.
var legacyMagic = []byte{0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// readPTH reads a state dict saved by torch.save in its zip format: the
// pickle data.pkl, whose tensors refer to storages stored as data/<key>.
// Storages are read only for the tensors that keep accepts.
func readPTH(file string, keep func(string) bool) (map[string]*weight, error) {
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("anomnet/backbone: %s: %s", file, fmt.Sprintf(format, args...))
	}
	zr, err := zip.OpenReader(file)
	if err != nil {
		if _, serr := os.Stat(file); serr != nil {
			return nil, fmt.Errorf("anomnet/backbone: %w", serr)
		}
		if head, _ := readHead(file, 16); len(head) > 2 && bytes.HasPrefix(head[2:], legacyMagic) {
			return nil, errorf("PyTorch's legacy (pre-1.6) format; re-save it with a recent PyTorch: torch.save(torch.load(old), new)")
		}
		return nil, errorf("not a PyTorch checkpoint: not a zip archive, or a truncated one (%v)", err)
	}
	defer zr.Close()
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %w", err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	var pkl []string
	for _, f := range zr.File {
		records[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 {
			pkl = append(pkl, f.Name)
		}
	}
	if len(pkl) != 1 {
		return nil, errorf("not a PyTorch checkpoint: %d top-level data.pkl records in the zip archive, want 1", len(pkl))
	}
	prefix := strings.TrimSuffix(pkl[0], "data.pkl")
	if _, ok := records[prefix+"constants.pkl"]; ok {
		return nil, errorf("a TorchScript archive (torch.jit.save); anomnet reads state dicts: torch.save(model.state_dict(), path)")
	}
	if bo, ok := records[prefix+"byteorder"]; ok {
		if b, err := readRecord(bo, 16, st.Size()); err != nil || string(b) != "little" {
			return nil, errorf("byteorder record %q, want \"little\"", b)
		}
	}
	data, err := readRecord(records[pkl[0]], maxPickle, st.Size())
	if err != nil {
		return nil, errorf("%s: %v", pkl[0], err)
	}
	if err := checkPickle(data); err != nil {
		return nil, errorf("corrupt %s: %v", pkl[0], err)
	}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = pthFindClass
	u.PersistentLoad = func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 5 || t.Get(0) != "storage" {
			return nil, fmt.Errorf("persistent id %v is not a storage", id)
		}
		typ, ok1 := t.Get(1).(*pthStorageType)
		key, ok2 := t.Get(2).(string)
		n, ok3 := t.Get(4).(int)
		if !ok1 || !ok2 || !ok3 || n < 0 {
			return nil, fmt.Errorf("storage %v: unexpected fields", id)
		}
		rec, ok := records[prefix+"data/"+key]
		if !ok {
			return nil, fmt.Errorf("storage %s missing from the archive", key)
		}
		s := &pthStorage{typ: typ, key: key, n: n, rec: rec, fileSize: st.Size()}
		if typ.elem > 0 && (uint64(n) > rec.UncompressedSize64/uint64(typ.elem) || uint64(n*typ.elem) != rec.UncompressedSize64) {
			return nil, fmt.Errorf("storage %s: %d elements of %s need %d bytes, the archive holds %d", key, n, typ.dtype, uint64(n)*uint64(typ.elem), rec.UncompressedSize64)
		}
		return s, nil
	}
	obj, err := loadPickle(&u)
	if err != nil {
		return nil, errorf("corrupt %s: %v", pkl[0], err)
	}
	entries, err := stateDictEntries(obj)
	if err != nil {
		return nil, errorf("%v", err)
	}
	out := make(map[string]*weight, len(entries))
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok {
			return nil, errorf("state dict key %v is a %T, not a string", e.key, e.key)
		}
		t, isTensor := e.value.(*pthTensor)
		w := &weight{}
		if isTensor {
			w.shape = t.size
		}
		out[name] = w
		if !keep(name) {
			continue
		}
		if !isTensor {
			return nil, errorf("key %s holds %s, not a tensor", name, pyTypeName(e.value))
		}
		if w.data, err = t.float32s(); err != nil {
			return nil, errorf("key %s: %v", name, err)
		}
	}
	return out, nil
}

// readHead returns up to n bytes from the start of a file.
func readHead(file string, n int) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF {
		err = nil
	}
	return b[:m], err
}

// readRecord reads a zip record of at most limit bytes. A record's sizes
// come from the archive; they are checked against the file's size (and
// deflate's largest ratio) before the buffer is allocated.
func readRecord(f *zip.File, limit int, fileSize int64) ([]byte, error) {
	n := f.UncompressedSize64
	ratio := uint64(1)
	if f.Method != zip.Store {
		ratio = 1032 // deflate's maximum
	}
	if n > uint64(limit) || f.CompressedSize64 > uint64(fileSize) || n > ratio*f.CompressedSize64 {
		return nil, fmt.Errorf("record %s: %d bytes (%d compressed) do not fit the %d-byte file", f.Name, n, f.CompressedSize64, fileSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %v", f.Name, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("record %s: %v", f.Name, err)
	}
	// archive/zip checks a record's CRC-32 only when a read reaches its
	// end: read on to EOF, or a flipped bit in the weights goes unnoticed.
	if _, err := io.ReadFull(rc, make([]byte, 1)); err != io.EOF {
		if err == nil {
			err = errors.New("longer than its header says")
		}
		return nil, fmt.Errorf("record %s: %v", f.Name, err)
	}
	return b, nil
}

// loadPickle runs the unpickler, turning a panic on malformed input into
// an error.
func loadPickle(u *pickle.Unpickler) (obj any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unpickling failed: %v", r)
		}
	}()
	return u.Load()
}

// checkPickle walks a pickle's opcodes and checks that each is one and
// that every length it declares fits in the bytes that follow: gopickle
// allocates what a length says before reading, so a forged length would
// otherwise allocate without bound (and an unknown opcode makes it panic).
func checkPickle(p []byte) error {
	skipLine := func(i int) int {
		if j := bytes.IndexByte(p[i:], '\n'); j >= 0 {
			return i + j + 1
		}
		return len(p)
	}
	for i := 0; i < len(p); {
		op := p[i]
		i++
		width := 0 // bytes of a length argument
		switch op {
		case '.': // STOP
			return nil
		case 'K', 'q', 'h', 0x80, 0x82: // one-byte arguments
			i++
		case 'M', 0x83:
			i += 2
		case 'J', 'r', 'j', 0x84:
			i += 4
		case 'G':
			i += 8
		case 'I', 'L', 'S', 'V', 'F', 'p', 'g', 'P': // newline-terminated
			i = skipLine(i)
		case 'c', 'i': // module and name lines
			i = skipLine(skipLine(i))
		case 'U', 'C', 0x8c, 0x8a:
			width = 1
		case 'T', 'B', 'X', 0x8b:
			width = 4
		case 0x8d, 0x8e, 0x96, 0x95:
			width = 8
		case '(', ')', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98: // no argument
		default:
			return fmt.Errorf("unknown opcode 0x%02x at %d", op, i-1)
		}
		if width == 0 {
			continue
		}
		if len(p)-i < width {
			return fmt.Errorf("opcode 0x%02x at %d: truncated", op, i-1)
		}
		var n uint64
		for k := width - 1; k >= 0; k-- {
			n = n<<8 | uint64(p[i+k])
		}
		i += width
		if n > uint64(len(p)-i) {
			return fmt.Errorf("opcode 0x%02x at %d declares %d bytes, %d remain", op, i-width-1, n, len(p)-i)
		}
		if op != 0x95 { // a FRAME's contents are opcodes themselves
			i += int(n)
		}
	}
	return nil
}

// pthStorageType is a torch.*Storage class of a checkpoint; dtype names
// the element type, elem its size (0 where unknown).
type pthStorageType struct {
	dtype string
	elem  int
}

var pthStorageTypes = map[string]pthStorageType{
	"FloatStorage": {"float32", 4}, "HalfStorage": {"float16", 2},
	"BFloat16Storage": {"bfloat16", 2}, "DoubleStorage": {"float64", 8},
	"LongStorage": {"int64", 8}, "IntStorage": {"int32", 4}, "ShortStorage": {"int16", 2},
	"CharStorage": {"int8", 1}, "ByteStorage": {"uint8", 1}, "BoolStorage": {"bool", 1},
	"ComplexFloatStorage": {"complex64", 8}, "ComplexDoubleStorage": {"complex128", 16},
}

// pthStorage is a storage of the archive, read when a tensor needs it.
type pthStorage struct {
	typ      *pthStorageType
	key      string
	n        int // elements
	rec      *zip.File
	fileSize int64
}

// pthTensor is what torch._utils._rebuild_tensor_v2 describes: a strided
// view of a storage.
type pthTensor struct {
	st           *pthStorage
	offset       int
	size, stride []int
}

// float32s returns the tensor's elements in row-major order, following
// its strides (a state dict may hold views: transposes, slices).
func (t *pthTensor) float32s() ([]float32, error) {
	typ := t.st.typ
	if !floatDTypes[typ.dtype] {
		return nil, fmt.Errorf("%s elements; anomnet reads float32, float16, bfloat16 and float64", typ.dtype)
	}
	n := numel(t.size, t.st.n)
	if n < 0 || len(t.stride) != len(t.size) || t.offset < 0 {
		return nil, fmt.Errorf("shape %v, strides %v and offset %d do not fit its storage of %d elements", t.size, t.stride, t.offset, t.st.n)
	}
	out := make([]float32, n)
	if n == 0 {
		return out, nil
	}
	if t.offset >= t.st.n {
		return nil, fmt.Errorf("offset %d past its storage of %d elements", t.offset, t.st.n)
	}
	last, contiguous, want := t.offset, true, 1
	for k := len(t.size) - 1; k >= 0; k-- {
		if t.stride[k] < 0 || t.stride[k] > t.st.n {
			return nil, fmt.Errorf("stride %v outside its storage of %d elements", t.stride, t.st.n)
		}
		if last += (t.size[k] - 1) * t.stride[k]; last >= t.st.n {
			return nil, fmt.Errorf("shape %v, strides %v and offset %d reach past its storage of %d elements", t.size, t.stride, t.offset, t.st.n)
		}
		if t.size[k] != 1 && t.stride[k] != want {
			contiguous = false
		}
		want *= t.size[k]
	}
	raw, err := readRecord(t.st.rec, t.st.n*typ.elem, t.st.fileSize)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %v", t.st.key, err)
	}
	if len(raw) != t.st.n*typ.elem {
		return nil, fmt.Errorf("storage %s: %d bytes, want %d", t.st.key, len(raw), t.st.n*typ.elem)
	}
	if contiguous {
		decodeFloats(out, raw[t.offset*typ.elem:], typ.dtype)
		return out, nil
	}
	all := make([]float32, t.st.n)
	decodeFloats(all, raw, typ.dtype)
	idx := make([]int, len(t.size))
	for i := range out {
		at := t.offset
		for k, j := range idx {
			at += j * t.stride[k]
		}
		out[i] = all[at]
		for k := len(idx) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < t.size[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out, nil
}

// pthFindClass resolves the globals of a checkpoint's pickle: tensors and
// storages become pthTensor and pthStorageType; any other class becomes a
// pickledClass, so that a checkpoint dict holding other objects (an
// optimizer's state, argparse options) still loads, and a pickled model is
// recognised by its class.
func pthFindClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	}
	if t, ok := pthStorageTypes[name]; ok && module == "torch" {
		return &t, nil
	}
	if module == "torch" && strings.HasSuffix(name, "Storage") {
		return &pthStorageType{dtype: name}, nil
	}
	return &pickledClass{module + "." + name}, nil
}

type rebuildTensor struct{}

// Call builds a pthTensor from (storage, offset, size, stride,
// requires_grad, backward_hooks[, metadata]).
func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(args))
	}
	st, ok := args[0].(*pthStorage)
	offset, ok2 := args[1].(int)
	size, ok3 := intTuple(args[2])
	stride, ok4 := intTuple(args[3])
	if !ok || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with unexpected arguments %v", args[:4])
	}
	return &pthTensor{st: st, offset: offset, size: size, stride: stride}, nil
}

type rebuildParameter struct{}

// Call returns the tensor of an nn.Parameter.
func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("_rebuild_parameter without arguments")
	}
	return args[0], nil
}

func intTuple(v any) ([]int, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int, t.Len())
	for i := range out {
		if out[i], ok = t.Get(i).(int); !ok {
			return nil, false
		}
	}
	return out, true
}

// pickledClass stands for a Python class the reader does not model; its
// instances are pickledObjects that remember it.
type pickledClass struct{ name string }

// Call stands for calling the class (pickle's REDUCE).
func (c *pickledClass) Call(args ...any) (any, error) { return &pickledObject{c.name}, nil }

// PyNew stands for the class's __new__ (pickle's NEWOBJ).
func (c *pickledClass) PyNew(args ...any) (any, error) { return &pickledObject{c.name}, nil }

// pickledObject is an instance of a pickledClass; its state is dropped.
type pickledObject struct{ class string }

// PySetState drops the object's state (pickle's BUILD).
func (*pickledObject) PySetState(any) error { return nil }

// PyDictSet drops an attribute (pickle's BUILD without __setstate__).
func (*pickledObject) PyDictSet(_, _ any) error { return nil }

func pyTypeName(v any) string {
	switch v := v.(type) {
	case *pickledObject:
		return "a " + v.class
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *types.List:
		return "a list"
	case *types.Tuple:
		return "a tuple"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case nil:
		return "None"
	}
	return fmt.Sprintf("a %T", v)
}

type pickleEntry struct{ key, value any }

// stateDictEntries returns the entries of a pickled state dict, unwrapping
// the common {"state_dict": ...} and {"model": ...} checkpoint dicts.
func stateDictEntries(obj any) ([]pickleEntry, error) {
	entries, ok := dictEntries(obj)
	if !ok {
		if o, isObj := obj.(*pickledObject); isObj {
			return nil, fmt.Errorf("holds a pickled %s, not a state dict; save one with torch.save(model.state_dict(), path)", o.class)
		}
		return nil, fmt.Errorf("holds %s, not a state dict", pyTypeName(obj))
	}
	for _, wrapper := range []string{"state_dict", "model"} {
		for _, e := range entries {
			if e.key != wrapper {
				continue
			}
			if inner, ok := dictEntries(e.value); ok {
				return inner, nil
			}
			if o, isObj := e.value.(*pickledObject); isObj {
				return nil, fmt.Errorf("%q holds a pickled %s, not a state dict; save one with torch.save(model.state_dict(), path)", wrapper, o.class)
			}
		}
	}
	return entries, nil
}

func dictEntries(obj any) ([]pickleEntry, bool) {
	switch d := obj.(type) {
	case *types.OrderedDict:
		out := make([]pickleEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			out = append(out, pickleEntry{entry.Key, entry.Value})
		}
		return out, true
	case *types.Dict:
		out := make([]pickleEntry, 0, d.Len())
		for _, e := range *d {
			out = append(out, pickleEntry{e.Key, e.Value})
		}
		return out, true
	}
	return nil, false
}
