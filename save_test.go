package anomnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet/centroid"
)

// savedTiny fits a tiny model (one epoch a stage) and returns it with its
// saved bytes.
func savedTiny(t *testing.T) (*Model, []byte) {
	t.Helper()
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	m := fitTiny(t, cfg, makeSynth(21, 8, 0, 0))
	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	return m, buf.Bytes()
}

// modelFile is a saved model taken apart.
type modelFile struct {
	version uint32
	header  []byte // the JSON header
	data    []byte // the tensors
	sum     []byte // the SHA-256 of all before it
}

func parseModelFile(t *testing.T, b []byte) modelFile {
	t.Helper()
	pre := len(fileMagic) + 8
	require.Greater(t, len(b), pre+sha256.Size)
	require.Equal(t, fileMagic, string(b[:len(fileMagic)]))
	n := int(binary.LittleEndian.Uint32(b[pre-4:]))
	require.LessOrEqual(t, pre+n+sha256.Size, len(b))
	return modelFile{
		version: binary.LittleEndian.Uint32(b[len(fileMagic):]),
		header:  b[pre : pre+n],
		data:    b[pre+n : len(b)-sha256.Size],
		sum:     b[len(b)-sha256.Size:],
	}
}

// decode returns the file's header.
func (f modelFile) decode(t *testing.T) fileHeader {
	t.Helper()
	var h fileHeader
	require.NoError(t, json.Unmarshal(f.header, &h))
	return h
}

// withHeader returns f with the header h.
func (f modelFile) withHeader(t *testing.T, h fileHeader) modelFile {
	t.Helper()
	js, err := json.Marshal(h)
	require.NoError(t, err)
	f.header = js
	return f
}

// bytes assembles the file, with a checksum of its contents (not f.sum).
func (f modelFile) bytes() []byte {
	b := []byte(fileMagic)
	b = binary.LittleEndian.AppendUint32(b, f.version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.header)))
	b = append(append(b, f.header...), f.data...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestSaveFormat takes a saved model apart: version, header fields, tensor
// data and checksum.
func TestSaveFormat(t *testing.T) {
	m, b := savedTiny(t)
	f := parseModelFile(t, b)
	require.Equal(t, uint32(fileVersion), f.version, "the format version")
	sum := sha256.Sum256(b[:len(b)-sha256.Size])
	require.Equal(t, sum[:], f.sum)
	require.Equal(t, b, f.bytes(), "parseModelFile and bytes are inverses")

	h := f.decode(t)
	bb := newTinyNet(3)
	require.Equal(t, bb.Name(), h.Backbone)
	require.Equal(t, bb.Fingerprint(), h.Fingerprint)
	require.JSONEq(t, jsonOf(t, m.Config()), jsonOf(t, h.Config))
	require.Equal(t, []int{16, 32}, h.Channels, "stage2 and stage3 of the tiny net")
	require.Equal(t, [][2]int{{16, 16}, {8, 8}}, h.Sizes, "64 x 64 crops at strides 4 and 8")
	require.Equal(t, testConfig().K, h.K)
	require.Equal(t, 16+32, h.D)
	require.Equal(t, m.Delta(), h.Delta)
	require.Equal(t, m.Calibration(), h.Calibration)
	require.NoError(t, h.check())

	// The tensors, in order, and nothing else between header and checksum.
	require.Equal(t, []fileShape{
		{"adapter.0.weight", []int{16, 18, 1, 1}}, {"adapter.0.bias", []int{16}},
		{"adapter.1.weight", []int{32, 34, 1, 1}}, {"adapter.1.bias", []int{32}},
		{"centroids", []int{4, 48}},
	}, h.Tensors)
	floats := 16*18 + 16 + 32*34 + 32 + 4*48
	require.Len(t, f.data, 4*floats)
	for k := 0; k < len(f.data); k += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(f.data[k:]))
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "float %d is %g", k/4, v)
	}
}

