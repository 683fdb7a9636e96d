package backbone

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/org/anomnet/internal/tensor"
)

// Net is a frozen feed-forward CNN: a graph of operations over NCHW float32
// tensors, with BatchNorm folded into the convolutions and ReLUs fused
// where a layer has one consumer. It is built from a file (a TensorFlow.js
// layers model or a torchvision state dict), never trained, and safe for
// concurrent use by several goroutines.
type Net struct {
	name    string
	nodes   []*node // topological order; nodes[0] is the input
	byName  map[string]int
	folded  map[string]string // a layer folded into another -> that layer
	stages  []int             // nodes of stage1, stage2, ... outputs
	norm    Normalization
	classes []string // class labels of the head, if any

	fingerprint struct {
		once sync.Once
		hex  string
	}
}

// Normalization is how a network expects its input: channels in BGR or RGB
// order, values scaled by Scale from [0, 1], then (v - Mean)/Std per channel
// in that order.
type Normalization struct {
	BGR       bool
	Scale     float32
	Mean, Std [3]float32
}

// CaffeNormalization is the Keras/Caffe ResNet-50's input: BGR in [0, 255]
// minus the ImageNet channel means.
var CaffeNormalization = Normalization{BGR: true, Scale: 255, Mean: [3]float32{103.939, 116.779, 123.68}, Std: [3]float32{1, 1, 1}}

// TorchvisionNormalization is torchvision's input: RGB in [0, 1], minus the
// ImageNet mean, divided by its standard deviation.
var TorchvisionNormalization = Normalization{Scale: 1, Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}

type node struct {
	name string
	op   op
	in   []int
	c    int // output channels
	uses int // consumers within the graph
}

// op is one operation of the graph. shape returns the output shape for the
// input shapes (or an error for inputs it cannot take); forward computes y.
type op interface {
	shape(in [][]int) ([]int, error)
	forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor)
	kind() string
}

// newNet returns an empty graph for a builder to fill.
func newNet(name string) *Net {
	return &Net{name: name, byName: map[string]int{}, folded: map[string]string{}}
}

// add appends node name computing o from the nodes in (c output channels)
// and returns its index.
func (n *Net) add(name string, o op, c int, in ...int) int {
	n.nodes = append(n.nodes, &node{name: name, op: o, in: in, c: c})
	for _, j := range in {
		n.nodes[j].uses++
	}
	n.byName[name] = len(n.nodes) - 1
	return len(n.nodes) - 1
}

// addResidual adds name = a + b (then a ReLU if relu). When a or b is the
// graph's last node, a convolution that nothing else reads yet, the
// addition is fused into it instead: the convolution accumulates onto the
// other input, which saves a pass over memory, and the convolution's name
// is folded into name.
func (n *Net) addResidual(name string, relu bool, c, a, b int) int {
	last := len(n.nodes) - 1
	for _, pair := range [][2]int{{a, b}, {b, a}} {
		conv, other := pair[0], pair[1]
		o, ok := n.nodes[conv].op.(*convOp)
		if conv != last || !ok || o.relu || o.residual || n.nodes[conv].uses != 0 || other == conv {
			continue
		}
		nd := n.nodes[conv]
		o.residual, o.relu = true, relu
		nd.in = append(nd.in, other)
		n.nodes[other].uses++
		for k, v := range n.folded {
			if v == nd.name {
				n.folded[k] = name
			}
		}
		n.folded[nd.name] = name
		delete(n.byName, nd.name)
		nd.name = name
		n.byName[name] = conv
		return conv
	}
	return n.add(name, &addOp{relu: relu}, c, a, b)
}

// Name returns the network's name, e.g. "resnet50".
func (n *Net) Name() string { return n.name }

