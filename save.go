package anomnet

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/centroid"
	"github.com/org/anomnet/internal/atomicfile"
	"github.com/org/anomnet/internal/tensor"
)

// The model file: the magic, a format version (uint32), the header length
// (uint32) and the JSON header, every tensor the header lists as
// little-endian float32, and the SHA-256 of all that.
const (
	fileMagic     = "ANOMNET\n"
	fileVersion   = 3 // 2: the calibration keeps the normal images' scores; 3: the search's subspace
	maxHeader     = 1 << 20
	maxFileFloats = 1 << 30 // 4 GiB of parameters: far beyond any adapter
)

// ErrCorrupt is wrapped by the errors of Load for a file that is truncated,
// altered or not a model file.
var ErrCorrupt = errors.New("not a valid anomnet model file")

type fileHeader struct {
	Backbone    string      `json:"backbone"`
	Fingerprint string      `json:"fingerprint"`
	Config      Config      `json:"config"`
	Channels    []int       `json:"channels"`
	Sizes       [][2]int    `json:"sizes"`
	K           int         `json:"k"`
	D           int         `json:"d"`
	Delta       float64     `json:"delta"`
	Calibration Calibration `json:"calibration"`
	Fitted      time.Time   `json:"fitted,omitzero"` // when Fit finished
	Tensors     []fileShape `json:"tensors"`
}

type fileShape struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// params returns the model's tensors in file order with their names.
func (m *Model) params() ([]string, []*Tensor) {
	var names []string
	var ts []*Tensor
	for i, p := range m.ad.Params() {
		names = append(names, fmt.Sprintf("adapter.%d.%s", i/2, [2]string{"weight", "bias"}[i%2]))
		ts = append(ts, p)
	}
	names, ts = append(names, "centroids"), append(ts, m.set.Centroids())
	if ix, ok := m.set.(*centroid.Index); ok {
		// The pruning search's subspace: Load rebuilds the Index from it
		// instead of running the range finder again.
		names, ts = append(names, indexBasis), append(ts, tensor.FromFloat32s(ix.Basis(), ix.D(), len(ix.Basis())/ix.D()))
	}
	return names, ts
}

// indexBasis names the optional last tensor of a model file (version 3):
// the basis of its centroid.Index.
const indexBasis = "index.basis"

// Save writes the model in anomnet's versioned binary format. The file
// records the backbone's name and fingerprint, so that Load refuses it with
// another backbone, and ends with a SHA-256 checksum, so that Load rejects
// a truncated or altered file.
func (m *Model) Save(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.fitted {
		return ErrNotFitted
	}
	names, ts := m.params()
	h := fileHeader{
		Backbone: m.bb.Name(), Fingerprint: m.bb.Fingerprint(), Config: m.cfg,
		Channels: m.channels, Sizes: m.sizes, K: m.set.K(), D: m.set.D(), Delta: m.delta, Calibration: m.cal, Fitted: m.fitTime,
	}
	for i, t := range ts {
		h.Tensors = append(h.Tensors, fileShape{Name: names[i], Shape: t.Shape()})
	}
	js, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("anomnet: save: %w", err)
	}
	sum := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, sum))
	var pre []byte
	pre = append(pre, fileMagic...)
	pre = binary.LittleEndian.AppendUint32(pre, fileVersion)
	pre = binary.LittleEndian.AppendUint32(pre, uint32(len(js)))
	bw.Write(pre)
	bw.Write(js)
	const chunk = 1 << 14 // values encoded at a time
	buf := make([]byte, 4*chunk)
	for _, t := range ts {
		if !t.IsHost() {
			t = m.dev.ToHost(t)
		}
		vs := t.Float32s()
		for lo := 0; lo < len(vs); lo += chunk {
			part := vs[lo:min(lo+chunk, len(vs))]
			for i, v := range part {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			bw.Write(buf[:4*len(part)])
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("anomnet: save: %w", err)
	}
	if _, err := w.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("anomnet: save: %w", err)
	}
	return nil
}

// SaveFile writes the model to path safely: to a temporary file in the same
// directory, synced, then renamed over path, so that path holds either its
// old contents or the complete new model, never a mix.
func (m *Model) SaveFile(path string) error {
	if err := atomicfile.Write(path, 0o644, m.Save); err != nil {
		return fmt.Errorf("anomnet: save %s: %w", path, err)
	}
	return nil
}

