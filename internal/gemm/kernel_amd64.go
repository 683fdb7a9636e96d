//go:build !noasm

package gemm

import "golang.org/x/sys/cpu"

// The assembly kernels (kernel_amd64.s).
var (
	avx512Kernel = Kernel{Name: "avx512", MR: 12, NR: 32, fn: kernelAVX512}
	avx2Kernel   = Kernel{Name: "avx2", MR: 6, NR: 16, fn: kernelAVX2}
)

// available lists what this CPU (and its OS, which must save the wide
// registers) can run, fastest first; the Go kernel is always last.
var available = func() []Kernel {
	var ks []Kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, goKernel)
}()

//go:noescape
func kernelAVX512(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX2(kc int, a, b, c *float32, ldc int, flags uint8)

// fmaLoopAVX512 and fmaLoopAVX2 run n iterations of 24 (12) independent
// vector FMAs: the peak that BenchmarkFMAPeak measures.
//
//go:noescape
func fmaLoopAVX512(n int)

//go:noescape
func fmaLoopAVX2(n int)
