//go:build !amd64 || noasm

package gemm

// fmaLoop is an assembly loop of independent vector FMAs, no memory
// traffic: loop(n) runs n iterations of flopsPerIter operations.
type fmaLoop struct {
	name         string
	loop         func(n int)
	flopsPerIter float64
}

// fmaLoops lists the FMA loops this CPU can run, widest first.
func fmaLoops() []fmaLoop { return nil }