// TestSaveLoadSaveIdentical saves a loaded model: the bytes must be those
// it was loaded from.
func TestSaveLoadSaveIdentical(t *testing.T) {
	m, b := savedTiny(t)
	l, err := Load(bytes.NewReader(b), newTinyNet(3))
	require.NoError(t, err)
	var again bytes.Buffer
	require.NoError(t, l.Save(&again))
	require.Equal(t, b, again.Bytes())
	require.JSONEq(t, jsonOf(t, m.Config()), jsonOf(t, l.Config()))
	// The fit's time travels with the file; a file without it loads with
	// the zero time.
	require.WithinDuration(t, time.Now(), m.FitTime(), time.Hour)
	require.Equal(t, m.FitTime(), l.FitTime())
	f := parseModelFile(t, b)
	h := f.decode(t)
	h.Fitted = time.Time{}
	old, err := Load(bytes.NewReader(f.withHeader(t, h).bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.True(t, old.FitTime().IsZero())
}

func TestLoadVersion(t *testing.T) {
	_, b := savedTiny(t)
	f := parseModelFile(t, b)
	for _, v := range []uint32{0, fileVersion + 1, math.MaxUint32} {
		f.version = v
		_, err := Load(bytes.NewReader(f.bytes()), newTinyNet(3))
		require.EqualError(t, err, fmtVersion("anomnet: load", v))
		require.NotErrorIs(t, err, ErrCorrupt, "another version is not a damaged file")
	}
	path := filepath.Join(t.TempDir(), "v3.anm")
	f.version = fileVersion + 1
	require.NoError(t, os.WriteFile(path, f.bytes(), 0o644))
	_, err := LoadFile(path, newTinyNet(3))
	require.EqualError(t, err, fmtVersion("anomnet: load "+path, fileVersion+1))
}

func fmtVersion(what string, v uint32) string {
	return fmt.Sprintf("%s: format version %d, this anomnet reads versions 1 to %d", what, v, fileVersion)
}

// TestLoadRejectsHeader alters a valid file's header (and fixes its
// checksum): each must fail as corrupt, for the reason given.
func TestLoadRejectsHeader(t *testing.T) {
	_, b := savedTiny(t)
	f := parseModelFile(t, b)
	edit := func(change func(h *fileHeader)) []byte {
		h := f.decode(t)
		change(&h)
		return f.withHeader(t, h).bytes()
	}
	unknown := f
	unknown.header = append([]byte(`{"extra":1,`), f.header[1:]...)
	long := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32([]byte(fileMagic), fileVersion), maxHeader+1)
	nan := f
	nan.data = bytes.Clone(f.data)
	binary.LittleEndian.PutUint32(nan.data[8:], math.Float32bits(float32(math.NaN())))
	inf := f
	inf.data = bytes.Clone(f.data)
	binary.LittleEndian.PutUint32(inf.data[len(inf.data)-4:], math.Float32bits(float32(math.Inf(-1))))

	for _, c := range []struct {
		name, want string
		file       []byte
	}{
		{"unknown field", `unknown field "extra"`, unknown.bytes()},
		{"header too long", "header of 1048577 bytes (at most 1048576)", long},
		{"header not JSON", "header: invalid character", modelFile{version: fileVersion, header: []byte("{nope"), data: f.data}.bytes()},
		{"fewer channels than taps", "1 channel counts, 1 sizes, 2 taps", edit(func(h *fileHeader) {
			h.Channels, h.Sizes = h.Channels[:1], h.Sizes[:1]
		})},
		{"kernel", "adapter kernel 5", edit(func(h *fileHeader) { h.Config.Adapter.Kernel = 5 })},
		{"no channels", "tap 1: 0 channels", edit(func(h *fileHeader) { h.Channels[1] = 0 })},
		{"empty map", "tap 0: 16 channels, size [16 0]", edit(func(h *fileHeader) { h.Sizes[0][1] = 0 })},
		{"no centroids", "0 centroids of dimension 48", edit(func(h *fileHeader) { h.K = 0 })},
		{"dimension", "4 centroids of dimension 47 for 48 channels", edit(func(h *fileHeader) { h.D = 47 })},
		{"tensor renamed", "tensor 4 is centres [4 48], want centroids [4 48]", edit(func(h *fileHeader) { h.Tensors[4].Name = "centres" })},
		{"tensor reshaped", "tensor 1 is adapter.0.bias [17], want adapter.0.bias [16]", edit(func(h *fileHeader) { h.Tensors[1].Shape[0] = 17 })},
		{"tensor missing", "4 tensors, want 5", edit(func(h *fileHeader) { h.Tensors = h.Tensors[:4] })},
		{"too many parameters", "more than 1073741824 parameters", edit(func(h *fileHeader) {
			c := 1 << 15 // 2^15 x (2^15+2) adapter weights
			h.D += c - h.Channels[0]
			h.Channels[0] = c
			h.Tensors[0].Shape = []int{c, c + 2, 1, 1}
			h.Tensors[1].Shape = []int{c}
			h.Tensors[4].Shape = []int{h.K, h.D}
		})},
		{"NaN weight", "adapter.0.weight: value 2 is NaN", nan.bytes()},
		{"infinite centroid", "centroids: value 191 is -Inf", inf.bytes()},
	} {
		_, err := Load(bytes.NewReader(c.file), newTinyNet(3))
		require.ErrorIs(t, err, ErrCorrupt, c.name)
		require.ErrorContains(t, err, c.want, c.name)
	}

	// An edit that check accepts loads: the test's edits are not corrupt
	// by themselves.
	l, err := Load(bytes.NewReader(edit(func(h *fileHeader) { h.Delta = 0.25 })), newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, 0.25, l.Delta())

	_, err = Load(bytes.NewReader(b), nil)
	require.EqualError(t, err, "anomnet: load: no backbone given")
}

// failingWriter takes n bytes, then fails as a full disk does.
type failingWriter struct {
	n   int
	got bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.got.Write(p[:w.n])
		k := w.n
		w.n = 0
		return k, syscall.ENOSPC
	}
	w.n -= len(p)
	return w.got.Write(p)
}

