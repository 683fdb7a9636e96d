//go:build !noasm

package gemm

import "golang.org/x/sys/cpu"

// The assembly kernels (kernel_amd64.s).
var (
	avx512Kernel = Kernel{Name: "avx512", MR: 12, NR: 32, fn: kernelAVX512, rows: []kernelFunc{
		nil, kernelAVX512R1, kernelAVX512R2, kernelAVX512R3, kernelAVX512R4, kernelAVX512R5, kernelAVX512R6,
		kernelAVX512R7, kernelAVX512R8, kernelAVX512R9, kernelAVX512R10, kernelAVX512R11,
	}, masked: kernelAVX512Mask, half: kernelAVX512Half}
	avx2Kernel = Kernel{Name: "avx2", MR: 6, NR: 16, fn: kernelAVX2}
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

// kernelAVX512R1 .. R11 compute only the first 1 .. 11 rows of
// kernelAVX512's tile, for the last panel of a product whose row count is
// not a multiple of 12.

//go:noescape
func kernelAVX512R1(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R2(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R3(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R4(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R5(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R6(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R7(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R8(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R9(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R10(kc int, a, b, c *float32, ldc int, flags uint8)

//go:noescape
func kernelAVX512R11(kc int, a, b, c *float32, ldc int, flags uint8)

// kernelAVX512Mask computes a whole 12 x 32 tile but reads and writes only
// the columns of C set in mask; kernelAVX512Half the same for a tile of 16
// columns (half the FMAs), from the same 32-wide B panels.

//go:noescape
func kernelAVX512Mask(kc int, a, b, c *float32, ldc int, flags uint8, mask uint32)

//go:noescape
func kernelAVX512Half(kc int, a, b, c *float32, ldc int, flags uint8, mask uint32)

// fmaLoopAVX512 and fmaLoopAVX2 run n iterations of 24 (12) independent
// vector FMAs: the peak that BenchmarkFMAPeak measures.
//
//go:noescape
func fmaLoopAVX512(n int)

//go:noescape
func fmaLoopAVX2(n int)
