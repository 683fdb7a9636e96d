package adapter

import (
	"fmt"
	"slices"

	"github.com/org/anomnet/internal/tensor"
)

// Options configure an Adapter; the zero value is METHOD.md's default: a
// 1x1 convolution, 3x3 average pooling and the largest tapped map as the
// common output size.
type Options struct {
	// Kernel is the convolution's kernel size: 1 (the default, also when
	// 0) or 3, padded by 1 so that the map keeps its size.
	Kernel int `json:"kernel"`
	// NoPool turns off the 3x3 average aggregation.
	NoPool bool `json:"no_pool"`
	// Centre, from 0 to 1, moves that much of the aggregation's weight to
	// the window's centre: the aggregated map is (1-Centre) times the 3x3
	// mean plus Centre times the map itself. 0 (the default) is
	// METHOD.md's plain mean; 0.1 gives the centre 0.2 and each neighbour
	// 0.1, the weights PatchCore's embedding gives its first layer's 3x3
	// patch. A sharper aggregation keeps a small defect's signal where it
	// is instead of spreading it over its neighbours.
	Centre float64 `json:"centre,omitempty"`
	// Height and Width are the common output size. A 0 (the default) takes
	// that axis from the map Grid names, or without one from the largest
	// tapped map by area (the first one on ties).
	Height int `json:"height"`
	Width  int `json:"width"`
	// Grid, when not 0, is the tapped map, counted from 1 in the order of
	// the maps, whose size the output takes (where Height and Width are
	// 0): larger maps are pooled down to it, smaller ones interpolated up.
	Grid int `json:"grid,omitempty"`
}

// Adapter holds one Layer per tapped map. Its methods only read it, so
// Forward may run from many goroutines at once; training replaces the
// contents of the Layers' tensors between calls.
type Adapter struct {
	// Layers are the convolutions, one per tapped map in the order of the
	// maps passed to Forward.
	Layers []Layer

	channels []int
	opts     Options
}

// Layer is one tapped map's convolution: W is C x (C+2) x k x k (the map's
// channels, then the x and y coordinate channels), B has C elements, both
// on the adapter's device.
type Layer struct {
	W, B *tensor.Tensor
}

// poolParams are METHOD.md's neighbourhood aggregation: 3x3, stride 1,
// padding 1, the padding counted in the mean (as PyTorch's AvgPool2d).
var poolParams = tensor.Pool2DParams{Kernel: 3, Stride: 1, Pad: 1}

// New returns an identity-initialised adapter for maps with the given
// channel counts, its parameters allocated on d: each W is 1 from input
// channel c to output channel c (at the centre tap for Kernel 3) and 0
// elsewhere, coordinate channels included, and each B is 0. It panics on
// bad options (a kernel other than 1 or 3, a negative size), no channels
// or a channel count below 1.
func New(d tensor.Device, channels []int, opts Options) *Adapter {
	if opts.Kernel == 0 {
		opts.Kernel = 1
	}
	if opts.Kernel != 1 && opts.Kernel != 3 {
		panic(fmt.Sprintf("anomnet/adapter: kernel %d (want 1 or 3)", opts.Kernel))
	}
	if opts.Height < 0 || opts.Width < 0 {
		panic(fmt.Sprintf("anomnet/adapter: output size %dx%d", opts.Height, opts.Width))
	}
	if opts.Grid < 0 || opts.Grid > len(channels) {
		panic(fmt.Sprintf("anomnet/adapter: grid of map %d of %d", opts.Grid, len(channels)))
	}
	if !(opts.Centre >= 0 && opts.Centre <= 1) {
		panic(fmt.Sprintf("anomnet/adapter: centre weight %g (want 0 to 1)", opts.Centre))
	}
	if len(channels) == 0 {
		panic("anomnet/adapter: no tapped maps")
	}
	for i, c := range channels {
		if c <= 0 {
			panic(fmt.Sprintf("anomnet/adapter: map %d has %d channels", i, c))
		}
	}
	a := &Adapter{Layers: make([]Layer, len(channels)), channels: slices.Clone(channels), opts: opts}
	k := opts.Kernel
	for i, c := range channels {
		w := tensor.New(c, c+2, k, k)
		ws := w.Float32s()
		for o := range c {
			ws[((o*(c+2)+o)*k+k/2)*k+k/2] = 1
		}
		a.Layers[i] = Layer{W: d.FromHost(w), B: d.Zeros(c)}
	}
	return a
}

