package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// readNPY reads what writeNPY writes, checking the format as numpy.load
// would: magic, version 1.0, a header dict for little-endian float32 in C
// order, the data after it.
func readNPY(b []byte) (data []float32, rows, cols int, err error) {
	if len(b) < 10 || string(b[:8]) != npyMagic {
		return nil, 0, 0, fmt.Errorf("no .npy 1.0 magic: %q", b[:min(len(b), 8)])
	}
	n := int(binary.LittleEndian.Uint16(b[8:10]))
	if len(b) < 10+n {
		return nil, 0, 0, fmt.Errorf("header of %d bytes in a file of %d", n, len(b))
	}
	header := string(b[10 : 10+n])
	re := regexp.MustCompile(`^\{'descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\), \} *\n$`)
	m := re.FindStringSubmatch(header)
	if m == nil {
		return nil, 0, 0, fmt.Errorf("header %q", header)
	}
	rows, _ = strconv.Atoi(m[1])
	cols, _ = strconv.Atoi(m[2])
	body := b[10+n:]
	if len(body) != 4*rows*cols {
		return nil, 0, 0, fmt.Errorf("%d data bytes for %d x %d float32", len(body), rows, cols)
	}
	data = make([]float32, rows*cols)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:]))
	}
	return data, rows, cols, nil
}

func TestNPY(t *testing.T) {
	for _, shape := range [][2]int{{224, 224}, {3, 5}, {1, 1}, {0, 7}, {1000, 1}} {
		rows, cols := shape[0], shape[1]
		want := make([]float32, rows*cols)
		for i := range want {
			want[i] = float32(i)*0.37 - 11
		}
		if len(want) > 2 {
			want[0], want[1], want[2] = float32(math.Inf(-1)), -0, float32(math.NaN())
		}
		var buf bytes.Buffer
		if err := writeNPY(&buf, want, rows, cols); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		n := int(binary.LittleEndian.Uint16(b[8:10]))
		if (10+n)%64 != 0 {
			t.Errorf("%v: the data starts at byte %d, not a multiple of 64", shape, 10+n)
		}
		got, r, c, err := readNPY(b)
		if err != nil {
			t.Fatalf("%v: %v", shape, err)
		}
		if r != rows || c != cols {
			t.Errorf("shape %d x %d, want %v", r, c, shape)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%v: value %d is %g, want %g", shape, i, got[i], want[i])
			}
		}
	}
}

// TestNPYFile checks the file as predict writes it, through the
// temporary-file-and-rename path.
func TestNPYFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "map.npy")
	want := []float32{1, 2, 3, 4, 5, 6}
	if err := writeFile(p, func(w io.Writer) error { return writeNPY(w, want, 2, 3) }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, r, c, err := readNPY(b)
	if err != nil || r != 2 || c != 3 || got[5] != 6 {
		t.Errorf("read %v %d x %d, %v", got, r, c, err)
	}
	if names := dirNames(t, filepath.Dir(p)); len(names) != 1 {
		t.Errorf("folder holds %v, want just map.npy", names)
	}
}
