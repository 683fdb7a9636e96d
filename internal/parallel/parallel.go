// Package parallel splits a range of work over goroutines: the one fan-out
// that package gemm and package tensor share.
package parallel

import "sync"

// For runs fn over [0, n) split into at most workers contiguous ranges, one
// goroutine each; w numbers the goroutine (0 to the count less one), for
// its buffers. With one worker or fewer (or n of at most one) fn runs
// inline, once, as fn(0, 0, n), even for n = 0.
func For(workers, n int, fn func(w, lo, hi int)) {
	workers = min(workers, n)
	if workers <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, lo, hi)
		}()
	}
	wg.Wait()
}
