package centroid

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/org/anomnet/internal/tensor"
)

// IndexDim is the dimension of the subspace in which an Index bounds
// distances: the GEMM of the bounds costs IndexDim/D of a brute-force
// search.
const IndexDim = 128

// Index is a Set with an exact nearest-centroid search that prunes: it
// finds the same centroid as the brute-force search (the nearest, the
// lowest index among equals) and the same distance, while measuring the
// full distance to few centroids.
//
// Every distance splits into its part in a subspace S that holds most of
// the centroids' spread (their principal axes, IndexDim of them) and the
// part orthogonal to it: |x - c|^2 = |P(x - c)|^2 + |R(x - c)|^2 >=
// |Px - Pc|^2 + (|Rx| - |Rc|)^2. The bounds of all centroids come from one
// GEMM in S; only centroids whose bound is below the best full distance
// found so far are measured in full.
type Index struct {
	*Set
	host   []float32 // the centroids, K x D, on the host
	mean   []float32 // D, the centroids' mean
	basis  []float32 // D x L, orthonormal columns
	proj   []float32 // K x L, the centred centroids in the basis
	projN  []float32 // K, |proj|^2
	cnLow  []float32 // K, (1 - 2e-5)(|proj|^2 + resid^2): the bound's centroid term, lowered for rounding
	resid  []float32 // K, the norm of each centred centroid's part outside S
	l, dim int
}

// NewIndex builds the pruning search over s's centroids (read once: the
// Index does not follow later changes of s.C). The subspace comes from a
// randomized range finder (two power iterations) seeded by rng.
func NewIndex(d tensor.Device, s *Set, rng *rand.Rand) *Index {
	k, dim := s.K(), s.D()
	host := d.ToHost(s.C).Float32s()
	ix := &Index{Set: s, host: host, dim: dim, l: min(IndexDim, dim, k)}
	ix.mean = make([]float32, dim)
	for i := range k {
		for j, v := range host[i*dim : (i+1)*dim] {
			ix.mean[j] += v / float32(k)
		}
	}
	centred := make([]float32, k*dim)
	for i := range k {
		for j := range dim {
			centred[i*dim+j] = host[i*dim+j] - ix.mean[j]
		}
	}
	ix.basis = rangeFinder(centred, k, dim, ix.l, rng)
	cpu := tensor.CPU{}
	ix.proj = make([]float32, k*ix.l)
	cpu.Gemm(false, false, 1, tensor.FromFloat32s(centred, k, dim), tensor.FromFloat32s(ix.basis, dim, ix.l), 0,
		tensor.FromFloat32s(ix.proj, k, ix.l))
	ix.projN, ix.resid = make([]float32, k), make([]float32, k)
	for i := range k {
		pn := dot32(ix.proj[i*ix.l:(i+1)*ix.l], ix.proj[i*ix.l:(i+1)*ix.l])
		ix.projN[i] = pn
		ix.resid[i] = float32(math.Sqrt(max(0, float64(dot32(centred[i*dim:(i+1)*dim], centred[i*dim:(i+1)*dim])-pn))))
	}
	ix.cnLow = make([]float32, k)
	for i := range k {
		ix.cnLow[i] = (1 - 2e-5) * (ix.projN[i] + ix.resid[i]*ix.resid[i])
	}
	return ix
}

// rangeFinder returns a dim x l matrix with orthonormal columns spanning
// (approximately) the top l principal axes of the rows of a (n x dim).
func rangeFinder(a []float32, n, dim, l int, rng *rand.Rand) []float32 {
	cpu := tensor.CPU{}
	at := tensor.FromFloat32s(a, n, dim)
	q := make([]float32, dim*l)
	for i := range q {
		q[i] = float32(rng.NormFloat64())
	}
	y := make([]float32, n*l)
	for range 3 {
		q = orthonormal(q, dim, l)
		// q <- A^T (A q): one power iteration.
		cpu.Gemm(false, false, 1, at, tensor.FromFloat32s(q, dim, l), 0, tensor.FromFloat32s(y, n, l))
		cpu.Gemm(true, false, 1, at, tensor.FromFloat32s(y, n, l), 0, tensor.FromFloat32s(q, dim, l))
	}
	return orthonormal(q, dim, l)
}

