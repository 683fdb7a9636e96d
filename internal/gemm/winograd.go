package gemm

import (
	"hash/maphash"
	"math"
	"sync"
	"unsafe"

	"github.com/org/anomnet/internal/parallel"
)

// Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast
// Algorithms for Convolutional Neural Networks", CVPR 2016) computes each
// 2x2 block of a 3x3, stride-1 convolution's output from the 4x4 block of
// input under it with 16 multiplications per channel pair instead of 36:
//
//	Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//
// with g the 3x3 filter, d the 4x4 input tile and
//
//	Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//	G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//	Aᵀ = [1 1 1 0; 0 1 -1 -1]
//
// Summed over the input channels, the 16 element-wise products become 16
// matrix products, one per position ξ of the 4x4 transformed tile:
// M[ξ] (O x tiles) = U[ξ] (O x C) * V[ξ] (C x tiles), which run on the
// micro-kernel. The transforms are additions and halvings only, so the
// result differs from the direct convolution by a few roundings.

// winogradMinChannels is the fewest input and output channels for which
// Conv2D takes the Winograd path: below it the transforms cost more than
// the multiplications they save.
const winogradMinChannels = 16

// winogradChunkFloats bounds the transformed input and the products of
// one chunk of tiles (16 x (C + O) x tiles floats), which a worker keeps
// in its cache between the transforms and the products.
const winogradChunkFloats = 1 << 20

// useWinograd says whether Conv2D computes g by winogradConv.
func useWinograd(g ConvGeom) bool {
	return winogradEnabled && g.KH == 3 && g.KW == 3 && g.StrideH == 1 && g.StrideW == 1 &&
		g.C >= winogradMinChannels && g.O >= winogradMinChannels && g.OH >= 2 && g.OW >= 2
}

// winogradEnabled lets tests compare the Winograd path with the direct one.
var winogradEnabled = true

// planePad separates the 16 matrices of a transform by one cache line
// more than their size: at a multiple of 4 KiB apart, the 16 streams that
// a transform reads or writes at once would share one set of the L1
// cache.
const planePad = 16

// winogradWeights returns U (from getScratch): the 16 transformed filter
// matrices G g Gᵀ, each O x C, matrix ξ = 4i+j at u[ξ*(O*C+planePad):].
func winogradWeights(w []float32, o, c, workers int) []float32 {
	oc := o*c + planePad
	u := getScratch(16 * oc)
	parallel.For(workers, o, func(_, lo, hi int) {
		for f := lo * c; f < hi*c; f++ {
			k := w[f*9 : f*9+9 : f*9+9]
			// t = G g: 4 x 3.
			var t [4][3]float32
			for j := range 3 {
				k0, k1, k2 := k[j], k[3+j], k[6+j]
				t[0][j] = k0
				t[1][j] = 0.5 * (k0 + k1 + k2)
				t[2][j] = 0.5 * (k0 - k1 + k2)
				t[3][j] = k2
			}
			// U = t Gᵀ: 4 x 4.
			for i := range 4 {
				r0, r1, r2 := t[i][0], t[i][1], t[i][2]
				u[(4*i+0)*oc+f] = r0
				u[(4*i+1)*oc+f] = 0.5 * (r0 + r1 + r2)
				u[(4*i+2)*oc+f] = 0.5 * (r0 - r1 + r2)
				u[(4*i+3)*oc+f] = r2
			}
		}
	})
	return u
}

