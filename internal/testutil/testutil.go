// Package testutil holds helpers that the tests of several packages share.
package testutil

import (
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"testing"
)

// AllocBound fails t when fn allocates more than limit bytes in total: the
// fuzz targets' check that a forged size in the input cannot turn a small
// file into a huge allocation.
func AllocBound(t testing.TB, limit uint64, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Fatalf("allocated %d bytes (limit %d)", got, limit)
	}
}

// PNGHeader is the start of a PNG file whose header claims w x h 8-bit
// RGBA pixels: the signature and a valid IHDR chunk, all that a decoder
// reads before it knows the size, and no image data. Decoding it fully
// would try to allocate w*h*4 bytes.
func PNGHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32([]byte("IHDR"), w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0) // 8-bit RGBA, deflate, no filter, no interlace
	b := []byte("\x89PNG\r\n\x1a\n")
	b = binary.BigEndian.AppendUint32(b, uint32(len(ihdr)-4))
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}