// Fingerprint returns a SHA-256 digest (hex) of the network's graph (node
// names, kinds, wiring, channels), its normalization and every folded
// weight, so that a model can record exactly which backbone it was trained
// on. It is computed once, on first use.
func (n *Net) Fingerprint() string {
	n.fingerprint.once.Do(func() {
		h := sha256.New()
		fmt.Fprintf(h, "%s\n%+v\n", n.name, n.norm)
		var buf []byte
		for _, nd := range n.nodes {
			kind := "input"
			if nd.op != nil {
				kind = nd.op.kind()
			}
			fmt.Fprintf(h, "%s %s %v %d\n", nd.name, kind, nd.in, nd.c)
			if o, ok := nd.op.(*convOp); ok {
				fmt.Fprintf(h, "%d %d %v %v %v %v\n", o.stride, o.pad, o.same, o.relu, o.residual, o.w.Shape())
				for _, t := range []*tensor.Tensor{o.w, o.b} {
					if t == nil {
						continue
					}
					buf = buf[:0]
					for _, v := range t.Float32s() {
						buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
					}
					h.Write(buf)
				}
			}
		}
		n.fingerprint.hex = hex.EncodeToString(h.Sum(nil))
	})
	return n.fingerprint.hex
}

// Normalization returns how the network expects its input.
func (n *Net) Normalization() Normalization { return n.norm }

// Classes returns the labels of the classification head, or nil.
func (n *Net) Classes() []string { return n.classes }

// Layers returns the names of the graph's nodes in order, the names that
// Forward accepts besides "stage1".."stageN" and "output".
func (n *Net) Layers() []string {
	names := make([]string, len(n.nodes))
	for i, nd := range n.nodes {
		names[i] = nd.name
	}
	return names
}

// Stages is the number of stages ("stage1".."stageN") the network has.
func (n *Net) Stages() int { return len(n.stages) }

// resolve maps a tap name to a node index.
func (n *Net) resolve(tap string) (int, error) {
	if rest, ok := strings.CutPrefix(tap, "stage"); ok {
		var k int
		if _, err := fmt.Sscanf(rest, "%d", &k); err == nil && fmt.Sprint(k) == rest {
			if k < 1 || k > len(n.stages) {
				return 0, fmt.Errorf("anomnet/backbone: %s: tap %q: the network has stage1..stage%d", n.name, tap, len(n.stages))
			}
			return n.stages[k-1], nil
		}
	}
	if tap == "output" {
		return len(n.nodes) - 1, nil
	}
	if i, ok := n.byName[tap]; ok {
		return i, nil
	}
	if into, ok := n.folded[tap]; ok {
		return 0, fmt.Errorf("anomnet/backbone: %s: layer %q is folded into %q (BatchNorm and ReLU folding); tap %q instead", n.name, tap, into, into)
	}
	return 0, fmt.Errorf("anomnet/backbone: %s: no layer %q (taps: stage1..stage%d, output, or a name from Layers)", n.name, tap, len(n.stages))
}

