//go:build !noasm

package gemm

import "golang.org/x/sys/cpu"

// fmaLoop is an assembly loop of independent vector FMAs, no memory
// traffic: loop(n) runs n iterations of flopsPerIter operations.
type fmaLoop struct {
	name         string
	loop         func(n int)
	flopsPerIter float64
}

// fmaLoops lists the FMA loops this CPU can run, widest first.
func fmaLoops() []fmaLoop {
	var ls []fmaLoop
	if cpu.X86.HasAVX512F {
		ls = append(ls, fmaLoop{"avx512", fmaLoopAVX512, 24 * 16 * 2})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ls = append(ls, fmaLoop{"avx2", fmaLoopAVX2, 12 * 8 * 2})
	}
	return ls
}