// Channels returns the channel count of each tapped map (a copy).
func (a *Adapter) Channels() []int { return slices.Clone(a.channels) }

// Options returns the adapter's options, with Kernel set (1 for 0).
func (a *Adapter) Options() Options { return a.opts }

// Dim returns D, the channel count of the adapted map: the sum of the
// tapped maps' channels.
func (a *Adapter) Dim() int {
	d := 0
	for _, c := range a.channels {
		d += c
	}
	return d
}

// OutSize returns the output height and width for input maps of the given
// (height, width) sizes, one per tapped map: Options' Height and Width
// where set, else those of the map Grid names, else the largest map's by
// area (the first on ties).
func (a *Adapter) OutSize(sizes [][2]int) (h, w int) {
	if len(sizes) != len(a.channels) {
		panic(fmt.Sprintf("anomnet/adapter: %d map sizes for %d tapped maps", len(sizes), len(a.channels)))
	}
	best := 0
	for i, s := range sizes {
		if s[0] < 1 || s[1] < 1 {
			panic(fmt.Sprintf("anomnet/adapter: map %d is %dx%d", i, s[0], s[1]))
		}
		if s[0]*s[1] > best {
			best, h, w = s[0]*s[1], s[0], s[1]
		}
	}
	if g := a.opts.Grid; g > 0 {
		h, w = sizes[g-1][0], sizes[g-1][1]
	}
	if a.opts.Height > 0 {
		h = a.opts.Height
	}
	if a.opts.Width > 0 {
		w = a.opts.Width
	}
	return h, w
}

// Params returns the trainable tensors W0, B0, W1, B1, ... (the Layers'
// own tensors, not copies).
func (a *Adapter) Params() []*tensor.Tensor {
	ps := make([]*tensor.Tensor, 0, 2*len(a.Layers))
	for _, l := range a.Layers {
		ps = append(ps, l.W, l.B)
	}
	return ps
}

// NewGrads returns zero tensors on d shaped like Params, for Backward.
func (a *Adapter) NewGrads(d tensor.Device) []*tensor.Tensor {
	ps := a.Params()
	gs := make([]*tensor.Tensor, len(ps))
	for i, p := range ps {
		gs[i] = d.Zeros(p.Shape()...)
	}
	return gs
}

// convParams is the convolution's geometry: stride 1, padded to keep the
// map's size.
func (a *Adapter) convParams() tensor.Conv2DParams {
	p := a.opts.Kernel / 2
	return tensor.Conv2DParams{StrideH: 1, StrideW: 1, PadH: p, PadW: p}
}

// resampling is how one map reaches the common size.
type resampling uint8

const (
	resampleNone     resampling = iota // same size
	resamplePool                       // no smaller in either axis: adaptive average pooling
	resampleBilinear                   // smaller in some axis: bilinear interpolation
)

func resampleKind(h, w, th, tw int) resampling {
	switch {
	case h == th && w == tw:
		return resampleNone
	case h >= th && w >= tw:
		return resamplePool
	}
	return resampleBilinear
}

