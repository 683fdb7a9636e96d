package backbone

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// This file reads safetensors files: an 8-byte header length, a JSON
// header and the tensors' data.

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
