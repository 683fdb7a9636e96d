package anomnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/org/anomnet/internal/testutil"
)

// FuzzLoad feeds Load arbitrary model files. A found input must make Load
// return, without panicking, a model or an error, and allocate in
// proportion to the file: the header's shapes are the file's own claims.
// Each input is also tried with a valid checksum appended, so that the
// fuzzer reaches the code behind the checksum test.
func FuzzLoad(f *testing.F) {
	bb := newTinyNet(3)
	good := tinySavedModel(f, bb)
	f.Add(good)
	body := good[:len(good)-sha256.Size]
	f.Add(body) // Load of body+checksum is the original model
	f.Add(good[:len(good)/2])
	for _, at := range []int{3, 10, 14, len(good) / 3, len(good) - 1} {
		b := bytes.Clone(good)
		b[at] ^= 0x10
		f.Add(b)
	}
	f.Add(forgedModel(f, body, 16384))
	f.Add(forgedModel(f, body, 1<<16))

	f.Fuzz(func(t *testing.T, b []byte) {
		sum := sha256.Sum256(b)
		for _, in := range [][]byte{b, append(bytes.Clone(b), sum[:]...)} {
			// A model holds its parameters a few times over (host copy,
			// device copy, adapter buffers); the header and decoders add
			// a fixed amount.
			testutil.AllocBound(t, 8<<20+64*uint64(len(in)), func() {
				m, err := Load(bytes.NewReader(in), bb)
				if err == nil && m == nil {
					t.Fatal("nil model without an error")
				}
			})
		}
	})
}

// tinySavedModel fits a tiny model for one epoch per stage and returns its
// saved bytes.
func tinySavedModel(f *testing.F, bb Backbone) []byte {
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	m, err := New(bb, cfg)
	if err != nil {
		f.Fatal(err)
	}
	if err := m.Fit(context.Background(), makeSynth(5, 8, 0, 0).train); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// forgedModel rewrites the header of a saved model (body: the file less its
// checksum) so that the first tap claims c channels, hence an adapter of
// about c*c floats, while the file keeps its few kilobytes of data.
func forgedModel(f *testing.F, body []byte, c int) []byte {
	pre := len(fileMagic) + 8
	n := int(binary.LittleEndian.Uint32(body[pre-4:]))
	var h fileHeader
	if err := json.Unmarshal(body[pre:pre+n], &h); err != nil {
		f.Fatal(err)
	}
	h.D += c - h.Channels[0]
	h.Channels[0] = c
	h.Tensors[0].Shape[0], h.Tensors[0].Shape[1] = c, c+2
	h.Tensors[1].Shape[0] = c
	h.Tensors[len(h.Tensors)-1].Shape[1] = h.D
	js, err := json.Marshal(h)
	if err != nil {
		f.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint32(append([]byte(nil), body[:pre-4]...), uint32(len(js)))
	return append(append(out, js...), body[pre+n:]...)
}