// winogradConv is Conv2D for a 3x3, stride-1 convolution (any padding) by
// F(2x2, 3x3). The tiles of the whole batch are cut into chunks; each
// worker transforms a chunk's input, multiplies it by the 16 filter
// matrices (packed once, shared) and transforms the products into y, so
// that a chunk's intermediate values stay in its cache.
func winogradConv(y, x, w, bias []float32, g ConvGeom, accumulate, relu bool, workers int) {
	ker := Active()
	c, o := g.C, g.O
	pas := winogradFilters(w, o, c, ker, workers)
	th, tw := (g.OH+1)/2, (g.OW+1)/2
	tiles := g.N * th * tw
	// Each worker takes an equal share of the tiles, in chunks of whole
	// panels small enough for its cache.
	workers = min(workers, tiles)
	chunk := max(ker.NR, winogradChunkFloats/(16*(c+o))/ker.NR*ker.NR)
	chunk = min(chunk, roundUp((tiles+workers-1)/workers, ker.NR))
	parallel.For(workers, workers, func(worker, _, _ int) {
		v := getScratch(16 * (c*chunk + planePad))
		// Padding lets the vector loops run over the end of a run: they
		// read (never write) up to 15 values past a row of m or a scratch
		// row.
		m := getScratch(16*(o*chunk+planePad) + 16)
		bpack := getScratch(roundUp(chunk, ker.NR) * kBlock(c))
		tile := getScratch(ker.MR * ker.NR)
		scratch := getScratch(4*(2*tw+2) + 32 + g.W)
		defer func() {
			for _, b := range [][]float32{v, m, bpack, tile, scratch} {
				putScratch(b)
			}
		}()
		end := (worker + 1) * tiles / workers
		for t0 := worker * tiles / workers; t0 < end; t0 += chunk {
			n := min(chunk, end-t0)
			g.winogradInput(v, x, t0, n, chunk, th, tw, scratch)
			for xi := range 16 {
				vx := v[xi*(c*chunk+planePad):][:c*chunk]
				j := &job{ker: ker, m: o, n: n, k: c, c: m[xi*(o*chunk+planePad):], ldc: chunk, groupCols: n, overwrite: true}
				j.packB = func(dst []float32, p0, kc, j0, nn int) {
					packMatrix(dst, ker.NR, vx, chunk, true, 1, j0, nn, p0, kc)
				}
				j.columns(pas[xi], 0, n, bpack, tile)
			}
			g.winogradOutput(y, m, bias, t0, n, chunk, th, tw, accumulate, relu)
		}
	})
}

// winogradFilters returns the 16 transformed filter matrices of w, packed
// for ker. A backbone's weights do not change between calls, so the result
// is remembered by the weights' address, size and contents (a 64-bit hash
// of them: weights changed in place are transformed again), up to
// filterCacheBytes of packed filters, the least recently used dropped
// first.
func winogradFilters(w []float32, o, c int, ker Kernel, workers int) *[16]packedA {
	key := filterKey{w: uintptr(unsafe.Pointer(&w[0])), n: o * c * 9, ker: ker.Name, o: o}
	sum := maphash.Bytes(filterSeed, unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), 4*o*c*9))
	fc := &filterCache
	fc.Lock()
	if e := fc.entries[key]; e != nil && e.sum == sum {
		fc.tick++
		e.used = fc.tick
		fc.Unlock()
		return &e.pas
	}
	fc.Unlock()

	u := winogradWeights(w, o, c, workers)
	defer putScratch(u)
	e := &filterEntry{sum: sum}
	for xi := range 16 {
		j := &job{ker: ker, m: o, k: c}
		ux := u[xi*(o*c+planePad):][:o*c]
		j.packA = func(dst []float32, i0, mm, p0, kc int) { packMatrix(dst, ker.MR, ux, c, false, 1, i0, mm, p0, kc) }
		e.pas[xi] = j.prepackA(workers)
		e.bytes += 4 * len(e.pas[xi].data)
	}

	fc.Lock()
	defer fc.Unlock()
	if fc.entries == nil {
		fc.entries = map[filterKey]*filterEntry{}
	}
	if old := fc.entries[key]; old != nil {
		fc.bytes -= old.bytes
	}
	fc.tick++
	e.used = fc.tick
	fc.entries[key] = e
	fc.bytes += e.bytes
	for fc.bytes > filterCacheBytes && len(fc.entries) > 1 {
		var lru filterKey
		oldest := uint64(math.MaxUint64)
		for k, v := range fc.entries {
			if v.used < oldest {
				lru, oldest = k, v.used
			}
		}
		fc.bytes -= fc.entries[lru].bytes
		delete(fc.entries, lru)
	}
	return &e.pas
}

// filterCacheBytes bounds the packed filters winogradFilters keeps: ample
// for a ResNet-50's 3x3 layers (about 30 MB).
const filterCacheBytes = 256 << 20

// filterKey is where the weights are (an address, which does not keep
// them alive: memory reused for other weights has another hash).
type filterKey struct {
	w    uintptr
	n, o int
	ker  string
}

type filterEntry struct {
	sum   uint64
	pas   [16]packedA
	bytes int
	used  uint64
}

var (
	filterSeed  = maphash.MakeSeed()
	filterCache struct {
		sync.Mutex
		entries map[filterKey]*filterEntry
		bytes   int
		tick    uint64
	}
)

