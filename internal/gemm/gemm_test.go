package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// refGemm is C = alpha*op(A)*op(B) + beta*C in float64, with the scale
// sum |alpha a b| + |beta c| per element for the tolerance.
func refGemm(tA, tB bool, m, n, k int, alpha float64, a []float32, lda int, b []float32, ldb int, beta float64, c []float32, ldc int) (want, scale []float64) {
	want, scale = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, sa float64
			for p := range k {
				var av, bv float32
				if tA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
				sa += math.Abs(float64(av) * float64(bv))
			}
			old := 0.0
			if beta != 0 {
				old = float64(c[i*ldc+j])
			}
			want[i*n+j] = alpha*s + beta*old
			scale[i*n+j] = math.Abs(alpha)*sa + math.Abs(beta*old)
		}
	}
	return want, scale
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// withKernel runs f with each kernel this machine has in turn.
func withKernel(t *testing.T, f func(t *testing.T)) {
	saved := Active()
	defer func() { active = saved }()
	for _, k := range Kernels() {
		t.Run(k.Name, func(t *testing.T) {
			if err := Use(k.Name); err != nil {
				t.Fatal(err)
			}
			f(t)
		})
	}
}

// TestNBlock: column blocks are whole panels, at most 5/4 ncBlock wide,
// and a product a little wider than one block is not split into a block
// and a sliver (up to four blocks, the last is at least half a block).
func TestNBlock(t *testing.T) {
	for _, nr := range []int{4, 16, 32} {
		for n := 1; n <= 4*ncBlock; n++ {
			nc := nBlock(n, nr)
			blocks := (n + nc - 1) / nc
			last := n - (blocks-1)*nc
			if nc%nr != 0 || nc > roundUp(ncBlock*5/4, nr) || (blocks > 1 && 2*last < nc) || (n <= ncBlock*5/4 && blocks != 1) {
				t.Fatalf("nBlock(%d, %d) = %d: %d blocks, the last %d wide", n, nr, nc, blocks, last)
			}
		}
	}
}

func TestSgemmMatchesReference(t *testing.T) {
	t.Logf("kernels on this machine: %v", names())
	// Sizes around every kernel's tile (4, 6, 12 rows; 4, 16, 32 columns)
	// and the cache blocks (kc 256, mc 192), plus degenerate ones.
	sizes := [][3]int{
		{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 5, 0}, {12, 32, 1}, {13, 33, 17}, {11, 31, 64},
		{6, 16, 5}, {7, 17, 300}, {24, 64, 257}, {193, 45, 70}, {50, 97, 513}, {200, 300, 260},
		// Wide enough for the column split (8 panels per worker).
		{13, 1100, 70}, {197, 530, 270}, {5, 4099, 3},
		// One column block wider than ncBlock (nBlock), alone and per
		// worker of the column split.
		{9, 900, 20}, {13, 1900, 30},
	}
	withKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, uint64(len(Active().Name))))
		for _, sz := range sizes {
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {-2, 0.25}} {
					m, n, k := sz[0], sz[1], sz[2]
					name := fmt.Sprintf("m=%d,n=%d,k=%d,tA=%v,tB=%v,alpha=%g,beta=%g", m, n, k, tr[0], tr[1], ab[0], ab[1])
					// Strides larger than the rows, to catch stride mix-ups.
					lda, ldb, ldc := k+3, n+2, n+5
					ar, br := m, k
					if tr[0] {
						lda, ar = m+3, k
					}
					if tr[1] {
						ldb, br = k+2, n
					}
					a := randSlice(r, ar*lda)
					b := randSlice(r, br*ldb)
					c := randSlice(r, m*ldc)
					if ab[1] == 0 {
						for i := range c {
							c[i] = float32(math.NaN()) // must be ignored
						}
					}
					want, scale := refGemm(tr[0], tr[1], m, n, k, float64(ab[0]), a, lda, b, ldb, float64(ab[1]), c, ldc)
					guard := append([]float32(nil), c...)
					Sgemm(tr[0], tr[1], m, n, k, ab[0], a, lda, b, ldb, ab[1], c, ldc)
					for i := range m {
						for j := range ldc {
							got := c[i*ldc+j]
							if j >= n { // between rows: untouched
								if math.Float32bits(got) != math.Float32bits(guard[i*ldc+j]) {
									t.Fatalf("%s: wrote C[%d][%d] outside the matrix", name, i, j)
								}
								continue
							}
							if e := math.Abs(float64(got) - want[i*n+j]); !(e <= 1e-6+2e-6*scale[i*n+j]) {
								t.Fatalf("%s: C[%d][%d] = %g, want %g (error %.3g, scale %.3g)", name, i, j, got, want[i*n+j], e, scale[i*n+j])
							}
						}
					}
				}
			}
		}
	})
}

