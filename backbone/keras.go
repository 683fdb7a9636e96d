package backbone

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/org/anomnet/internal/tensor"
)

// This file builds a Net from a Keras functional model config (as stored in
// a TensorFlow.js layers model) and its weights, for the layer types of the
// ResNet family: InputLayer, Conv2D, BatchNormalization, Activation (relu),
// Add, ZeroPadding2D, MaxPooling2D, GlobalAveragePooling2D and Dense.

// kerasConfig holds the config fields of the supported layers.
type kerasConfig struct {
	BatchInputShape []*int          `json:"batch_input_shape"`
	DataFormat      string          `json:"data_format"`
	Filters         int             `json:"filters"`
	KernelSize      []int           `json:"kernel_size"`
	Strides         []int           `json:"strides"`
	Padding         json.RawMessage `json:"padding"`
	DilationRate    []int           `json:"dilation_rate"`
	Activation      string          `json:"activation"`
	UseBias         *bool           `json:"use_bias"`
	Epsilon         *float64        `json:"epsilon"`
	Center          *bool           `json:"center"`
	Scale           *bool           `json:"scale"`
	Axis            json.RawMessage `json:"axis"`
	PoolSize        []int           `json:"pool_size"`
	Units           int             `json:"units"`
	Groups          int             `json:"groups"`
}

// inbound returns the names of a layer's input layers. Only Keras 2's
// format for a layer called once is supported:
// [[["name", nodeIndex, tensorIndex, {kwargs}], ...]].
func (l *kerasLayer) inbound() ([]string, error) {
	if len(l.InboundNodes) == 0 || string(l.InboundNodes) == "null" {
		return nil, nil
	}
	var nodes [][][]any
	if err := json.Unmarshal(l.InboundNodes, &nodes); err != nil {
		return nil, fmt.Errorf("layer %s: inbound_nodes in an unsupported format: %v", l.Name, err)
	}
	if len(nodes) > 1 {
		return nil, fmt.Errorf("layer %s is called %d times; shared layers are not supported", l.Name, len(nodes))
	}
	var names []string
	for _, n := range nodes {
		for _, in := range n {
			name, ok := in[0].(string)
			if !ok || len(in) < 3 {
				return nil, fmt.Errorf("layer %s: bad inbound node %v", l.Name, in)
			}
			if ni, _ := in[1].(float64); ni != 0 {
				return nil, fmt.Errorf("layer %s reads node %v of %s; shared layers are not supported", l.Name, in[1], name)
			}
			names = append(names, name)
		}
	}
	return names, nil
}

// kerasBuilder turns layers into graph nodes.
type kerasBuilder struct {
	file    string
	net     *Net
	weights map[string]*weight
	used    map[string]bool
	// out maps a Keras layer name to the node that computes its output.
	out       map[string]int
	consumers map[string]int
}

func (b *kerasBuilder) errorf(layer string, format string, args ...any) error {
	return fmt.Errorf("anomnet/backbone: %s: layer %s: %s", b.file, layer, fmt.Sprintf(format, args...))
}

// take returns a weight by name, checking its shape.
func (b *kerasBuilder) take(layer, name string, shape ...int) (*weight, error) {
	w, ok := b.weights[layer+"/"+name]
	if !ok {
		return nil, b.errorf(layer, "weight %s/%s missing from the weights manifest", layer, name)
	}
	if !slices.Equal(w.shape, shape) {
		return nil, b.errorf(layer, "weight %s/%s has shape %v, want %v", layer, name, w.shape, shape)
	}
	b.used[layer+"/"+name] = true
	return w, nil
}

func (b *kerasBuilder) add(name string, o op, c int, in ...int) int {
	i := b.net.add(name, o, c, in...)
	b.out[name] = i
	return i
}

// fold records that layer's output is now computed by node i (renamed).
func (b *kerasBuilder) fold(layer string, i int) {
	nd := b.net.nodes[i]
	b.net.folded[nd.name] = layer
	for k, v := range b.net.folded {
		if v == nd.name {
			b.net.folded[k] = layer
		}
	}
	delete(b.net.byName, nd.name)
	nd.name = layer
	b.net.byName[layer] = i
	b.out[layer] = i
}

