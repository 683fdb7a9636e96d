// Package gemm is anomnet's float32 matrix product for the CPU: packed
// panels and a register-blocked micro-kernel, in Go assembly on amd64
// (AVX-512 or AVX2+FMA, chosen at run time) and in Go elsewhere or with the
// noasm build tag. The CPU Device calls it for every product, unless a
// program has installed another BLAS with gonum's blas32.Use; Implementation
// offers it to gonum the other way round.
//
// The blocking follows the usual five loops (Goto and van de Geijn,
// "Anatomy of high-performance matrix multiplication", 2008): a kc x nc
// block of B is packed into NR-wide panels that stay in cache, each mc x kc
// block of A into MR-tall panels, and the micro-kernel multiplies one A
// panel by one B panel into an MR x NR tile of C held in registers.
package gemm

//go:generate go run ./internal/gen

import (
	"fmt"
	"runtime"
	"sync"
)

// Kernel is one micro-kernel: it adds the product of an MR x kc panel of A
// (packed k-major: MR values per k) and a kc x NR panel of B (NR values per
// k) to the MR x NR tile of C at c with row stride ldc (in elements).
type Kernel struct {
	Name   string
	MR, NR int
	fn     func(kc int, a, b, c *float32, ldc int)
}

// Kernels lists the micro-kernels this machine can run, fastest first. The
// first is the one Sgemm uses unless Use chose another.
func Kernels() []Kernel { return available }

var (
	mu     sync.RWMutex
	active Kernel
)

func init() {
	if len(available) == 0 {
		panic("anomnet/gemm: no micro-kernel")
	}
	active = available[0]
}

