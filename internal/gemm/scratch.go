package gemm

import "sync"

// scratchPool recycles the packing and transform buffers between calls: a
// backbone pass makes dozens of products, and fresh buffers would be
// cleared by the allocator only to be overwritten.
var scratchPool sync.Pool // of *[]float32

// getScratch returns a buffer of n floats with arbitrary contents.
func getScratch(n int) []float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok {
		if cap(*p) >= n {
			return (*p)[:n]
		}
		scratchPool.Put(p)
	}
	return make([]float32, n)
}

// putScratch hands a buffer from getScratch back; the caller must not use
// it afterwards.
func putScratch(s []float32) { scratchPool.Put(&s) }