// Forward runs the network on a batch x (N x 3 x H x W, normalised as
// Normalization says, on device d) and returns the outputs of the named
// taps in order. It computes only as far as the last tap needs and frees
// intermediate maps as soon as no later layer reads them.
func (n *Net) Forward(d tensor.Device, x *tensor.Tensor, taps ...string) ([]*tensor.Tensor, error) {
	if len(taps) == 0 {
		return nil, fmt.Errorf("anomnet/backbone: %s: Forward without taps", n.name)
	}
	want := make([]int, len(taps))
	last := 0
	for i, t := range taps {
		k, err := n.resolve(t)
		if err != nil {
			return nil, err
		}
		want[i], last = k, max(last, k)
	}
	xs := x.Shape()
	if len(xs) != 4 || xs[1] != n.nodes[0].c {
		return nil, fmt.Errorf("anomnet/backbone: %s: input %v, want N x %d x H x W", n.name, x, n.nodes[0].c)
	}
	vals := make([]*tensor.Tensor, last+1)
	uses := make([]int, last+1)
	for i := 1; i <= last; i++ {
		for _, j := range n.nodes[i].in {
			uses[j]++
		}
	}
	for _, k := range want {
		uses[k]++ // taps are kept
	}
	vals[0] = x
	uses[0]++ // the caller owns x
	// Maps no longer needed are kept for reuse by later layers of the same
	// size: every op overwrites its output, so a reused map need not be
	// cleared, and the forward pass allocates little after its first
	// layers.
	spare := map[int][]*tensor.Tensor{}
	alloc := func(shape []int) *tensor.Tensor {
		n := 1
		for _, v := range shape {
			n *= v
		}
		if ts := spare[n]; len(ts) > 0 {
			spare[n] = ts[:len(ts)-1]
			return ts[len(ts)-1].Reshape(shape...)
		}
		return d.Zeros(shape...)
	}
	release := func(t *tensor.Tensor) { spare[t.Len()] = append(spare[t.Len()], t) }
	defer func() {
		for _, ts := range spare {
			for _, t := range ts {
				d.Free(t)
			}
		}
	}()
	for i := 1; i <= last; i++ {
		nd := n.nodes[i]
		ins := make([]*tensor.Tensor, len(nd.in))
		shapes := make([][]int, len(nd.in))
		for k, j := range nd.in {
			ins[k], shapes[k] = vals[j], vals[j].Shape()
		}
		shape, err := nd.op.shape(shapes)
		if err != nil {
			for j, v := range vals {
				if v != nil && j != 0 {
					d.Free(v)
				}
			}
			return nil, fmt.Errorf("anomnet/backbone: %s: layer %s (%s): %v", n.name, nd.name, nd.op.kind(), err)
		}
		var y *tensor.Tensor
		if acc, ok := nd.op.(interface{ accumulates() int }); ok && acc.accumulates() >= 0 {
			// The op adds onto one input: work in that input's memory when
			// this is its last reader (and the caller does not own it),
			// else on a copy.
			j := nd.in[acc.accumulates()]
			if uses[j] == 1 && j != 0 {
				y, vals[j] = vals[j].Reshape(shape...), nil
				uses[j] = 0
			} else {
				y = alloc(shape)
				d.Copy(y, vals[j])
			}
		} else {
			y = alloc(shape)
		}
		nd.op.forward(d, y, ins)
		vals[i] = y
		for _, j := range nd.in {
			if uses[j] == 0 { // handed over as the output above
				continue
			}
			if uses[j]--; uses[j] == 0 {
				release(vals[j])
				vals[j] = nil
			}
		}
	}
	out := make([]*tensor.Tensor, len(want))
	for i, k := range want {
		out[i] = vals[k]
	}
	return out, d.Sync()
}

// markStages finds the stage outputs: the last residual-block output
// (an addition, possibly followed by its ReLU) at each spatial stride, for
// an input of size probe x probe.
func (n *Net) markStages(probe int) error {
	shapes := make([][]int, len(n.nodes))
	shapes[0] = []int{1, n.nodes[0].c, probe, probe}
	stride := map[int]int{}
	var order []int
	for i := 1; i < len(n.nodes); i++ {
		nd := n.nodes[i]
		in := make([][]int, len(nd.in))
		for k, j := range nd.in {
			in[k] = shapes[j]
		}
		s, err := nd.op.shape(in)
		if err != nil {
			return fmt.Errorf("anomnet/backbone: %s: layer %s at %dx%d input: %v", n.name, nd.name, probe, probe, err)
		}
		shapes[i] = s
		if isResidual(nd.op) && len(s) == 4 {
			st := probe / s[2]
			if _, seen := stride[st]; !seen {
				order = append(order, st)
			}
			stride[st] = i
		}
	}
	n.stages = n.stages[:0]
	for _, st := range order {
		n.stages = append(n.stages, stride[st])
	}
	return nil
}

// isResidual reports whether an op ends a residual block: an addition, or
// a convolution with the addition fused in.
func isResidual(o op) bool {
	switch o := o.(type) {
	case *addOp:
		return true
	case *convOp:
		return o.residual
	}
	return false
}

// ---- operations ----

// convOp is a convolution with bias, BatchNorm folded in, and an optional
// fused ReLU. With same set, TensorFlow's "same" padding is worked out per
// input size (asymmetric padding goes through an explicit zero pad).
type convOp struct {
	w, b   *tensor.Tensor // O x C x KH x KW, O
	stride int
	pad    int
	same   bool
	relu   bool
	// residual: a second input is added to the output (before the ReLU).
	residual bool
}

