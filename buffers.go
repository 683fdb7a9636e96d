package anomnet

import "sync"

// buffers recycles the host memory of a batch's backbone maps and feature
// rows, by length (on kolektor's full input 8 images make 41 MB of maps
// and 82 MB of rows): fresh memory for every batch costs the kernel's page
// faults or the runtime's zeroing, more than writing the values does.
var buffers struct {
	sync.Mutex
	pools map[int]*sync.Pool
}

// pool returns the pool of buffers of n values.
func pool(n int) *sync.Pool {
	buffers.Lock()
	defer buffers.Unlock()
	if buffers.pools == nil {
		buffers.pools = map[int]*sync.Pool{}
	}
	p := buffers.pools[n]
	if p == nil {
		p = &sync.Pool{}
		buffers.pools[n] = p
	}
	return p
}

// getBuffer returns n values, recycled where a buffer of that length was
// handed back (its contents are left as they were), else new.
func getBuffer(n int) []float32 {
	if b, ok := pool(n).Get().(*[]float32); ok {
		return *b
	}
	return make([]float32, n)
}

// putBuffer hands b back for a later getBuffer of its length; the caller
// no longer uses it.
func putBuffer(b []float32) {
	if len(b) > 0 {
		pool(len(b)).Put(&b)
	}
}