func TestSaveWriteErrors(t *testing.T) {
	m, b := savedTiny(t)
	for _, n := range []int{0, 10, len(b) / 2, len(b) - sha256.Size, len(b) - 1} {
		w := &failingWriter{n: n}
		err := m.Save(w)
		require.ErrorIs(t, err, syscall.ENOSPC, "failing after %d bytes", n)
		require.ErrorContains(t, err, "anomnet: save: ")
		require.True(t, bytes.Equal(b[:n], w.got.Bytes()), "after %d bytes: what was written is not the file's start", n)
	}
	w := &failingWriter{n: len(b)}
	require.NoError(t, m.Save(w))
	require.Equal(t, b, w.got.Bytes())

	var buf bytes.Buffer
	u, err := New(newTinyNet(3), testConfig())
	require.NoError(t, err)
	require.ErrorIs(t, u.Save(&buf), ErrNotFitted)
	require.Zero(t, buf.Len(), "an unfitted model writes nothing")
}

func TestSaveFileReplaces(t *testing.T) {
	m, b := savedTiny(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.anm")
	require.NoError(t, os.WriteFile(path, []byte("old model"), 0o600))
	require.NoError(t, m.SaveFile(path))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, b, got)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), info.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	missing := filepath.Join(dir, "no such folder", "model.anm")
	err = m.SaveFile(missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "anomnet: save "+missing+": ")
}

// TestSaveIndexBasis checks the optional last tensor of version 3: a model
// that searches through a centroid.Index saves its subspace, Load rebuilds
// the Index from it (the same basis, the same scores, the same bytes saved
// again), and a file without it (version 2) still loads and scores alike.
func TestSaveIndexBasis(t *testing.T) {
	cfg := testConfig()
	cfg.K, cfg.Epochs1, cfg.Epochs2 = pruneFrom, 0, 0
	s := makeSynth(22, 16, 2, 2) // 16 images of 16 x 16 locations: 4096 vectors
	m := fitTiny(t, cfg, s)
	ix, ok := m.set.(*centroid.Index)
	require.True(t, ok, "K = %d searches through an Index", pruneFrom)
	var buf bytes.Buffer
	require.NoError(t, m.Save(&buf))
	b := buf.Bytes()
	f := parseModelFile(t, b)
	h := f.decode(t)
	last := h.Tensors[len(h.Tensors)-1]
	require.Equal(t, fileShape{indexBasis, []int{48, 48}}, last)

	want, err := m.PredictBatch(context.Background(), s.test)
	require.NoError(t, err)
	l, err := Load(bytes.NewReader(b), newTinyNet(3))
	require.NoError(t, err)
	lix, ok := l.set.(*centroid.Index)
	require.True(t, ok)
	require.Equal(t, ix.Basis(), lix.Basis())
	got, err := l.PredictBatch(context.Background(), s.test)
	require.NoError(t, err)
	require.Equal(t, want, got)
	var again bytes.Buffer
	require.NoError(t, l.Save(&again))
	require.Equal(t, b, again.Bytes())

	// Version 2: no basis; the Index is built again from the centroids.
	h.Tensors = h.Tensors[:len(h.Tensors)-1]
	v2 := f.withHeader(t, h)
	v2.version = 2
	v2.data = v2.data[:len(v2.data)-4*48*48]
	l2, err := Load(bytes.NewReader(v2.bytes()), newTinyNet(3))
	require.NoError(t, err)
	_, ok = l2.set.(*centroid.Index)
	require.True(t, ok)
	got2, err := l2.PredictBatch(context.Background(), s.test)
	require.NoError(t, err)
	require.Equal(t, want, got2)

	// A narrower basis (saved when IndexDim was smaller) loads, and the
	// search stays exact: its first 20 axes.
	narrow := make([]float32, 48*20)
	for i := range 48 {
		copy(narrow[i*20:(i+1)*20], ix.Basis()[i*48:i*48+20])
	}
	h.Tensors = append(h.Tensors, fileShape{indexBasis, []int{48, 20}})
	nf := f.withHeader(t, h)
	nf.data = append(append([]byte(nil), v2.data...), floatBytes(narrow)...)
	ln, err := Load(bytes.NewReader(nf.bytes()), newTinyNet(3))
	require.NoError(t, err)
	require.Len(t, ln.set.(*centroid.Index).Basis(), 48*20)
	gotN, err := ln.PredictBatch(context.Background(), s.test)
	require.NoError(t, err)
	require.Equal(t, want, gotN)

	// A basis of the wrong shape is a corrupt file.
	for _, sh := range [][]int{{47, 48}, {48, 49}, {48, 0}, {48}} {
		h.Tensors[len(h.Tensors)-1] = fileShape{indexBasis, sh}
		bad := f.withHeader(t, h)
		_, err = Load(bytes.NewReader(bad.bytes()), newTinyNet(3))
		require.ErrorIs(t, err, ErrCorrupt, "shape %v", sh)
	}
}

func floatBytes(v []float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}