func (o *convOp) kind() string { return "conv" }

// samePad returns TensorFlow's "same" padding before and after for an axis.
func samePad(in, k, s int) (before, after int) {
	out := (in + s - 1) / s
	total := max((out-1)*s+k-in, 0)
	return total / 2, total - total/2
}

func (o *convOp) geometry(h, w int) (p tensor.Conv2DParams, top, left, bottom, right int) {
	kh, kw := o.w.Dim(2), o.w.Dim(3)
	p = tensor.Conv2DParams{StrideH: o.stride, StrideW: o.stride, PadH: o.pad, PadW: o.pad}
	if o.same {
		top, bottom = samePad(h, kh, o.stride)
		left, right = samePad(w, kw, o.stride)
		if top == bottom && left == right {
			p.PadH, p.PadW = top, left
			top, bottom, left, right = 0, 0, 0, 0
		} else {
			p.PadH, p.PadW = 0, 0
		}
	}
	return
}

func (o *convOp) shape(in [][]int) ([]int, error) {
	x := in[0]
	if len(x) != 4 || x[1] != o.w.Dim(1) {
		return nil, fmt.Errorf("input %v, want %d channels", x, o.w.Dim(1))
	}
	p, t, l, b, r := o.geometry(x[2], x[3])
	h, w := x[2]+t+b, x[3]+l+r
	if h+2*p.PadH < o.w.Dim(2) || w+2*p.PadW < o.w.Dim(3) {
		return nil, fmt.Errorf("input %dx%d smaller than the %dx%d kernel", x[2], x[3], o.w.Dim(2), o.w.Dim(3))
	}
	oh, ow := p.Out(h, w, o.w.Dim(2), o.w.Dim(3))
	y := []int{x[0], o.w.Dim(0), oh, ow}
	if o.residual && !slices.Equal(in[1], y) {
		return nil, fmt.Errorf("adding %v to the convolution's %v", in[1], y)
	}
	return y, nil
}

// accumulates names the input that forward adds its result onto.
func (o *convOp) accumulates() int {
	if o.residual {
		return 1
	}
	return -1
}

func (o *convOp) forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor) {
	x := xs[0]
	p, t, l, b, r := o.geometry(x.Dim(2), x.Dim(3))
	if t+l+b+r > 0 {
		padded := d.Zeros(x.Dim(0), x.Dim(1), x.Dim(2)+t+b, x.Dim(3)+l+r)
		d.ZeroPad2D(padded, x, t, l)
		x = padded
		defer d.Free(padded)
	}
	p.ReLU, p.Accumulate = o.relu, o.residual
	d.Conv2D(y, x, o.w, o.b, p)
}

// foldBatchNorm scales the convolution so that it computes
// gamma*(conv(x)+b-mean)/sqrt(var+eps)+beta.
func (o *convOp) foldBatchNorm(gamma, beta, mean, variance []float32, eps float64) {
	w, b := o.w.Float32s(), o.b.Float32s()
	per := o.w.Len() / o.w.Dim(0)
	for k := range b {
		s := float64(gamma[k]) / math.Sqrt(float64(variance[k])+eps)
		for i := range per {
			w[k*per+i] = float32(float64(w[k*per+i]) * s)
		}
		b[k] = float32((float64(b[k])-float64(mean[k]))*s + float64(beta[k]))
	}
}

type reluOp struct{}

func (reluOp) kind() string                                                   { return "relu" }
func (reluOp) shape(in [][]int) ([]int, error)                                { return in[0], nil }
func (reluOp) forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor) { d.ReLU(y, xs[0]) }

// addOp sums its inputs (a residual connection), with an optional ReLU.
type addOp struct{ relu bool }

func (*addOp) kind() string { return "add" }

func (*addOp) shape(in [][]int) ([]int, error) {
	for _, s := range in[1:] {
		if !slices.Equal(s, in[0]) {
			return nil, fmt.Errorf("adding %v and %v", in[0], s)
		}
	}
	return in[0], nil
}