// winogradInput writes Bᵀ d B for tiles [t0, t0+n) of the batch (tile t:
// image t/(th*tw), tile row and column of t%(th*tw)) into v: value ξ of
// channel ch and tile t0+p at v[ξ*(C*ld+planePad)+ch*ld+p]. Taps outside the input are
// zeros (the padding). A run of tiles along a tile row is done at once:
// first the row combinations Bᵀ d along the run's input columns, then the
// column combinations per tile. scratch holds at least 4*(2*tw+2) + 32 + W
// floats (32 for the vector loops to read past a row).
func (g *ConvGeom) winogradInput(v, x []float32, t0, n, ld, th, tw int, scratch []float32) {
	hw := g.H * g.W
	plane := g.C*ld + planePad
	zero := scratch[:g.W]
	clear(zero)
	scratch = scratch[g.W:]
	for p := 0; p < n; {
		t := t0 + p
		img, r := t/(th*tw), t%(th*tw)
		ty, tx0 := r/tw, r%tw
		run := min(n-p, tw-tx0)
		iy, ix0 := 2*ty-g.PadH, 2*tx0-g.PadW
		l := 2*run + 2
		lo, hi := max(0, -ix0), min(l, g.W-ix0) // input columns inside the map
		hi = max(hi, lo)
		b0, b1, b2, b3 := scratch[:l], scratch[l:2*l], scratch[2*l:3*l], scratch[3*l:4*l]
		for _, b := range [4][]float32{b0, b1, b2, b3} {
			clear(b[:lo])
			clear(b[hi:])
		}
		for ch := range g.C {
			src := x[(img*g.C+ch)*hw:][:hw]
			var rows [4][]float32
			for i := range rows {
				rows[i] = zero
				if yy := iy + i; uint(yy) < uint(g.H) {
					rows[i] = src[yy*g.W : (yy+1)*g.W]
				}
			}
			if hi > lo {
				winoRows(b0[lo:hi], b1[lo:hi], b2[lo:hi], b3[lo:hi],
					rows[0][ix0+lo:ix0+hi], rows[1][ix0+lo:ix0+hi], rows[2][ix0+lo:ix0+hi], rows[3][ix0+lo:ix0+hi])
			}
			winoCols4(v[ch*ld+p:], plane, scratch, l, run)
		}
		p += run
	}
}

// winogradOutput turns the products for tiles [t0, t0+n) (value ξ of
// output channel oc and tile t0+p at m[ξ*(O*ld+planePad)+oc*ld+p]) into y by Aᵀ M A,
// adding the bias (or nothing, if nil) and y's old values if accumulate,
// then clamping at 0 if relu. Tiles over the output's edge are cropped.
func (g *ConvGeom) winogradOutput(y, m, bias []float32, t0, n, ld, th, tw int, accumulate, relu bool) {
	ohw := g.OH * g.OW
	plane := g.O*ld + planePad
	var flags uint8
	if accumulate {
		flags |= flagAdd
	}
	if relu {
		flags |= flagReLU
	}
	for p := 0; p < n; {
		t := t0 + p
		img, r := t/(th*tw), t%(th*tw)
		ty, tx0 := r/tw, r%tw
		run := min(n-p, tw-tx0)
		oy, ox0 := 2*ty, 2*tx0
		rows := min(2, g.OH-oy)
		cols := min(2*run, g.OW-ox0) // the last tile of a row may be cropped
		// Tiles [0, whole) of the run are 2x2 inside the output.
		whole := 0
		if rows == 2 {
			whole = cols / 2
		}
		for oc := range g.O {
			var b float32
			if bias != nil {
				b = bias[oc]
			}
			dst := y[(img*g.O+oc)*ohw:][:ohw]
			out0 := dst[oy*g.OW+ox0:][:cols]
			var out1 []float32
			if rows == 2 {
				out1 = dst[(oy+1)*g.OW+ox0:][:cols]
			}
			if whole > 0 {
				winoOut(out0[:2*whole], out1[:2*whole], m[oc*ld+p:], plane, b, flags)
			}
			// Tiles cropped by the output's edge: computed whole aside
			// (with the old values where accumulating), the part inside
			// the output copied in.
			for j := whole; j < run; j++ {
				var t0, t1 [2]float32
				at := 2 * j
				for k := range 2 {
					if at+k < cols {
						t0[k] = out0[at+k]
						if rows == 2 {
							t1[k] = out1[at+k]
						}
					}
				}
				winoOutGo(t0[:], t1[:], m[oc*ld+p+j:], plane, b, flags)
				for k := range 2 {
					if at+k < cols {
						out0[at+k] = t0[k]
						if rows == 2 {
							out1[at+k] = t1[k]
						}
					}
				}
			}
		}
		p += run
	}
}

// The transforms' inner loops, in Go; wino_amd64.go may replace them with
// AVX-512 versions.
var (
	winoRows  = winoRowsGo
	winoCols4 = winoCols4Go
	winoOut   = winoOutGo
)