// checkMaps checks maps against the adapter and returns the batch size and
// the maps' sizes.
func (a *Adapter) checkMaps(op string, maps []*tensor.Tensor) (n int, sizes [][2]int) {
	if len(maps) != len(a.channels) {
		panic(fmt.Sprintf("anomnet/adapter: %s: %d maps for %d tapped maps", op, len(maps), len(a.channels)))
	}
	sizes = make([][2]int, len(maps))
	for i, x := range maps {
		if x == nil || x.Rank() != 4 || x.DType() != tensor.Float32 || x.Dim(1) != a.channels[i] {
			panic(fmt.Sprintf("anomnet/adapter: %s: map %d is %v, want float32 N x %d x H x W", op, i, x, a.channels[i]))
		}
		if i == 0 {
			n = x.Dim(0)
		} else if x.Dim(0) != n {
			panic(fmt.Sprintf("anomnet/adapter: %s: map %d is %v, map 0 has batch %d", op, i, x, n))
		}
		sizes[i] = [2]int{x.Dim(2), x.Dim(3)}
	}
	return n, sizes
}

// Forward adapts a batch: maps[i] is N x C_i x H_i x W_i on d; it returns
// F (N x D x H x W), a new tensor that the caller owns. Forward only reads
// the adapter, so it is safe for concurrent use by many goroutines.
func (a *Adapter) Forward(d tensor.Device, maps []*tensor.Tensor) *tensor.Tensor {
	return a.forward(d, maps, nil)
}

// Rows returns Forward's F as rows, one per location of each image
// ((N*H*W) x D, channels last, a new tensor that the caller owns), and the
// grid H x W. Where the device is the CPU, every layer a multiple of the
// identity (as New leaves it, or scaled by a tap balance) and the
// aggregation METHOD.md's 3 x 3 mean, it makes them in one pass over the
// maps (tensor.PooledRows), not five; otherwise it transposes Forward's
// result. The values are the same either way, bit for bit. In the
// one-pass form the rows are written into buf where it has room for them
// (rows then shares its memory: a caller recycles one buffer over many
// batches instead of fresh memory each time); buf may be nil.
func (a *Adapter) Rows(d tensor.Device, maps []*tensor.Tensor, buf []float32) (rows *tensor.Tensor, h, w int) {
	if taps, n, th, tw, ok := a.pooledTaps(d, maps); ok {
		if size := n * th * tw * a.Dim(); cap(buf) >= size {
			rows = tensor.FromFloat32s(buf[:size], n*th*tw, a.Dim())
		} else {
			rows = tensor.New(n*th*tw, a.Dim())
		}
		tensor.PooledRows(rows.Float32s(), n, th, tw, taps)
		return rows, th, tw
	}
	f := a.Forward(d, maps)
	n, dim, th, tw := f.Dim(0), f.Dim(1), f.Dim(2), f.Dim(3)
	rows = d.Zeros(n*th*tw, dim)
	d.ChannelsLast(rows, f)
	d.Free(f)
	return rows, th, tw
}

// pooledTaps returns the taps of Rows' one-pass form, or false where it
// does not apply.
func (a *Adapter) pooledTaps(d tensor.Device, maps []*tensor.Tensor) (taps []tensor.RowsTap, n, th, tw int, ok bool) {
	if _, cpu := d.(tensor.CPU); !cpu || a.opts.NoPool || a.opts.Centre != 0 {
		return nil, 0, 0, 0, false
	}
	n, sizes := a.checkMaps("Rows", maps)
	th, tw = a.OutSize(sizes)
	for i, x := range maps {
		h, w := sizes[i][0], sizes[i][1]
		s, scalar := a.scalar(i)
		if !scalar || !x.IsHost() || h > th || w > tw {
			return nil, 0, 0, 0, false
		}
		taps = append(taps, tensor.RowsTap{X: x.Float32s(), C: a.channels[i], H: h, W: w, Scale: s})
	}
	return taps, n, th, tw, true
}

// ForwardTape is Forward that also records in tape what Backward needs.
// A tape may be reused across calls: its old contents are replaced, and
// their memory reused where the shapes allow or freed.
func (a *Adapter) ForwardTape(d tensor.Device, maps []*tensor.Tensor, tape *Tape) *tensor.Tensor {
	if tape == nil {
		panic("anomnet/adapter: ForwardTape: nil tape")
	}
	return a.forward(d, maps, tape)
}

