package gemm

import (
	"runtime"
	"sync"
	"time"
)

// Peak runs the FMA loop of the widest vector unit this CPU has (the one
// the GEMM's kernels use), about flops floating-point operations in all,
// split over runtime.GOMAXPROCS(0) goroutines, and returns the operations
// done and the time they took: the ceiling that a computation's speed is
// set against, measured beside it on a machine whose speed drifts. ok is
// false where there is no such loop (another architecture, or the noasm
// build).
func Peak(flops float64) (done float64, elapsed time.Duration, ok bool) {
	ls := fmaLoops()
	if len(ls) == 0 {
		return 0, 0, false
	}
	l, procs := ls[0], runtime.GOMAXPROCS(0)
	iters := max(1, int(flops/float64(procs)/l.flopsPerIter))
	t0 := time.Now()
	onCores(procs, func() { l.loop(iters) })
	return float64(procs) * float64(iters) * l.flopsPerIter, time.Since(t0), true
}

// onCores runs f on procs goroutines at once and waits for them all.
func onCores(procs int, f func()) {
	var wg sync.WaitGroup
	for range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	wg.Wait()
}
