package tensor

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
)

// parallelFor splits [0, n) into contiguous chunks and runs fn on them from
// up to GOMAXPROCS goroutines. cost is a rough count of work per index; work
// below a few tens of thousands of operations in all runs inline, where a
// goroutine would cost more than it saves.
func parallelFor(n, cost int, fn func(lo, hi int)) {
	const minWork = 1 << 15
	workers := runtime.GOMAXPROCS(0)
	if cost < 1 {
		cost = 1
	}
	if max := n * cost / minWork; max < workers {
		workers = max
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// checkShape panics unless t has exactly the given shape and dtype.
func expect(op, name string, t *Tensor, dt DType, shape ...int) {
	if t == nil {
		panic(fmt.Sprintf("anomnet/tensor: %s: %s is nil", op, name))
	}
	if t.dtype != dt || !slices.Equal(t.shape, shape) {
		panic(fmt.Sprintf("anomnet/tensor: %s: %s is %v, want %s%v", op, name, t, dt, shape))
	}
}

// expectRank panics unless t is a float32 tensor of the given rank, and
// returns its shape.
func expectRank(op, name string, t *Tensor, rank int) []int {
	if t == nil {
		panic(fmt.Sprintf("anomnet/tensor: %s: %s is nil", op, name))
	}
	if t.dtype != Float32 || len(t.shape) != rank {
		panic(fmt.Sprintf("anomnet/tensor: %s: %s is %v, want a rank-%d float32 tensor", op, name, t, rank))
	}
	return t.shape
}

// expectSize panics unless t is float32 with n elements (any shape).
func expectSize(op, name string, t *Tensor, n int) {
	if t == nil {
		panic(fmt.Sprintf("anomnet/tensor: %s: %s is nil", op, name))
	}
	if t.dtype != Float32 || t.Len() != n {
		panic(fmt.Sprintf("anomnet/tensor: %s: %s is %v, want %d float32 elements", op, name, t, n))
	}
}