// buildKeras makes a Net of the model's layers in topological order.
func buildKeras(file string, m *kerasModel, weights map[string]*weight) (*Net, error) {
	b := &kerasBuilder{
		file: file, weights: weights, used: map[string]bool{},
		out: map[string]int{}, consumers: map[string]int{},
		net: newNet(m.Name),
	}
	inputs := make(map[string][]string, len(m.Layers))
	byName := make(map[string]*kerasLayer, len(m.Layers))
	for i := range m.Layers {
		l := &m.Layers[i]
		if _, dup := byName[l.Name]; dup {
			return nil, b.errorf(l.Name, "appears twice")
		}
		byName[l.Name] = l
		in, err := l.inbound()
		if err != nil {
			return nil, fmt.Errorf("anomnet/backbone: %s: %v", file, err)
		}
		inputs[l.Name] = in
		for _, s := range in {
			b.consumers[s]++
		}
	}
	order, err := topoOrder(m.Layers, inputs)
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %s: %v", file, err)
	}
	for _, name := range order {
		if err := b.layer(byName[name], inputs[name]); err != nil {
			return nil, err
		}
	}
	if len(b.net.nodes) == 0 {
		return nil, fmt.Errorf("anomnet/backbone: %s: no InputLayer", file)
	}
	for name := range weights {
		if !b.used[name] {
			return nil, fmt.Errorf("anomnet/backbone: %s: weight %s belongs to no layer of the model", file, name)
		}
	}
	if err := b.net.markStages(224); err != nil {
		return nil, err
	}
	return b.net, nil
}

// topoOrder sorts the layers so that each comes after its inputs, keeping
// the file's order where it already is one.
func topoOrder(layers []kerasLayer, inputs map[string][]string) ([]string, error) {
	done := make(map[string]bool, len(layers))
	var order []string
	for len(order) < len(layers) {
		progress := false
		for _, l := range layers {
			if done[l.Name] {
				continue
			}
			ready := true
			for _, in := range inputs[l.Name] {
				if _, ok := inputs[in]; !ok {
					return nil, fmt.Errorf("layer %s reads %s, which is not a layer of the model", l.Name, in)
				}
				ready = ready && done[in]
			}
			if ready {
				done[l.Name] = true
				order = append(order, l.Name)
				progress = true
			}
		}
		if !progress {
			return nil, fmt.Errorf("the layers form a cycle")
		}
	}
	return order, nil
}

func pair(v []int, what string) (int, error) {
	if len(v) != 2 || v[0] != v[1] || v[0] < 1 {
		return 0, fmt.Errorf("%s %v: only square, positive values are supported", what, v)
	}
	return v[0], nil
}

// kerasSingleInput builds the supported layer types that read one input:
// in is the Keras layer read and x the node that computes it.
var kerasSingleInput = map[string]func(b *kerasBuilder, name string, cfg *kerasConfig, in string, x int) error{
	"Conv2D":                 (*kerasBuilder).conv2D,
	"BatchNormalization":     (*kerasBuilder).batchNorm,
	"Activation":             (*kerasBuilder).activationLayer,
	"ZeroPadding2D":          (*kerasBuilder).zeroPadding2D,
	"MaxPooling2D":           (*kerasBuilder).maxPooling,
	"GlobalAveragePooling2D": (*kerasBuilder).globalAvgPooling,
	"Dense":                  (*kerasBuilder).dense,
}

// layer adds one Keras layer to the graph.
func (b *kerasBuilder) layer(l *kerasLayer, in []string) error {
	var cfg kerasConfig
	if err := json.Unmarshal(l.Config, &cfg); err != nil {
		return b.errorf(l.Name, "config: %v", err)
	}
	if cfg.DataFormat != "" && cfg.DataFormat != "channels_last" {
		return b.errorf(l.Name, "data_format %q; the TensorFlow.js models read here are channels_last", cfg.DataFormat)
	}
	src := make([]int, len(in))
	for i, s := range in {
		src[i] = b.out[s]
	}
	switch l.ClassName {
	case "InputLayer":
		return b.inputLayer(l.Name, &cfg)
	case "Add":
		return b.addLayer(l.Name, src)
	}
	build, ok := kerasSingleInput[l.ClassName]
	if !ok {
		return b.errorf(l.Name, "layer type %s is not supported (anomnet reads the layer types of ResNet models)", l.ClassName)
	}
	if len(src) != 1 {
		return b.errorf(l.Name, "%s with %d inputs", l.ClassName, len(src))
	}
	return build(b, l.Name, &cfg, in[0], src[0])
}

// inputLayer adds the model's input (InputLayer).
func (b *kerasBuilder) inputLayer(name string, cfg *kerasConfig) error {
	if len(b.net.nodes) > 0 {
		return b.errorf(name, "a second input; only single-input models are supported")
	}
	s := cfg.BatchInputShape
	if len(s) != 4 || s[3] == nil {
		return b.errorf(name, "input shape %v, want [batch, height, width, channels]", s)
	}
	b.add(name, nil, *s[3])
	return nil
}