// orthonormal returns the Q of a thin QR decomposition of q (dim x l).
func orthonormal(q []float32, dim, l int) []float32 {
	m := mat.NewDense(dim, l, nil)
	for i := range dim {
		for j := range l {
			m.Set(i, j, float64(q[i*l+j]))
		}
	}
	var qr mat.QR
	qr.Factorize(m)
	var qm mat.Dense
	qr.QTo(&qm)
	out := make([]float32, dim*l)
	for i := range dim {
		for j := range l {
			out[i*l+j] = float32(qm.At(i, j))
		}
	}
	return out
}

// indexBlock is how many rows share one GEMM of bounds.
const indexBlock = 256

// Nearest implements the search of Set.Nearest with pruning: idx gets the
// nearest centroid's index, dist its Euclidean distance (float64 accuracy,
// rounded to float32); either may be nil. x is N x D on d.
//
// The pruning runs on the host. Rows on a device (a GPU's tensors) go to
// the device's own brute-force search instead, d.Nearest over the Set's
// centroids: its GEMM costs less there than copying the rows to the host
// and back, and it finds the same centroid.
func (ix *Index) Nearest(d tensor.Device, idx, dist, x *tensor.Tensor) {
	if !x.IsHost() {
		d.Nearest(idx, dist, x, ix.C)
		return
	}
	ix.nearest(d, idx, dist, x, nil, nil)
}

// NearestExcept is Nearest with some centroids left out of each row's
// search: for row r of x, every centroid j with source[j] == rows[r]. With
// source the image each centroid was taken from and rows the image of each
// feature vector, it scores training images as if their own features had
// not been chosen. A row that leaves out every centroid gets idx -1 and
// dist +Inf.
func (ix *Index) NearestExcept(d tensor.Device, idx, dist, x *tensor.Tensor, source, rows []int32) {
	if len(source) != ix.K() || len(rows) != x.Dim(0) {
		panic(fmt.Sprintf("anomnet/centroid: Index.NearestExcept: %d sources for %d centroids, %d for %d rows", len(source), ix.K(), len(rows), x.Dim(0)))
	}
	ix.nearest(d, idx, dist, x, source, rows)
}

func (ix *Index) nearest(d tensor.Device, idx, dist, x *tensor.Tensor, source, rows []int32) {
	n, dim := x.Dim(0), x.Dim(1)
	if x.Rank() != 2 || dim != ix.dim {
		panic(fmt.Sprintf("anomnet/centroid: Index.Nearest: x %v, centroids of dimension %d", x, ix.dim))
	}
	xs := d.ToHost(x).Float32s()
	// The centroids of each source, so that a row leaves out its own
	// without a pass over all K.
	var bySource map[int32][]int32
	if source != nil {
		bySource = map[int32][]int32{}
		for j, src := range source {
			bySource[src] = append(bySource[src], int32(j))
		}
	}
	is := make([]int32, n)
	ds := make([]float32, n)
	blocks := (n + indexBlock - 1) / indexBlock
	workers := min(runtime.GOMAXPROCS(0), blocks)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ix.newScratch()
			for {
				mu.Lock()
				b := next
				next++
				mu.Unlock()
				if b >= blocks {
					return
				}
				lo, hi := b*indexBlock, min((b+1)*indexBlock, n)
				var rs []int32
				if rows != nil {
					rs = rows[lo:hi]
				}
				ix.search(s, xs[lo*dim:hi*dim], is[lo:hi], ds[lo:hi], source, rs, bySource)
			}
		}()
	}
	wg.Wait()
	for _, out := range []struct{ dst, host *tensor.Tensor }{
		{idx, tensor.FromInt32s(is, n)}, {dist, tensor.FromFloat32s(ds, n)},
	} {
		if out.dst != nil {
			// Through a device copy that is freed: a GPU Device keeps
			// no garbage collector's memory.
			src := d.FromHost(out.host)
			d.Copy(out.dst, src)
			d.Free(src)
		}
	}
}

// scratch is one worker's buffers.
type scratch struct {
	xc, xp, lb []float32
	cand       []candidate
}

func (ix *Index) newScratch() *scratch {
	k := ix.K()
	return &scratch{xc: make([]float32, indexBlock*ix.dim), xp: make([]float32, indexBlock*ix.l),
		lb: make([]float32, indexBlock*k)}
}

