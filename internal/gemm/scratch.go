package gemm

import "sync"

// The packing and transform buffers are recycled between calls: a backbone
// pass makes dozens of products, and a fresh buffer is cleared by the
// allocator only to be overwritten. A sync.Pool would drop them at every
// garbage collection, which these very allocations trigger, so a small
// free list keeps up to scratchKeep buffers of at most scratchMaxFloats.
const (
	scratchKeep      = 16
	scratchMaxFloats = 16 << 20 // 64 MB
)

var scratch struct {
	sync.Mutex
	free [][]float32
}

// getScratch returns a buffer of n floats with arbitrary contents: the
// smallest kept one that is large enough, or a new one.
func getScratch(n int) []float32 {
	scratch.Lock()
	best := -1
	for i, b := range scratch.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(scratch.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := scratch.free[best]
		last := len(scratch.free) - 1
		scratch.free[best] = scratch.free[last]
		scratch.free[last] = nil
		scratch.free = scratch.free[:last]
		scratch.Unlock()
		return b[:n]
	}
	scratch.Unlock()
	return make([]float32, n)
}

// putScratch hands a buffer from getScratch back; the caller must not use
// it afterwards. When the list is full the smallest kept buffer makes
// room, so that the large buffers of the large products stay.
func putScratch(s []float32) {
	if cap(s) == 0 || cap(s) > scratchMaxFloats {
		return
	}
	scratch.Lock()
	defer scratch.Unlock()
	if len(scratch.free) < scratchKeep {
		scratch.free = append(scratch.free, s[:0])
		return
	}
	small := 0
	for i, b := range scratch.free {
		if cap(b) < cap(scratch.free[small]) {
			small = i
		}
	}
	if cap(s) > cap(scratch.free[small]) {
		scratch.free[small] = s[:0]
	}
}