func (a *Adapter) forward(d tensor.Device, maps []*tensor.Tensor, tape *Tape) *tensor.Tensor {
	op := "Forward"
	if tape != nil {
		op = "ForwardTape"
	}
	n, sizes := a.checkMaps(op, maps)
	th, tw := a.OutSize(sizes)
	if tape != nil {
		tape.prepare(d, len(maps))
		tape.n, tape.h, tape.w = n, th, tw
	}
	outs := make([]*tensor.Tensor, len(maps))
	for i, x := range maps {
		outs[i] = a.forwardLayer(d, i, x, tape, th, tw)
	}
	if len(outs) == 1 {
		return outs[0] // already N x D x H x W and owned by nobody else
	}
	f := d.Zeros(n, a.Dim(), th, tw)
	d.Concat(f, outs...)
	for _, o := range outs {
		d.Free(o)
	}
	return f
}

// forwardLayer returns layer i's contribution to F (N x C_i x th x tw), a
// new tensor, keeping the convolution's input in tape unless tape is nil.
func (a *Adapter) forwardLayer(d tensor.Device, i int, x *tensor.Tensor, tape *Tape, th, tw int) *tensor.Tensor {
	n, c, h, w := x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3)
	y := d.Zeros(n, c, h, w)
	if s, ok := a.scalar(i); ok && tape == nil {
		// The convolution is s times the identity: skip its arithmetic.
		d.Copy(y, x)
		if s != 1 {
			d.Scale(s, y)
		}
	} else {
		var xc *tensor.Tensor
		if tape != nil {
			xc = tape.buffer(d, i, n, c+2, h, w)
		} else {
			xc = d.Zeros(n, c+2, h, w)
		}
		d.AppendCoords(xc, x)
		d.Conv2D(y, xc, a.Layers[i].W, a.Layers[i].B, a.convParams())
		if tape == nil {
			d.Free(xc)
		}
	}
	if !a.opts.NoPool {
		p := d.Zeros(n, c, h, w)
		d.AvgPool2D(p, y, poolParams)
		if c := float32(a.opts.Centre); c > 0 {
			d.Scale(1-c, p)
			d.Axpy(c, y, p)
		}
		d.Free(y)
		y = p
	}
	var r *tensor.Tensor
	switch resampleKind(h, w, th, tw) {
	case resampleNone:
		return y
	case resamplePool:
		r = d.Zeros(n, c, th, tw)
		d.AdaptiveAvgPool2D(r, y)
	default:
		r = d.Zeros(n, c, th, tw)
		d.ResizeBilinear(r, y)
	}
	d.Free(y)
	return r
}

// scalar reports whether layer i is a multiple s of the identity on its
// map's channels, with zero weights on the coordinate channels and
// elsewhere in the kernel and a zero bias: as New leaves it, or scaled by
// a tap balance. Only a layer whose tensors are on the host is examined
// (reading it costs a pass over W, beside the convolution's pass per
// location); others report false.
func (a *Adapter) scalar(i int) (s float32, ok bool) {
	l := a.Layers[i]
	if !l.W.IsHost() || !l.B.IsHost() {
		return 0, false
	}
	for _, b := range l.B.Float32s() {
		if b != 0 {
			return 0, false
		}
	}
	c, k := a.channels[i], a.opts.Kernel
	ws := l.W.Float32s()
	s = ws[(k/2)*k+k/2]
	for o := range c {
		row := ws[o*(c+2)*k*k : (o+1)*(c+2)*k*k]
		diag := (o*k+k/2)*k + k/2
		for j, v := range row {
			want := float32(0)
			if j == diag {
				want = s
			}
			if v != want {
				return 0, false
			}
		}
	}
	return s, true
}

// Tape holds the intermediates of one ForwardTape: each layer's
// convolution input (the map with its coordinate channels), which is all
// Backward needs since the rest of the chain is linear in it. The zero
// value is an empty tape. A tape serves one goroutine at a time.
type Tape struct {
	xc      []*tensor.Tensor
	n, h, w int // batch size and common output size
}