func (o *addOp) forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor) {
	d.Add(y, xs[0], xs[1])
	for _, x := range xs[2:] {
		d.Add(y, y, x)
	}
	if o.relu {
		d.ReLU(y, y)
	}
}

// padOp pads with zeros.
type padOp struct{ top, bottom, left, right int }

func (padOp) kind() string { return "zero padding" }

func (o padOp) shape(in [][]int) ([]int, error) {
	x := in[0]
	return []int{x[0], x[1], x[2] + o.top + o.bottom, x[3] + o.left + o.right}, nil
}

func (o padOp) forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor) {
	d.ZeroPad2D(y, xs[0], o.top, o.left)
}

// maxPoolOp is max pooling with a square window.
type maxPoolOp struct{ p tensor.Pool2DParams }

func (maxPoolOp) kind() string { return "max pooling" }

func (o maxPoolOp) shape(in [][]int) ([]int, error) {
	x := in[0]
	if x[2]+2*o.p.Pad < o.p.Kernel || x[3]+2*o.p.Pad < o.p.Kernel {
		return nil, fmt.Errorf("input %dx%d smaller than the %d window", x[2], x[3], o.p.Kernel)
	}
	oh, ow := o.p.Out(x[2], x[3])
	return []int{x[0], x[1], oh, ow}, nil
}

func (o maxPoolOp) forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor) {
	d.MaxPool2D(y, xs[0], o.p)
}

// gapOp is global average pooling to N x C x 1 x 1.
type gapOp struct{}

func (gapOp) kind() string                    { return "global average pooling" }
func (gapOp) shape(in [][]int) ([]int, error) { return []int{in[0][0], in[0][1], 1, 1}, nil }
func (gapOp) forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor) {
	d.AdaptiveAvgPool2D(y, xs[0])
}

// denseOp is a fully connected layer on N x C x 1 x 1 (or N x C) input,
// output N x units x 1 x 1, with an optional softmax.
type denseOp struct {
	w, b    *tensor.Tensor // units x in, units
	softmax bool
}

func (*denseOp) kind() string { return "dense" }

func (o *denseOp) shape(in [][]int) ([]int, error) {
	x := in[0]
	per := 1
	for _, v := range x[1:] {
		per *= v
	}
	if per != o.w.Dim(1) {
		return nil, fmt.Errorf("input %v has %d features per item, want %d", x, per, o.w.Dim(1))
	}
	return []int{x[0], o.w.Dim(0), 1, 1}, nil
}

func (o *denseOp) forward(d tensor.Device, y *tensor.Tensor, xs []*tensor.Tensor) {
	n, units := y.Dim(0), y.Dim(1)
	x := xs[0].Reshape(n, o.w.Dim(1))
	out := y.Reshape(n, units)
	// Bias first, as a rank-one product ones(N x 1) * b(1 x units), then
	// accumulate x * W^T on top of it.
	ones := d.Zeros(n, 1)
	d.Fill(ones, 1)
	d.Gemm(false, false, 1, ones, o.b.Reshape(1, units), 0, out)
	d.Free(ones)
	d.Gemm(false, true, 1, x, o.w, 1, out)
	if o.softmax {
		softmaxRows(d, out)
	}
}

// softmaxRows applies a softmax to each row, on the host: the head runs once
// per image, on a thousand numbers.
func softmaxRows(d tensor.Device, t *tensor.Tensor) {
	h := d.ToHost(t)
	rows, cols := t.Dim(0), t.Dim(1)
	v := h.Float32s()
	for r := range rows {
		row := v[r*cols : (r+1)*cols]
		m := slices.Max(row)
		var s float64
		for i, x := range row {
			e := math.Exp(float64(x - m))
			row[i] = float32(e)
			s += e
		}
		for i := range row {
			row[i] = float32(float64(row[i]) / s)
		}
	}
	back := d.FromHost(h)
	d.Copy(t, back)
	d.Free(back)
}
