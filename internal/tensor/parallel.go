package tensor

import (
	"runtime"

	"github.com/org/anomnet/internal/parallel"
)

// parallelFor splits [0, n) into contiguous chunks and runs fn on them from
// up to GOMAXPROCS goroutines. cost is a rough count of work per index; work
// below a few tens of thousands of operations in all runs inline, where a
// goroutine would cost more than it saves.
func parallelFor(n, cost int, fn func(lo, hi int)) {
	const minWork = 1 << 15
	if n <= 0 {
		return
	}
	workers := runtime.GOMAXPROCS(0)
	if cost < 1 {
		cost = 1
	}
	if max := n * cost / minWork; max < workers {
		workers = max
	}
	parallel.For(workers, n, func(_, lo, hi int) { fn(lo, hi) })
}
