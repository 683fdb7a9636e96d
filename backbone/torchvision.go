package backbone

import (
	"encoding/binary"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pytorch"

	"github.com/org/anomnet/internal/tensor"
)

// This file builds torchvision's ResNets (torchvision 0.14's definitions)
// from a state dict, read by readCheckpoint from PyTorch's zip checkpoints
// (.pth, .pt; pth.go) or from safetensors files (safetensors.go).

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