func TestSgemmConcurrentCalls(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 70, 90, 110
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	want := make([]float32, m*n)
	Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := make([]float32, m*n)
			Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
			for i := range c {
				if c[i] != want[i] {
					t.Errorf("concurrent call differs at %d", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSgemmPanics(t *testing.T) {
	for _, f := range []func(){
		func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		},
		func() {
			Sgemm(false, false, 2, 2, 2, 1, make([]float32, 4), 1, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		},
		func() { Sgemm(false, false, -1, 2, 2, 1, nil, 2, nil, 2, 0, nil, 2) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic for a bad argument")
				}
			}()
			f()
		}()
	}
	if err := Use("nope"); err == nil {
		t.Error("Use of an unknown kernel succeeded")
	}
}

// BenchmarkSgemm reports GFLOP/s per kernel at the adapter's shape and a
// square one.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range Kernels() {
		for _, sz := range [][3]int{{1536, 784, 1538}, {1024, 1024, 1024}, {256, 3136, 64}, {64, 3136, 256}} {
			m, n, kk := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/M=%d,N=%d,K=%d", k.Name, m, n, kk), func(b *testing.B) {
				saved := Active()
				defer func() { active = saved }()
				Use(k.Name)
				a, bb, c := randSlice(r, m*kk), randSlice(r, kk*n), make([]float32, m*n)
				for b.Loop() {
					Sgemm(false, false, m, n, kk, 1, a, kk, bb, n, 0, c, n)
				}
				b.ReportMetric(2*float64(m*n*kk)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkFMAPeak measures the FMA loop alone, one goroutine per core: the
// ceiling the GEMM is measured against.
func BenchmarkFMAPeak(b *testing.B) {
	for _, c := range fmaLoops() {
		for _, procs := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", c.name, procs), func(b *testing.B) {
				const iters = 1 << 20
				for b.Loop() {
					onCores(procs, func() { c.loop(iters) })
				}
				b.ReportMetric(float64(procs)*c.flopsPerIter*iters*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkKernel runs each micro-kernel alone on panels that stay in the
// L1 cache (kc = 256): its own speed, to set beside BenchmarkFMAPeak.
func BenchmarkKernel(b *testing.B) {
	const kc = 256
	for _, k := range Kernels() {
		b.Run(k.Name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			a, bp := randSlice(r, k.MR*kc), randSlice(r, k.NR*kc)
			c := make([]float32, k.MR*k.NR)
			for b.Loop() {
				k.fn(kc, &a[0], &bp[0], &c[0], k.NR, 0)
			}
			b.ReportMetric(2*float64(k.MR*k.NR*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmVsPeak alternates, in every iteration, one Sgemm with the
// kernel of the same name and the FMA loop alone on every core for about
// as long, and reports both rates and their ratio: on a machine whose
// speed drifts (a shared VM), back-to-back timing is the fair comparison.
func BenchmarkGemmVsPeak(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	for _, l := range fmaLoops() {
		for _, sz := range [][3]int{{1536, 784, 1538}, {1024, 1024, 1024}} {
			m, n, kk := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/M=%d,N=%d,K=%d", l.name, m, n, kk), func(b *testing.B) {
				saved := Active()
				defer func() { active = saved }()
				if err := Use(l.name); err != nil {
					b.Skip(err)
				}
				r := rand.New(rand.NewPCG(1, 2))
				a, bb, c := randSlice(r, m*kk), randSlice(r, kk*n), make([]float32, m*n)
				flops := 2 * float64(m*n*kk)
				iters := int(flops / float64(procs) / l.flopsPerIter)
				var tg, tp time.Duration
				for b.Loop() {
					t0 := time.Now()
					Sgemm(false, false, m, n, kk, 1, a, kk, bb, n, 0, c, n)
					t1 := time.Now()
					onCores(procs, func() { l.loop(iters) })
					tg, tp = tg+t1.Sub(t0), tp+time.Since(t1)
				}
				peakFlops := float64(procs) * float64(iters) * l.flopsPerIter
				gemm := flops * float64(b.N) / tg.Seconds() / 1e9
				peak := peakFlops * float64(b.N) / tp.Seconds() / 1e9
				b.ReportMetric(gemm, "GEMM-GFLOP/s")
				b.ReportMetric(peak, "peak-GFLOP/s")
				b.ReportMetric(100*gemm/peak, "%peak")
			})
		}
	}
}

// TestRowKernels: products whose last row panel has each possible number
// of rows (1 to MR-1), over whole column panels, so that the row kernels
// of the AVX-512 path store straight into C; with and without adding C,
// against the float64 reference.
func TestRowKernels(t *testing.T) {
	withKernel(t, func(t *testing.T) {
		mr := Active().MR
		r := rand.New(rand.NewPCG(3, uint64(mr)))
		for rows := 1; rows < mr; rows++ {
			m, n, k := mr+rows, 2*Active().NR, 37
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			c := randSlice(r, m*n)
			c0 := append([]float32(nil), c...)
			Sgemm(false, false, m, n, k, 1, a, k, b, n, 1, c, n)
			want, scale := refGemm(false, false, m, n, k, 1, a, k, b, n, 1, c0, n)
			for i := range want {
				if d := math.Abs(float64(c[i]) - want[i]); d > float64(k+2)*0x1p-23*scale[i] {
					t.Fatalf("%d rows over %d: c[%d] = %g, want %g", rows, mr, i, c[i], want[i])
				}
			}
			// The rows below m must be untouched: C is exactly m x n here,
			// so write a guard row after it.
			guarded := make([]float32, (m+1)*n)
			for i := range guarded {
				guarded[i] = -7
			}
			Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, guarded[:m*n], n)
			for i := m * n; i < len(guarded); i++ {
				if guarded[i] != -7 {
					t.Fatalf("%d rows over %d: the row after C was written", rows, mr)
				}
			}
		}
	})
}

// TestMaskedKernels: products whose last column panel has each possible
// width (1 to NR-1) over whole row panels, so that the masked kernels of
// the AVX-512 path (half for up to NR/2 columns) store straight into C:
// adding C, overwriting it, and with bias and ReLU through a 1x1 Conv2D
// whose maps are that wide, against the float64 references. C has padding
// columns and a row after it holding guard values, which must survive.
func TestMaskedKernels(t *testing.T) {
	withKernel(t, func(t *testing.T) {
		mr, nr := Active().MR, Active().NR
		r := rand.New(rand.NewPCG(5, uint64(nr)))
		const guard = -7
		for cols := 1; cols < nr; cols++ {
			m, n, k := 2*mr, nr+cols, 37
			ldc := n + 3
			a, b := randSlice(r, m*k), randSlice(r, k*n)
			for _, beta := range []float32{1, 0} {
				c := make([]float32, (m+1)*ldc)
				for i := range c {
					c[i] = guard
				}
				for i := range m {
					copy(c[i*ldc:i*ldc+n], randSlice(r, n))
				}
				c0 := append([]float32(nil), c...)
				Sgemm(false, false, m, n, k, 1, a, k, b, n, beta, c[:m*ldc], ldc)
				want, scale := refGemm(false, false, m, n, k, 1, a, k, b, n, float64(beta), c0, ldc)
				for i := range m {
					for j := range ldc {
						got := c[i*ldc+j]
						if j >= n {
							if got != guard {
								t.Fatalf("%d columns over %d, beta %g: padding c[%d][%d] = %g, was %d", cols, nr, beta, i, j, got, guard)
							}
							continue
						}
						if d := math.Abs(float64(got) - want[i*n+j]); d > float64(k+2)*0x1p-23*scale[i*n+j] {
							t.Fatalf("%d columns over %d, beta %g: c[%d][%d] = %g, want %g", cols, nr, beta, i, j, got, want[i*n+j])
						}
					}
				}
				for j := range ldc {
					if c[m*ldc+j] != guard {
						t.Fatalf("%d columns over %d, beta %g: the row after C was written", cols, nr, beta)
					}
				}
			}
			// A 1x1 convolution over 1 x n maps: bias and ReLU on the
			// masked store, the columns of each image a group of its own.
			g := ConvGeom{N: 2, C: k, H: 1, W: n, O: m, KH: 1, KW: 1, StrideH: 1, StrideW: 1, OH: 1, OW: n}
			x, bias := randSlice(r, g.N*k*n), randSlice(r, m)
			y := randSlice(r, g.N*m*n)
			y0 := append([]float32(nil), y...)
			Conv2D(y, x, a, bias, g, true, true)
			want, scale := refConv(g, y0, x, a, bias, true, true)
			for i := range want {
				if d := math.Abs(float64(y[i]) - want[i]); d > float64(k+3)*0x1p-23*scale[i] {
					t.Fatalf("%d columns over %d: conv y[%d] = %g, want %g", cols, nr, i, y[i], want[i])
				}
			}
		}
	})
}

// TestSgemmPackedB: a product with B packed once gives Sgemm's result bit
// for bit, with every kernel, for shapes that take the row split and the
// column split, both storage orders of A and B, beta 0 and not, a B reused
// for several A; and after the kernel changed, it still does.
func TestSgemmPackedB(t *testing.T) {
	sizes := [][3]int{{1, 1, 1}, {13, 33, 17}, {7, 17, 300}, {193, 45, 70}, {200, 300, 260}, {13, 1100, 70}, {256, 512, 66}, {5, 4099, 3}}
	withKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, uint64(len(Active().Name))))
		for _, sz := range sizes {
			m, n, k := sz[0], sz[1], sz[2]
			for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				ldb := n
				if tr[1] {
					ldb = k
				}
				b := randSlice(r, k*n)
				pb := PackB(tr[1], k, n, b, ldb)
				for _, beta := range []float32{0, 0.5} {
					a := randSlice(r, m*k)
					lda := k
					if tr[0] {
						lda = m
					}
					c0 := randSlice(r, m*n)
					want := append([]float32(nil), c0...)
					Sgemm(tr[0], tr[1], m, n, k, 1.5, a, lda, b, ldb, beta, want, n)
					got := append([]float32(nil), c0...)
					SgemmPackedB(tr[0], m, 1.5, a, lda, pb, beta, got, n)
					if !slices.Equal(want, got) {
						t.Fatalf("%v trans %v beta %g: the packed product differs", sz, tr, beta)
					}
				}
			}
		}
	})
	// Packed for one kernel, multiplied under another: the copy of B is
	// packed again, the result still Sgemm's.
	ks := Kernels()
	if len(ks) < 2 {
		t.Skip("one kernel on this machine")
	}
	saved := Active()
	defer func() { active = saved }()
	r := rand.New(rand.NewPCG(8, 8))
	m, n, k := 30, 70, 40
	b := randSlice(r, k*n)
	must(t, Use(ks[0].Name))
	pb := PackB(false, k, n, b, n)
	must(t, Use(ks[len(ks)-1].Name))
	a := randSlice(r, m*k)
	want, got := make([]float32, m*n), make([]float32, m*n)
	Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
	b[0] = 1e6 // PackB copied B
	SgemmPackedB(false, m, 1, a, k, pb, 0, got, n)
	if !slices.Equal(want, got) {
		t.Fatal("after the kernel changed the packed product differs")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