// conv2D adds a convolution (Conv2D), with its activation.
func (b *kerasBuilder) conv2D(name string, cfg *kerasConfig, _ string, x int) error {
	k, err := pair(cfg.KernelSize, "kernel_size")
	if err != nil {
		return b.errorf(name, "%v", err)
	}
	s, err := pair(cfg.Strides, "strides")
	if err != nil {
		return b.errorf(name, "%v", err)
	}
	if cfg.DilationRate != nil && (cfg.DilationRate[0] != 1 || cfg.DilationRate[1] != 1) {
		return b.errorf(name, "dilation %v is not supported", cfg.DilationRate)
	}
	if cfg.Groups > 1 {
		return b.errorf(name, "grouped convolution is not supported")
	}
	var padding string
	if err := json.Unmarshal(cfg.Padding, &padding); err != nil || (padding != "valid" && padding != "same") {
		return b.errorf(name, "padding %s, want \"valid\" or \"same\"", cfg.Padding)
	}
	cin := b.net.nodes[x].c
	kw, err := b.take(name, "kernel", k, k, cin, cfg.Filters)
	if err != nil {
		return err
	}
	o := &convOp{w: hwioToOIHW(kw, k, cin, cfg.Filters), b: tensor.New(cfg.Filters), stride: s, same: padding == "same"}
	if cfg.UseBias == nil || *cfg.UseBias {
		bw, err := b.take(name, "bias", cfg.Filters)
		if err != nil {
			return err
		}
		copy(o.b.Float32s(), bw.data)
	}
	i := b.add(name, o, cfg.Filters, x)
	return b.activation(name, i, cfg.Activation)
}

// batchNorm folds a BatchNormalization into the convolution before it.
func (b *kerasBuilder) batchNorm(name string, cfg *kerasConfig, in string, x int) error {
	var axis []int
	if json.Unmarshal(cfg.Axis, &axis) != nil {
		var a int
		if json.Unmarshal(cfg.Axis, &a) == nil {
			axis = []int{a}
		}
	}
	if len(axis) != 1 || (axis[0] != 3 && axis[0] != -1) {
		return b.errorf(name, "axis %s; only the channel axis is supported", cfg.Axis)
	}
	conv, ok := b.net.nodes[x].op.(*convOp)
	if !ok || b.consumers[in] != 1 || conv.relu {
		return b.errorf(name, "BatchNormalization must directly follow a Conv2D that nothing else reads (it is folded into it)")
	}
	c := b.net.nodes[x].c
	eps := 1e-3
	if cfg.Epsilon != nil {
		eps = *cfg.Epsilon
	}
	gamma, beta := ones(c), make([]float32, c)
	if cfg.Scale == nil || *cfg.Scale {
		g, err := b.take(name, "gamma", c)
		if err != nil {
			return err
		}
		gamma = g.data
	}
	if cfg.Center == nil || *cfg.Center {
		be, err := b.take(name, "beta", c)
		if err != nil {
			return err
		}
		beta = be.data
	}
	mean, err := b.take(name, "moving_mean", c)
	if err != nil {
		return err
	}
	variance, err := b.take(name, "moving_variance", c)
	if err != nil {
		return err
	}
	conv.foldBatchNorm(gamma, beta, mean.data, variance.data, eps)
	b.fold(name, x)
	return nil
}

// activationLayer adds a ReLU (Activation), fused into the node before it
// where it can be.
func (b *kerasBuilder) activationLayer(name string, cfg *kerasConfig, in string, x int) error {
	if cfg.Activation != "relu" {
		return b.errorf(name, "activation %q is not supported here (relu is)", cfg.Activation)
	}
	if b.fuseReLU(in, x) {
		b.fold(name, x)
		return nil
	}
	b.add(name, reluOp{}, b.net.nodes[x].c, x)
	return nil
}

// addLayer adds an elementwise sum (Add); of two inputs, a residual
// addition.
func (b *kerasBuilder) addLayer(name string, src []int) error {
	if len(src) < 2 {
		return b.errorf(name, "Add with %d inputs", len(src))
	}
	c := b.net.nodes[src[0]].c
	for _, j := range src[1:] {
		if b.net.nodes[j].c != c {
			return b.errorf(name, "adding %d and %d channels", c, b.net.nodes[j].c)
		}
	}
	if len(src) == 2 {
		b.out[name] = b.net.addResidual(name, false, c, src[0], src[1])
		return nil
	}
	b.add(name, &addOp{}, c, src...)
	return nil
}