// LoadFile reads a model saved by SaveFile; errors name the file.
func LoadFile(path string, bb Backbone) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("anomnet: load: %w", err)
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return load(bufio.NewReader(f), bb, "anomnet: load "+path, size)
}

// Load reads a model written by Save, for use with backbone bb, which must
// be the backbone it was trained with (same name and fingerprint). The
// model runs on the default Device.
func Load(r io.Reader, bb Backbone) (*Model, error) {
	return load(r, bb, "anomnet: load", 0)
}

// load is Load with errors that start with what (which names the file, if
// there is one). size is the file's size, when known (else 0): tensors are
// then allocated whole, up to what the file can hold, instead of grown as
// their bytes arrive.
func load(r io.Reader, bb Backbone, what string, size int64) (*Model, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", what, ErrCorrupt, fmt.Sprintf(format, args...))
	}
	sum := sha256.New()
	tr := io.TeeReader(r, sum)
	pre := make([]byte, len(fileMagic)+8)
	if _, err := io.ReadFull(tr, pre); err != nil {
		return nil, corrupt("reading the preamble: %v", err)
	}
	if string(pre[:len(fileMagic)]) != fileMagic {
		return nil, corrupt("no anomnet magic number")
	}
	if v := binary.LittleEndian.Uint32(pre[len(fileMagic):]); v < 1 || v > fileVersion {
		return nil, fmt.Errorf("%s: format version %d, this anomnet reads versions 1 to %d", what, v, fileVersion)
	}
	n := binary.LittleEndian.Uint32(pre[len(fileMagic)+4:])
	if n > maxHeader {
		return nil, corrupt("header of %d bytes (at most %d)", n, maxHeader)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(tr, js); err != nil {
		return nil, corrupt("reading the header: %v", err)
	}
	var h fileHeader
	// A file written before Config.MapPower and MapBaseline existed
	// scored plain distances, whatever the defaults are now; one written
	// before Config.ImageSigma existed took the image score from the
	// pixel map (-1: not in the file); one written before the input was a
	// choice took the crop, and one written before the full input turned
	// images to the frame's orientation resized them as they were.
	h.Config.MapPower, h.Config.MapBaseline, h.Config.ImageSigma, h.Config.Input = 1, BaselineNone, -1, InputCrop
	h.Config.NoTurn = true
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, corrupt("header: %v", err)
	}
	if h.Config.ImageSigma == -1 {
		h.Config.ImageSigma = h.Config.Sigma
	}
	if err := h.check(); err != nil {
		return nil, corrupt("header: %v", err)
	}
	host := make([]*Tensor, len(h.Tensors))
	buf := make([]byte, 1<<16)
	for i, s := range h.Tensors {
		n := 1
		for _, v := range s.Shape {
			n *= v
		}
		// Grow with the bytes actually read, so that a forged header cannot
		// allocate more than the file holds (check allows 4 GiB); from a
		// file of known size, allocate what it can hold at once.
		data := make([]float32, 0, min(n, max(len(buf)/4, int(min(size/4, math.MaxInt32)))))
		for len(data) < n {
			b := buf[:4*min(n-len(data), len(buf)/4)]
			if _, err := io.ReadFull(tr, b); err != nil {
				return nil, corrupt("reading %s: %v", s.Name, err)
			}
			for k := 0; k < len(b); k += 4 {
				data = append(data, math.Float32frombits(binary.LittleEndian.Uint32(b[k:])))
			}
		}
		host[i] = tensor.FromFloat32s(data, s.Shape...)
	}
	want := sum.Sum(nil)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		return nil, corrupt("reading the checksum: %v", err)
	}
	if !bytes.Equal(got, want) {
		return nil, corrupt("checksum mismatch: the file was altered or damaged")
	}
	if k, err := r.Read(make([]byte, 1)); k > 0 || (err != nil && err != io.EOF) {
		return nil, corrupt("data after the checksum")
	}
	for i, t := range host {
		if err := finite(t.Float32s()); err != nil {
			return nil, corrupt("%s: %v", h.Tensors[i].Name, err)
		}
	}
	if bb == nil {
		return nil, errors.New(what + ": no backbone given")
	}
	if bb.Name() != h.Backbone || bb.Fingerprint() != h.Fingerprint {
		return nil, fmt.Errorf("%s: the model was trained with backbone %s (fingerprint %.12s), not %s (%.12s)", what,
			h.Backbone, h.Fingerprint, bb.Name(), bb.Fingerprint())
	}
	cfg, err := h.Config.withDefaults()
	if err != nil {
		return nil, corrupt("%v", err)
	}
	if cfg.Input == InputAuto {
		return nil, corrupt("input %s: a fitted model has its input resolved", InputAuto)
	}
	m, err := New(bb, cfg)
	if err != nil {
		return nil, err
	}
	d := m.dev
	m.ad = adapter.New(d, h.Channels, cfg.Adapter)
	// The centroids (K x D: most of the file) become the set as they are
	// on a host Device, without a copy; the optional last tensor is the
	// search's subspace.
	var basis []float32
	if h.Tensors[len(host)-1].Name == indexBasis {
		basis, host = host[len(host)-1].Float32s(), host[:len(host)-1]
	}
	cent := host[len(host)-1]
	if cent.Rank() != 2 || cent.Dim(0) != h.K || cent.Dim(1) != h.D {
		return nil, corrupt("%s is %v, want [%d %d]", h.Tensors[len(host)-1].Name, cent.Shape(), h.K, h.D)
	}
	if ps := m.ad.Params(); len(ps) == 0 || !ps[0].IsHost() {
		cent = d.FromHost(cent)
	}
	set := centroid.NewSet(cent)
	m.set = set
	_, params := m.params()
	for i, p := range params[:len(params)-1] {
		if !tensor.SameShape(p, host[i]) {
			return nil, corrupt("%s is %v, want %v", h.Tensors[i].Name, host[i].Shape(), p.Shape())
		}
		src := d.FromHost(host[i])
		d.Copy(p, src)
		d.Free(src)
	}
	m.set = search(d, set, basis)
	m.fitted, m.channels, m.sizes, m.delta, m.cal = true, h.Channels, h.Sizes, h.Delta, h.Calibration
	m.fitTime = h.Fitted
	return m, d.Sync()
}

