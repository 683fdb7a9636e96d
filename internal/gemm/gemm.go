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

	"github.com/org/anomnet/internal/parallel"
)

// Kernel is one micro-kernel: it multiplies an MR x kc panel of A (packed
// k-major: MR values per k) by a kc x NR panel of B (NR values per k) into
// the MR x NR tile of C at c with row stride ldc (in elements). With
// flagAdd it adds the tile's contents first; with flagReLU it stores
// max(., 0).
type Kernel struct {
	Name   string
	MR, NR int
	fn     kernelFunc
	// rows, when set, holds kernels that compute only the first r rows
	// of the tile (rows[r], 0 < r < MR), from the same packed panels.
	rows []kernelFunc
	// masked and half, when set, compute all MR rows but only the
	// columns of C in mask (bit j for column j): masked for any, half for
	// the first NR/2 columns at most, with half the work.
	masked, half maskedFunc
}

type (
	kernelFunc func(kc int, a, b, c *float32, ldc int, flags uint8)
	maskedFunc func(kc int, a, b, c *float32, ldc int, flags uint8, mask uint32)
)

const (
	flagAdd  = 1
	flagReLU = 2
)

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

// Blocking sizes: an MR x kc panel of A stays in L1 while the NR-wide
// panels of a kc x nc block of B (768 KB) stream past it from L2; the
// mc x kc block of A (192 KB) is in L2 too.
const (
	kcBlock = 256
	mcBlock = 192
	ncBlock = 768
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
	if k == 0 || alpha == 0 {
		scaleC(c, ldc, m, n, beta)
		return
	}
	g := &job{ker: Active(), m: m, n: n, k: k, c: c, ldc: ldc, groupCols: n, overwrite: beta == 0}
	if beta != 0 {
		scaleC(c, ldc, m, n, beta)
	}
	g.packA = func(dst []float32, i0, mm, p0, kc int) {
		packMatrix(dst, g.ker.MR, a, lda, transA, alpha, i0, mm, p0, kc)
	}
	g.packB = func(dst []float32, p0, kc, j0, nn int) { packMatrix(dst, g.ker.NR, b, ldb, !transB, 1, j0, nn, p0, kc) }
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

// packMatrix packs an r-wide strip of a stored matrix for a kernel: for
// each k in [p0, p0+kc), the values of strip rows [i0, i0+mm) (padded with
// zeros to r), times scale. kMajor says the matrix is stored with k along
// its rows (element (i, k) at s[k*ld+i]: A transposed, or B as is);
// otherwise element (i, k) is at s[i*ld+k].
func packMatrix(dst []float32, r int, s []float32, ld int, kMajor bool, scale float32, i0, mm, p0, kc int) {
	if kMajor {
		if scale == 1 && mm == r && packRows != nil && kc > 0 {
			// Whole rows of the panel: the fast copy (Winograd's and
			// plain products' B panels).
			packRows(dst[:kc*r], s[p0*ld+i0:(p0+kc-1)*ld+i0+r], ld, r)
			return
		}
		for p := range kc {
			d := dst[p*r : (p+1)*r]
			src := s[(p0+p)*ld+i0:][:mm]
			if scale == 1 {
				copy(d, src)
			} else {
				for i, v := range src {
					d[i] = scale * v
				}
			}
			clear(d[mm:])
		}
		return
	}
	if r == 12 && mm == 12 && scale == 1 && packA12 != nil {
		packA12(dst, s[i0*ld+p0:], ld, kc)
		return
	}
	// Read rows of the strip contiguously, four at a time, and write each
	// k's four values together.
	i := 0
	for ; i+4 <= mm; i += 4 {
		s0 := s[(i0+i)*ld+p0:][:kc]
		s1 := s[(i0+i+1)*ld+p0:][:kc]
		s2 := s[(i0+i+2)*ld+p0:][:kc]
		s3 := s[(i0+i+3)*ld+p0:][:kc]
		d := dst[i : (kc-1)*r+i+4]
		for p, v := range s0 {
			q := d[p*r : p*r+4 : p*r+4]
			q[0], q[1], q[2], q[3] = scale*v, scale*s1[p], scale*s2[p], scale*s3[p]
		}
	}
	for ; i < mm; i++ {
		src := s[(i0+i)*ld+p0:][:kc]
		for p, v := range src {
			dst[p*r+i] = scale * v
		}
	}
	for p := range kc {
		clear(dst[p*r+mm : (p+1)*r])
	}
}

// job is one product C = A*B (+ C) with A and B reached through packing
// functions, so that a convolution can pack its input without an im2col
// matrix, and with C's columns in groups: column j of row i is at
// (j/groupCols)*groupStride + i*ldc + j%groupCols, which is a plain
// row-major matrix when there is one group, and NCHW maps when a group is
// an image.
type job struct {
	ker     Kernel
	m, n, k int
	packA   func(dst []float32, i0, mm, p0, kc int)
	packB   func(dst []float32, p0, kc, j0, nn int)
	c       []float32
	ldc     int

	groupCols, groupStride int
	// overwrite: C's old values are ignored (the first k block writes).
	overwrite bool
	// bias (per row of C, or nil) is added as one more k: a column of A
	// against a row of ones in B. relu is applied as the last k block is
	// stored.
	bias []float32
	relu bool
	// pre, when set, holds all of B packed (PackB): its blocks are read in
	// place instead of packed.
	pre *PackedB
}

// withBias extends the product by the bias column, if there is one.
func (g *job) withBias() {
	if g.bias == nil {
		return
	}
	k, packA, packB := g.k, g.packA, g.packB
	g.k++
	g.packA = func(dst []float32, i0, mm, p0, kc int) {
		mr := g.ker.MR
		if p0+kc > k { // the block holds the bias column last
			packA(dst, i0, mm, p0, kc-1)
			d := dst[(kc-1)*mr : kc*mr]
			copy(d, g.bias[i0:i0+mm])
			clear(d[mm:])
			return
		}
		packA(dst, i0, mm, p0, kc)
	}
	g.packB = func(dst []float32, p0, kc, j0, nn int) {
		nr := g.ker.NR
		if p0+kc > k {
			packB(dst, p0, kc-1, j0, nn)
			d := dst[(kc-1)*nr : kc*nr]
			for j := range d {
				d[j] = 0
				if j < nn {
					d[j] = 1
				}
			}
			return
		}
		packB(dst, p0, kc, j0, nn)
	}
}

func (g *job) offset(i, j int) int {
	return (j/g.groupCols)*g.groupStride + i*g.ldc + j%g.groupCols
}

// kBlock is the depth of the k blocks: equal blocks of at most kcBlock, so
// that no block is a sliver.
func kBlock(k int) int {
	blocks := (k + kcBlock - 1) / kcBlock
	return (k + blocks - 1) / blocks
}

// nBlock is the width of the column blocks of a product n columns wide:
// equal blocks of at most 5/4 ncBlock, so that a product a little wider
// than ncBlock does not pack all of A a second time for a sliver.
func nBlock(n, nr int) int {
	maxNC := ncBlock * 5 / 4
	blocks := (n + maxNC - 1) / maxNC
	return roundUp((n+blocks-1)/blocks, nr)
}

// workersFor is how many goroutines a product of mnk multiply-adds uses:
// every core, unless it is too small to repay starting them.
func workersFor(mnk int) int {
	if mnk < 1<<18 {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

func (g *job) run() {
	g.withBias()
	mr, nr := g.ker.MR, g.ker.NR
	workers := workersFor(g.m * g.n * g.k)
	// Wide products (a convolution's columns run over the batch's
	// pixels) split their columns among the workers; others their rows.
	if workers > 1 && (g.n+nr-1)/nr >= columnSplitPanels*workers {
		g.runColumns(workers)
		return
	}
	// Blocks of A rows: at most mcBlock, and enough of them to keep every
	// worker busy.
	mc := min(mcBlock, roundUp((g.m+workers-1)/workers, mr))
	nc := nBlock(g.n, nr)
	kc := kBlock(g.k)
	bpack := getScratch(roundUp(nc, nr) * kc)
	defer putScratch(bpack)
	apacks := make([][]float32, workers)
	tiles := make([][]float32, workers) // per worker: an MR x NR edge tile
	for w := range workers {
		apacks[w] = getScratch(mc * kc)
		tiles[w] = getScratch(mr * nr)
		defer putScratch(apacks[w])
		defer putScratch(tiles[w])
	}
	for jc := 0; jc < g.n; jc += nc {
		ncur := min(nc, g.n-jc)
		for pc := 0; pc < g.k; pc += kc {
			kcur := min(kc, g.k-pc)
			first, last := pc == 0, pc+kcur == g.k
			// Pack B's kcur x ncur block, panels split among workers.
			bp := bpack
			if g.pre != nil {
				bp = g.pre.block(pc, jc)
			} else {
				panels := (ncur + nr - 1) / nr
				parallel.For(workers, panels, func(_, lo, hi int) {
					for p := lo; p < hi; p++ {
						g.packB(bpack[p*nr*kcur:(p+1)*nr*kcur], pc, kcur, jc+p*nr, min(nr, ncur-p*nr))
					}
				})
			}
			blocks := (g.m + mc - 1) / mc
			parallel.For(workers, blocks, func(w, lo, hi int) {
				for blk := lo; blk < hi; blk++ {
					ic := blk * mc
					mcur := min(mc, g.m-ic)
					ap := apacks[w]
					for ir := 0; ir < mcur; ir += mr {
						g.packA(ap[ir*kcur:(ir+mr)*kcur], ic+ir, min(mr, mcur-ir), pc, kcur)
					}
					g.macro(ap, bp, ic, mcur, jc, ncur, kcur, first, last, tiles[w])
				}
			})
		}
	}
}

// columnSplitPanels is the number of NR-wide column panels per worker from
// which run splits the columns rather than the rows.
const columnSplitPanels = 8

// runColumns is run for wide products: A is packed once, whole, and shared;
// each worker takes a contiguous range of column panels and packs its own
// blocks of B, so that the workers never wait for one another and split
// the work to within a panel, however few rows A has.
func (g *job) runColumns(workers int) {
	pa := g.prepackA(workers)
	defer putScratch(pa.data)
	nr := g.ker.NR
	parallel.For(workers, (g.n+nr-1)/nr, func(_, lo, hi int) {
		g.columns(pa, lo*nr, min(hi*nr, g.n), nil, nil)
	})
}

// packedA is all of A packed for the micro-kernel: the k block starting at
// pc is at data[mPad*pc:], MR-row panel after panel, each MR x kcur.
type packedA struct {
	data     []float32
	mPad, kc int
}

// prepackA packs all of A, the panels split among workers, into a buffer
// from getScratch.
func (g *job) prepackA(workers int) packedA {
	mr := g.ker.MR
	pa := packedA{mPad: roundUp(g.m, mr), kc: kBlock(g.k)}
	pa.data = getScratch(pa.mPad * g.k)
	rowPanels := pa.mPad / mr
	kBlocks := (g.k + pa.kc - 1) / pa.kc
	// Panel by panel, every k block of one before the next, so that each
	// worker reads MR whole rows of A from start to end, streams that the
	// hardware prefetcher follows (k block by k block, it read a short
	// stretch of each row and jumped, and packed 10-20% slower).
	parallel.For(workers, kBlocks*rowPanels, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			pc, ir := t%kBlocks*pa.kc, t/kBlocks*mr
			kcur := min(pa.kc, g.k-pc)
			g.packA(pa.data[pa.mPad*pc+ir*kcur:][:mr*kcur], ir, min(mr, g.m-ir), pc, kcur)
		}
	})
	return pa
}

// columns computes columns [j0, j1) of C on the calling goroutine from
// the packed A, packing B a block at a time into bpack. bpack (at least
// nBlock(j1-j0, NR) x kc, which j1-j0 rounded up to NR always is) and
// tile (MR x NR) are allocated when nil.
func (g *job) columns(pa packedA, j0, j1 int, bpack, tile []float32) {
	mr, nr, kc := g.ker.MR, g.ker.NR, pa.kc
	nc := nBlock(j1-j0, nr)
	if bpack == nil {
		bpack = getScratch(nc * kc)
		defer putScratch(bpack)
	}
	if tile == nil {
		tile = getScratch(mr * nr)
		defer putScratch(tile)
	}
	for jc := j0; jc < j1; jc += nc {
		ncur := min(nc, j1-jc)
		for pc := 0; pc < g.k; pc += kc {
			kcur := min(kc, g.k-pc)
			bp := bpack
			if g.pre != nil {
				bp = g.pre.block(pc, jc)
			} else {
				for p := 0; p*nr < ncur; p++ {
					g.packB(bpack[p*nr*kcur:(p+1)*nr*kcur], pc, kcur, jc+p*nr, min(nr, ncur-p*nr))
				}
			}
			for ic := 0; ic < g.m; ic += mcBlock {
				g.macro(pa.data[pa.mPad*pc+ic*kcur:], bp, ic, min(mcBlock, g.m-ic), jc, ncur, kcur,
					pc == 0, pc+kcur == g.k, tile)
			}
		}
	}
}

// macro multiplies a packed mcur x kcur block of A by a packed kcur x ncur
// block of B into C at (ic, jc).
func (g *job) macro(ap, bp []float32, ic, mcur, jc, ncur, kcur int, first, last bool, tile []float32) {
	mr, nr := g.ker.MR, g.ker.NR
	var flags uint8
	if !(first && g.overwrite) {
		flags |= flagAdd
	}
	if last && g.relu {
		flags |= flagReLU
	}
	// Rows outer: an A panel (MR x kc, 12 KB at most) stays in L1 while
	// the B panels of the block stream from L2 past it. (Columns outer
	// kept a B panel of 32 KB in L1 with the A panels streaming, and
	// measured 4 to 11 points of the FMA peak slower on large products.)
	for ir := 0; ir < mcur; ir += mr {
		for jr := 0; jr < ncur; jr += nr {
			g.tile(ap, bp, ic, ir, jc, jr, mcur, ncur, kcur, flags, tile)
		}
	}
}

// tile multiplies A panel ir of the block at row ic by B panel jr of the
// block at column jc into C.
func (g *job) tile(ap, bp []float32, ic, ir, jc, jr, mcur, ncur, kcur int, flags uint8, tile []float32) {
	mr, nr := g.ker.MR, g.ker.NR
	add := flags&flagAdd != 0
	nn := min(nr, ncur-jr)
	j := jc + jr
	// A tile goes straight to C when it is whole and its columns are
	// contiguous (within one group).
	inGroup := j/g.groupCols == (j+nn-1)/g.groupCols
	b := &bp[jr*kcur]
	mm := min(mr, mcur-ir)
	i := ic + ir
	a := &ap[ir*kcur]
	if nn == nr && inGroup {
		if mm == mr {
			g.ker.fn(kcur, a, b, &g.c[g.offset(i, j)], g.ldc, flags)
			return
		}
		if g.ker.rows != nil {
			g.ker.rows[mm](kcur, a, b, &g.c[g.offset(i, j)], g.ldc, flags)
			return
		}
	}
	// The last, narrower column panel of a whole row panel: masked.
	if nn < nr && inGroup && mm == mr && g.ker.masked != nil {
		mask := uint32(1)<<nn - 1
		if 2*nn <= nr && g.ker.half != nil {
			g.ker.half(kcur, a, b, &g.c[g.offset(i, j)], g.ldc, flags, mask)
		} else {
			g.ker.masked(kcur, a, b, &g.c[g.offset(i, j)], g.ldc, flags, mask)
		}
		return
	}
	// An edge tile: compute the whole tile aside, then move the
	// part inside C column by column group.
	g.ker.fn(kcur, a, b, &tile[0], nr, 0)
	for r := range mm {
		src := tile[r*nr : r*nr+nn]
		for c := 0; c < nn; {
			run := min(nn-c, g.groupCols-(j+c)%g.groupCols)
			dst := g.c[g.offset(i+r, j+c):][:run]
			for t, v := range src[c : c+run] {
				if add {
					v += dst[t]
				}
				if flags&flagReLU != 0 {
					v = max(v, 0)
				}
				dst[t] = v
			}
			c += run
		}
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// PackedB is a k x n matrix B packed once for the micro-kernel, to be
// multiplied by many matrices A (SgemmPackedB) without packing it again:
// the centroids of a nearest-centroid search, for one. Its layout: k block
// after k block (kBlock(k) deep), each NR-wide column panel after panel.
type PackedB struct {
	data     []float32
	k, n, kc int
	nPad     int // n rounded up to whole NR-wide panels
	kernel   string
	b        []float32 // the source, for a product after the kernel changed
	ldb      int
	transB   bool
}

// PackB packs op(B), k x n (B stored n x k, row stride ldb, when transB),
// for the active micro-kernel. It copies B: later changes of b are not
// seen.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	if k < 1 || n < 1 {
		panic(fmt.Sprintf("anomnet/gemm: PackB of a %dx%d matrix", k, n))
	}
	checkLen("b", b, ldb, k, n, transB)
	ker := Active()
	nr, kc := ker.NR, kBlock(k)
	pb := &PackedB{k: k, n: n, kc: kc, nPad: roundUp(n, nr), kernel: ker.Name, ldb: ldb, transB: transB}
	if transB {
		pb.b = append([]float32(nil), b[:(n-1)*ldb+k]...)
	} else {
		pb.b = append([]float32(nil), b[:(k-1)*ldb+n]...)
	}
	pb.data = make([]float32, pb.nPad*k)
	for pc := 0; pc < k; pc += kc {
		kcur := min(kc, k-pc)
		for j := 0; j < n; j += nr {
			packMatrix(pb.data[pc*pb.nPad+j*kcur:][:nr*kcur], nr, pb.b, ldb, !transB, 1, j, min(nr, n-j), pc, kcur)
		}
	}
	return pb
}

// block returns the packed k block at pc from column jc (a multiple of NR).
func (pb *PackedB) block(pc, jc int) []float32 { return pb.data[pc*pb.nPad+jc*min(pb.kc, pb.k-pc):] }

// SgemmPackedB is Sgemm with B packed by PackB: C = alpha*op(A)*B + beta*C,
// op(A) m x k, C m x n (B's k and n), the same result bit for bit. When the
// active micro-kernel is no longer the one B was packed for, it packs B's
// copy as Sgemm does.
func SgemmPackedB(transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	if Active().Name != pb.kernel {
		Sgemm(transA, pb.transB, m, pb.n, pb.k, alpha, a, lda, pb.b, pb.ldb, beta, c, ldc)
		return
	}
	if m < 0 {
		panic(fmt.Sprintf("anomnet/gemm: negative size %dx%dx%d", m, pb.n, pb.k))
	}
	if m == 0 {
		return
	}
	checkLen("a", a, lda, m, pb.k, transA)
	checkLen("c", c, ldc, m, pb.n, false)
	if alpha == 0 {
		scaleC(c, ldc, m, pb.n, beta)
		return
	}
	g := &job{ker: Active(), m: m, n: pb.n, k: pb.k, c: c, ldc: ldc, groupCols: pb.n, overwrite: beta == 0, pre: pb}
	if beta != 0 {
		scaleC(c, ldc, m, pb.n, beta)
	}
	g.packA = func(dst []float32, i0, mm, p0, kc int) {
		packMatrix(dst, g.ker.MR, a, lda, transA, alpha, i0, mm, p0, kc)
	}
	g.run()
}