// zeroPadding2D adds a ZeroPadding2D.
func (b *kerasBuilder) zeroPadding2D(name string, cfg *kerasConfig, _ string, x int) error {
	t, bo, le, r, err := zeroPadding(cfg.Padding)
	if err != nil {
		return b.errorf(name, "%v", err)
	}
	b.add(name, padOp{top: t, bottom: bo, left: le, right: r}, b.net.nodes[x].c, x)
	return nil
}

// maxPooling adds a MaxPooling2D.
func (b *kerasBuilder) maxPooling(name string, cfg *kerasConfig, _ string, x int) error {
	k, err := pair(cfg.PoolSize, "pool_size")
	if err != nil {
		return b.errorf(name, "%v", err)
	}
	s := k
	if cfg.Strides != nil {
		if s, err = pair(cfg.Strides, "strides"); err != nil {
			return b.errorf(name, "%v", err)
		}
	}
	var padding string
	if json.Unmarshal(cfg.Padding, &padding); padding != "valid" {
		return b.errorf(name, "padding %s is not supported (valid is)", cfg.Padding)
	}
	b.add(name, maxPoolOp{tensor.Pool2DParams{Kernel: k, Stride: s}}, b.net.nodes[x].c, x)
	return nil
}

// globalAvgPooling adds a GlobalAveragePooling2D.
func (b *kerasBuilder) globalAvgPooling(name string, _ *kerasConfig, _ string, x int) error {
	b.add(name, gapOp{}, b.net.nodes[x].c, x)
	return nil
}

// dense adds a fully connected layer (Dense), with its softmax if it has
// one.
func (b *kerasBuilder) dense(name string, cfg *kerasConfig, _ string, x int) error {
	cin := b.net.nodes[x].c
	kw, err := b.take(name, "kernel", cin, cfg.Units)
	if err != nil {
		return err
	}
	// Keras stores in x out; the graph keeps out x in.
	w := tensor.New(cfg.Units, cin)
	wd := w.Float32s()
	for i := range cin {
		for o := range cfg.Units {
			wd[o*cin+i] = kw.data[i*cfg.Units+o]
		}
	}
	o := &denseOp{w: w, b: tensor.New(cfg.Units)}
	if cfg.UseBias == nil || *cfg.UseBias {
		bw, err := b.take(name, "bias", cfg.Units)
		if err != nil {
			return err
		}
		copy(o.b.Float32s(), bw.data)
	}
	switch cfg.Activation {
	case "softmax":
		o.softmax = true
	case "linear", "":
	default:
		return b.errorf(name, "activation %q is not supported on Dense", cfg.Activation)
	}
	b.add(name, o, cfg.Units, x)
	return nil
}

// activation handles a Conv2D's own activation argument.
func (b *kerasBuilder) activation(layer string, i int, act string) error {
	switch act {
	case "linear", "":
		return nil
	case "relu":
		b.net.nodes[i].op.(*convOp).relu = true
		return nil
	}
	return b.errorf(layer, "activation %q is not supported on Conv2D", act)
}

// fuseReLU sets the ReLU flag of node x (a convolution or an addition that
// only this ReLU reads) and reports whether it could.
func (b *kerasBuilder) fuseReLU(inName string, x int) bool {
	if b.consumers[inName] != 1 {
		return false
	}
	switch o := b.net.nodes[x].op.(type) {
	case *convOp:
		if !o.relu {
			o.relu = true
			return true
		}
	case *addOp:
		if !o.relu {
			o.relu = true
			return true
		}
	}
	return false
}

// zeroPadding reads ZeroPadding2D's padding: an int, [h, w] or
// [[top, bottom], [left, right]].
func zeroPadding(raw json.RawMessage) (top, bottom, left, right int, err error) {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, n, n, n, nil
	}
	var hw []int
	if json.Unmarshal(raw, &hw) == nil && len(hw) == 2 {
		return hw[0], hw[0], hw[1], hw[1], nil
	}
	var full [][]int
	if json.Unmarshal(raw, &full) == nil && len(full) == 2 && len(full[0]) == 2 && len(full[1]) == 2 {
		return full[0][0], full[0][1], full[1][0], full[1][1], nil
	}
	return 0, 0, 0, 0, fmt.Errorf("padding %s not understood", raw)
}

// hwioToOIHW reorders a Keras kernel (KH x KW x C x O) to O x C x KH x KW.
func hwioToOIHW(w *weight, k, cin, cout int) *tensor.Tensor {
	t := tensor.New(cout, cin, k, k)
	d := t.Float32s()
	for i := range k {
		for j := range k {
			for c := range cin {
				for o := range cout {
					d[((o*cin+c)*k+i)*k+j] = w.data[((i*k+j)*cin+c)*cout+o]
				}
			}
		}
	}
	return t
}

func ones(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}
