//go:build !amd64 || noasm

package gemm

type fmaLoop struct {
	name         string
	loop         func(n int)
	flopsPerIter float64
}

func fmaLoops() []fmaLoop { return nil }