// Use selects the micro-kernel by name (from Kernels) for later calls; tests
// use it to check every path. It returns an error for an unknown name or one
// this CPU cannot run.
func Use(name string) error {
	for _, k := range available {
		if k.Name == name {
			mu.Lock()
			active = k
			mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("anomnet/gemm: no kernel %q on this machine (have %v)", name, names())
}

// Active returns the micro-kernel in use.
func Active() Kernel {
	mu.RLock()
	defer mu.RUnlock()
	return active
}

func names() []string {
	var s []string
	for _, k := range available {
		s = append(s, k.Name)
	}
	return s
}

// Blocking sizes: a kc x NR panel of B stays in L1 across the MR-tall panels
// of an mc x kc block of A in L2; a kc x nc block of B fills part of L3.
const (
	kcBlock = 256
	mcBlock = 192
	ncBlock = 3072
)

// Sgemm sets C = alpha*op(A)*op(B) + beta*C for row-major matrices: op(A)
// is m x k, op(B) is k x n, C is m x n; lda, ldb and ldc are the row strides
// of A, B and C as stored. With beta = 0, C's old values (even NaN) are
// ignored. It panics if a slice is too short for its shape.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("anomnet/gemm: negative size %dx%dx%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	checkLen("a", a, lda, m, k, transA)
	checkLen("b", b, ldb, k, n, transB)
	checkLen("c", c, ldc, m, n, false)
	scaleC(c, ldc, m, n, beta)
	if k == 0 || alpha == 0 {
		return
	}
	ker := Active()
	g := &job{ker: ker, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
		a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc}
	g.run()
}

// checkLen panics unless s holds an r x c matrix (stored transposed if t)
// with row stride ld.
func checkLen(name string, s []float32, ld, r, c int, t bool) {
	if t {
		r, c = c, r
	}
	if r == 0 || c == 0 {
		return
	}
	if ld < c || len(s) < (r-1)*ld+c {
		panic(fmt.Sprintf("anomnet/gemm: %s: %d elements with stride %d for a %dx%d matrix", name, len(s), ld, r, c))
	}
}

// scaleC sets C = beta*C, with beta = 0 clearing it.
func scaleC(c []float32, ldc, m, n int, beta float32) {
	if beta == 1 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// job is one Sgemm call.
type job struct {
	ker            Kernel
	transA, transB bool
	m, n, k        int
	alpha          float32
	a, b, c        []float32
	lda, ldb, ldc  int
}

func (g *job) run() {
	mr, nr := g.ker.MR, g.ker.NR
	workers := runtime.GOMAXPROCS(0)
	if g.m*g.n*g.k < 1<<18 {
		workers = 1
	}
	// Blocks of A rows: at most mcBlock, and enough of them to keep every
	// worker busy.
	mc := min(mcBlock, roundUp((g.m+workers-1)/workers, mr))
	nc := min(ncBlock, roundUp(g.n, nr))
	kc := min(kcBlock, g.k)
	bpack := make([]float32, roundUp(nc, nr)*kc)
	apacks := make([][]float32, workers)
	for w := range apacks {
		apacks[w] = make([]float32, mc*kc)
	}
	var tiles [][]float32 // per worker: an MR x NR tile for edges
	for range workers {
		tiles = append(tiles, make([]float32, mr*nr))
	}
	for jc := 0; jc < g.n; jc += nc {
		ncur := min(nc, g.n-jc)
		for pc := 0; pc < g.k; pc += kc {
			kcur := min(kc, g.k-pc)
			// Pack B's kcur x ncur block, panels split among workers.
			panels := (ncur + nr - 1) / nr
			parallel(workers, panels, func(_, lo, hi int) {
				for p := lo; p < hi; p++ {
					g.packB(bpack[p*nr*kcur:(p+1)*nr*kcur], pc, kcur, jc+p*nr, min(nr, ncur-p*nr))
				}
			})
			blocks := (g.m + mc - 1) / mc
			parallel(workers, blocks, func(w, lo, hi int) {
				for blk := lo; blk < hi; blk++ {
					ic := blk * mc
					mcur := min(mc, g.m-ic)
					ap := apacks[w]
					for ir := 0; ir < mcur; ir += mr {
						g.packA(ap[ir*kcur:(ir+mr)*kcur], ic+ir, min(mr, mcur-ir), pc, kcur)
					}
					g.macro(ap, bpack, ic, mcur, jc, ncur, kcur, tiles[w])
				}
			})
		}
	}
}

// macro multiplies a packed mcur x kcur block of A by a packed kcur x ncur
// block of B into C at (ic, jc).
func (g *job) macro(ap, bp []float32, ic, mcur, jc, ncur, kcur int, tile []float32) {
	mr, nr := g.ker.MR, g.ker.NR
	for jr := 0; jr < ncur; jr += nr {
		nn := min(nr, ncur-jr)
		b := &bp[jr*kcur]
		for ir := 0; ir < mcur; ir += mr {
			mm := min(mr, mcur-ir)
			a := &ap[ir*kcur]
			if mm == mr && nn == nr {
				g.ker.fn(kcur, a, b, &g.c[(ic+ir)*g.ldc+jc+jr], g.ldc)
				continue
			}
			// An edge tile: compute the whole tile aside, add the part
			// inside C.
			clear(tile)
			g.ker.fn(kcur, a, b, &tile[0], nr)
			for i := range mm {
				row := g.c[(ic+ir+i)*g.ldc+jc+jr:][:nn]
				for j := range row {
					row[j] += tile[i*nr+j]
				}
			}
		}
	}
}

// packA copies rows [i0, i0+mm) and columns [p0, p0+kc) of alpha*op(A)
// into dst, k-major (MR values per k), padding missing rows with zeros.
func (g *job) packA(dst []float32, i0, mm, p0, kc int) {
	mr := g.ker.MR
	for p := range kc {
		d := dst[p*mr : (p+1)*mr]
		for i := range mm {
			var v float32
			if g.transA {
				v = g.a[(p0+p)*g.lda+i0+i]
			} else {
				v = g.a[(i0+i)*g.lda+p0+p]
			}
			d[i] = g.alpha * v
		}
		clear(d[mm:])
	}
}

// packB copies rows [p0, p0+kc) and columns [j0, j0+nn) of op(B) into dst,
// NR values per k, padding missing columns with zeros.
func (g *job) packB(dst []float32, p0, kc, j0, nn int) {
	nr := g.ker.NR
	for p := range kc {
		d := dst[p*nr : (p+1)*nr]
		if g.transB {
			for j := range nn {
				d[j] = g.b[(j0+j)*g.ldb+p0+p]
			}
		} else {
			copy(d, g.b[(p0+p)*g.ldb+j0:][:nn])
		}
		clear(d[nn:])
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// parallel runs fn over [0, n) split into at most workers contiguous
// ranges, one goroutine each; w numbers the goroutine, for its buffers.
func parallel(workers, n int, fn func(w, lo, hi int)) {
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
