package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
)

// npyMagic starts every NumPy .npy file; 1, 0 is format version 1.0.
const npyMagic = "\x93NUMPY\x01\x00"

// writeNPY writes a rows x cols row-major float32 matrix as a NumPy .npy
// file (format 1.0, little-endian '<f4', C order), which numpy.load reads
// without anomnet: the header is a Python dict literal padded with spaces
// and a newline so that the data starts at a multiple of 64 bytes.
func writeNPY(w io.Writer, data []float32, rows, cols int) error {
	if rows < 0 || cols < 0 || len(data) != rows*cols {
		panic(fmt.Sprintf("anomnet: writeNPY: %d values for a %d x %d matrix", len(data), rows, cols))
	}
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols)
	// magic (8) + header length (2) + dict + padding + '\n'
	pad := (64 - (len(npyMagic)+2+len(dict)+1)%64) % 64
	header := dict + strings.Repeat(" ", pad) + "\n"
	buf := make([]byte, 0, len(npyMagic)+2+len(header)+4*len(data))
	buf = append(buf, npyMagic...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(header)))
	buf = append(buf, header...)
	for _, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	_, err := w.Write(buf)
	return err
}