// winoRowsGo sets, for every q, c0 = d0 - d2, c1 = d1 + d2, c2 = d2 - d1 and
// c3 = d1 - d3 (rows of Bᵀ d along a run of input columns). All slices
// have the length of c0.
func winoRowsGo(c0, c1, c2, c3, d0, d1, d2, d3 []float32) {
	if len(c0) == 0 {
		return
	}
	c1, c2, c3 = c1[:len(c0)], c2[:len(c0)], c3[:len(c0)]
	d0, d1, d2, d3 = d0[:len(c0)], d1[:len(c0)], d2[:len(c0)], d3[:len(c0)]
	for q := range c0 {
		c0[q] = d0[q] - d2[q]
		c1[q] = d1[q] + d2[q]
		c2[q] = d2[q] - d1[q]
		c3[q] = d1[q] - d3[q]
	}
}

// winoColsGo sets, for every tile k of a run (columns 2k to 2k+3 of b, a
// row of Bᵀ d), o0 = b[2k] - b[2k+2], o1 = b[2k+1] + b[2k+2],
// o2 = b[2k+2] - b[2k+1] and o3 = b[2k+1] - b[2k+3]. b holds at least
// 2*len(o0)+2 values.
func winoColsGo(o0, o1, o2, o3, b []float32) {
	if len(o0) == 0 {
		return
	}
	o1, o2, o3 = o1[:len(o0)], o2[:len(o0)], o3[:len(o0)]
	b = b[:2*len(o0)+2]
	for k := range o0 {
		q := b[2*k : 2*k+4 : 2*k+4]
		o0[k] = q[0] - q[2]
		o1[k] = q[1] + q[2]
		o2[k] = q[2] - q[1]
		o3[k] = q[1] - q[3]
	}
}

// winoCols4Go does winoColsGo for the four rows of Bᵀ d of a run, row i
// at b[i*lb:], into the 16 values of each of n tiles: value ξ of tile k at
// v[ξ*plane+k].
func winoCols4Go(v []float32, plane int, b []float32, lb, n int) {
	for i := range 4 {
		winoColsGo(v[(4*i)*plane:][:n], v[(4*i+1)*plane:][:n], v[(4*i+2)*plane:][:n], v[(4*i+3)*plane:][:n], b[i*lb:][:2*n+2])
	}
}

// winoOutGo turns the products of len(out0)/2 whole tiles along an output
// row into their 2x2 outputs: value ξ of tile j is m[ξ*stride+j]; tile j
// writes out0[2j], out0[2j+1] (its top row) and out1[2j], out1[2j+1],
// adding bias, then the old value if flags has flagAdd, then clamping at
// 0 if it has flagReLU.
func winoOutGo(out0, out1, m []float32, stride int, bias float32, flags uint8) {
	n := len(out0) / 2
	if n == 0 {
		return
	}
	out1 = out1[:2*n]
	var ms [16][]float32
	for xi := range ms {
		ms[xi] = m[xi*stride:][:n]
	}
	m0, m1, m2, m3 := ms[0], ms[1][:n], ms[2][:n], ms[3][:n]
	m4, m5, m6, m7 := ms[4][:n], ms[5][:n], ms[6][:n], ms[7][:n]
	m8, m9, m10, m11 := ms[8][:n], ms[9][:n], ms[10][:n], ms[11][:n]
	m12, m13, m14, m15 := ms[12][:n], ms[13][:n], ms[14][:n], ms[15][:n]
	for j := range m0 {
		// Rows of Aᵀ M, then their columns times A.
		a0, a1, a2, a3 := m0[j]+m4[j]+m8[j], m1[j]+m5[j]+m9[j], m2[j]+m6[j]+m10[j], m3[j]+m7[j]+m11[j]
		c0, c1, c2, c3 := m4[j]-m8[j]-m12[j], m5[j]-m9[j]-m13[j], m6[j]-m10[j]-m14[j], m7[j]-m11[j]-m15[j]
		v00, v01 := a0+a1+a2+bias, a1-a2-a3+bias
		v10, v11 := c0+c1+c2+bias, c1-c2-c3+bias
		o0 := out0[2*j : 2*j+2 : 2*j+2]
		o1 := out1[2*j : 2*j+2 : 2*j+2]
		if flags&flagAdd != 0 {
			v00 += o0[0]
			v01 += o0[1]
			v10 += o1[0]
			v11 += o1[1]
		}
		if flags&flagReLU != 0 {
			v00, v01, v10, v11 = max(v00, 0), max(v01, 0), max(v10, 0), max(v11, 0)
		}
		o0[0], o0[1], o1[0], o1[1] = v00, v01, v10, v11
	}
}