// search finds the nearest centroid of each row of xs, leaving out for
// row i the centroids j with source[j] == rowSrc[i] (bySource[rowSrc[i]])
// when source is given.
func (ix *Index) search(s *scratch, xs []float32, is []int32, ds []float32, source, rowSrc []int32, bySource map[int32][]int32) {
	rows, dim, l, k := len(is), ix.dim, ix.l, ix.K()
	xc := s.xc[:rows*dim]
	for i := range rows {
		for j := range dim {
			xc[i*dim+j] = xs[i*dim+j] - ix.mean[j]
		}
	}
	xp, lb := s.xp[:rows*l], s.lb[:rows*k]
	cpu := tensor.CPU{}
	cpu.Gemm(false, false, 1, tensor.FromFloat32s(xc, rows, dim), tensor.FromFloat32s(ix.basis, dim, l), 0, tensor.FromFloat32s(xp, rows, l))
	cpu.Gemm(false, true, 1, tensor.FromFloat32s(xp, rows, l), tensor.FromFloat32s(ix.proj, k, l), 0, tensor.FromFloat32s(lb, rows, k))
	for i := range rows {
		xi := xs[i*dim : (i+1)*dim]
		pn := dot32(xp[i*l:(i+1)*l], xp[i*l:(i+1)*l])
		rx := float32(math.Sqrt(max(0, float64(dot32(xc[i*dim:(i+1)*dim], xc[i*dim:(i+1)*dim])-pn))))
		// The bound |x-c|^2 >= a + cn_j - 2(x'.c'_j + rx r_j), a = pn + rx^2,
		// is float32 arithmetic on norms: it may exceed the true bound by
		// a few units in the last place of a + cn_j, so the test below
		// lowers it by 2e-5 (a + cn_j). key_j holds the lowered bound less
		// (1 - 2e-5) a, the same for every centroid of the row.
		row := lb[i*k : (i+1)*k]
		a := pn + rx*rx
		for j, dot := range row {
			row[j] = ix.cnLow[j] - 2*(dot+rx*ix.resid[j])
		}
		left := func(j int) bool { return source != nil && source[j] == rowSrc[i] }
		if source != nil {
			for _, j := range bySource[rowSrc[i]] {
				row[j] = float32(math.Inf(1))
			}
		}
		// The lowest bounds first: their distances make the best distance
		// small early, so that few others pass the test. Distances are
		// measured in float32 here; those within rounding of the best are
		// measured again in float64 at the end, as the brute-force search
		// does, so that the two agree on near ties.
		var top [8]int32
		m := smallest(top[:], row)
		cand := s.cand[:0]
		best := float32(math.Inf(1))
		measure := func(j int) {
			e := sqDist32(xi, ix.host[j*dim:(j+1)*dim])
			cand = append(cand, candidate{int32(j), e})
			best = min(best, e)
		}
		for _, j := range top[:m] {
			if !left(int(j)) {
				measure(int(j))
			}
		}
		limit := best*(1+1e-4) - (1-2e-5)*a
		for j, v := range row {
			if v <= limit && !left(j) && !slices.Contains(top[:m], int32(j)) {
				measure(j)
				limit = best*(1+1e-4) - (1-2e-5)*a
			}
		}
		bi, bd := -1, math.Inf(1)
		for _, c := range cand {
			if c.d > best*(1+1e-4)+1e-30 {
				continue
			}
			j := int(c.j)
			if e := tensor.SqDist(xi, ix.host[j*dim:(j+1)*dim]); e < bd || (e == bd && j < bi) {
				bi, bd = j, e
			}
		}
		s.cand = cand
		is[i], ds[i] = int32(bi), float32(math.Sqrt(max(bd, 0)))
		if bi < 0 {
			ds[i] = float32(math.Inf(1))
		}
	}
}

// candidate is a centroid measured in float32.
type candidate struct {
	j int32
	d float32
}

// smallest sets top to the indices of the len(top) smallest keys (fewer
// when key is shorter), in ascending order of key, and returns how many.
func smallest(top []int32, key []float32) int {
	m := 0
	for j, v := range key {
		if m == len(top) && v >= key[top[m-1]] {
			continue
		}
		if m < len(top) {
			m++
		}
		p := m - 1
		for p > 0 && key[top[p-1]] > v {
			top[p] = top[p-1]
			p--
		}
		top[p] = int32(j)
	}
	return m
}

// sqDist32 is the squared Euclidean distance of a and b, summed in float32
// with four partial sums (relative error well under 1e-4 for any length
// anomnet uses).
func sqDist32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		d0, d1, d2, d3 := a[i]-b[i], a[i+1]-b[i+1], a[i+2]-b[i+2], a[i+3]-b[i+3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}