// prepare readies the tape for a forward pass over layers maps, keeping
// its buffers if the layer count matches.
func (t *Tape) prepare(d tensor.Device, layers int) {
	if len(t.xc) != layers {
		t.Free(d)
		t.xc = make([]*tensor.Tensor, layers)
	}
}

// buffer returns the tape's tensor for layer i's convolution input, reusing
// the old one when it has the shape.
func (t *Tape) buffer(d tensor.Device, i int, shape ...int) *tensor.Tensor {
	if old := t.xc[i]; old != nil {
		if slices.Equal(old.Shape(), shape) {
			return old
		}
		d.Free(old)
	}
	t.xc[i] = d.Zeros(shape...)
	return t.xc[i]
}

// Free releases the tape's tensors; the tape is empty afterwards and may
// be reused. Free is idempotent.
func (t *Tape) Free(d tensor.Device) {
	for _, x := range t.xc {
		if x != nil {
			d.Free(x)
		}
	}
	t.xc = nil
	t.n, t.h, t.w = 0, 0, 0
}

// Backward sets grads (as returned by NewGrads; overwritten, not
// accumulated) to the gradient of a scalar loss with respect to Params,
// given dF = dLoss/dF (N x D x H x W) for the batch of the tape's
// ForwardTape. The tape is left as it was.
func (a *Adapter) Backward(d tensor.Device, tape *Tape, dF *tensor.Tensor, grads []*tensor.Tensor) {
	if tape == nil || len(tape.xc) != len(a.Layers) || slices.Contains(tape.xc, nil) {
		panic("anomnet/adapter: Backward: the tape holds no ForwardTape of this adapter")
	}
	n, th, tw := tape.n, tape.h, tape.w
	if dF == nil || !slices.Equal(dF.Shape(), []int{n, a.Dim(), th, tw}) {
		panic(fmt.Sprintf("anomnet/adapter: Backward: dF is %v, want %v", dF, []int{n, a.Dim(), th, tw}))
	}
	ps := a.Params()
	if len(grads) != len(ps) {
		panic(fmt.Sprintf("anomnet/adapter: Backward: %d gradients for %d parameters", len(grads), len(ps)))
	}
	for j, g := range grads {
		if g == nil || !slices.Equal(g.Shape(), ps[j].Shape()) {
			panic(fmt.Sprintf("anomnet/adapter: Backward: gradient %d is %v, want the shape %v", j, g, ps[j].Shape()))
		}
	}
	for i, xc := range tape.xc {
		c, h, w := a.channels[i], xc.Dim(2), xc.Dim(3)
		if !slices.Equal(xc.Shape(), []int{n, c + 2, h, w}) {
			panic(fmt.Sprintf("anomnet/adapter: Backward: tape layer %d is %v for %d channels", i, xc, c))
		}
		// g is the gradient at the current step of the chain, walked back
		// from F; owned says whether Backward allocated it.
		g, owned := dF, false
		if len(tape.xc) > 1 {
			g, owned = d.Zeros(n, c, th, tw), true
			ys := make([]*tensor.Tensor, len(tape.xc))
			ys[i] = g
			d.Split(ys, a.channels, dF)
		}
		step := func(dx *tensor.Tensor) {
			if owned {
				d.Free(g)
			}
			g, owned = dx, true
		}
		switch resampleKind(h, w, th, tw) {
		case resamplePool:
			dx := d.Zeros(n, c, h, w)
			d.AdaptiveAvgPool2DBackward(dx, g)
			step(dx)
		case resampleBilinear:
			dx := d.Zeros(n, c, h, w)
			d.ResizeBilinearBackward(dx, g)
			step(dx)
		}
		if !a.opts.NoPool {
			dx := d.Zeros(n, c, h, w)
			d.AvgPool2DBackward(dx, g, poolParams)
			if c := float32(a.opts.Centre); c > 0 {
				d.Scale(1-c, dx)
				d.Axpy(c, g, dx)
			}
			step(dx)
		}
		d.Conv2DBackwardFilter(grads[2*i], grads[2*i+1], xc, g, a.convParams())
		if owned {
			d.Free(g)
		}
	}
}