// check validates a header's shapes before anything is allocated from them.
func (h *fileHeader) check() error {
	if len(h.Channels) == 0 || len(h.Channels) != len(h.Sizes) || len(h.Channels) != len(h.Config.Taps) {
		return fmt.Errorf("%d channel counts, %d sizes, %d taps", len(h.Channels), len(h.Sizes), len(h.Config.Taps))
	}
	k := h.Config.Adapter.Kernel
	if k == 0 {
		k = 1
	}
	if k != 1 && k != 3 {
		return fmt.Errorf("adapter kernel %d", k)
	}
	var want []fileShape
	dim := 0
	for i, c := range h.Channels {
		if c <= 0 || c > 1<<16 || h.Sizes[i][0] <= 0 || h.Sizes[i][1] <= 0 {
			return fmt.Errorf("tap %d: %d channels, size %v", i, c, h.Sizes[i])
		}
		dim += c
		want = append(want, fileShape{fmt.Sprintf("adapter.%d.weight", i), []int{c, c + 2, k, k}},
			fileShape{fmt.Sprintf("adapter.%d.bias", i), []int{c}})
	}
	if h.D != dim || h.K <= 0 || h.K > 1<<16 {
		return fmt.Errorf("%d centroids of dimension %d for %d channels", h.K, h.D, dim)
	}
	want = append(want, fileShape{"centroids", []int{h.K, h.D}})
	if len(h.Tensors) == len(want)+1 && h.Tensors[len(want)].Name == indexBasis {
		// Any width from 1 to min(D, K): the file keeps the width it was
		// saved with, whatever centroid.IndexDim is now.
		sh := h.Tensors[len(want)].Shape
		if len(sh) != 2 || sh[0] != h.D || sh[1] < 1 || sh[1] > min(h.D, h.K) {
			return fmt.Errorf("%s is %v, want [%d L] with 1 <= L <= %d", indexBasis, sh, h.D, min(h.D, h.K))
		}
		want = append(want, fileShape{indexBasis, sh})
	}
	if len(h.Tensors) != len(want) {
		return fmt.Errorf("%d tensors, want %d", len(h.Tensors), len(want))
	}
	total := 0
	for i, s := range h.Tensors {
		if s.Name != want[i].Name || fmt.Sprint(s.Shape) != fmt.Sprint(want[i].Shape) {
			return fmt.Errorf("tensor %d is %s %v, want %s %v", i, s.Name, s.Shape, want[i].Name, want[i].Shape)
		}
		n := 1
		for _, v := range s.Shape {
			n *= v
		}
		if total += n; total > maxFileFloats {
			return fmt.Errorf("more than %d parameters", maxFileFloats)
		}
	}
	return nil
}
