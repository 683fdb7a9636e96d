package centroid

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/vec"
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
	host  []float32 // the centroids, K x D, on the host
	mean  []float32 // D, the centroids' mean
	basis []float32 // D x L, orthonormal columns
	// aug is K x (L + 2): each centred centroid in the basis, then the
	// norm of its part outside S, then the bound's centroid term (1 -
	// boundSlack)(|proj|^2 + resid^2), lowered for rounding. One GEMM of
	// the rows' [-2 x', -2 |Rx|, 1] with it gives every bound's key.
	aug    []float32
	l, dim int
}

// boundSlack lowers each bound by this share of |Px|^2 + |Rx|^2 + |Pc|^2 +
// |Rc|^2, which exceeds the float32 rounding of the bound's GEMM (L + 2
// products, each at most that sum) with a wide margin: a bound may then
// only be lower than the truth, and the search stays exact.
const boundSlack = 5e-5

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
	l, w := ix.l, ix.l+2
	proj := make([]float32, k*l)
	cpu.Gemm(false, false, 1, tensor.FromFloat32s(centred, k, dim), tensor.FromFloat32s(ix.basis, dim, l), 0,
		tensor.FromFloat32s(proj, k, l))
	ix.aug = make([]float32, k*w)
	for i := range k {
		p := proj[i*l : (i+1)*l]
		pn := dot32(p, p)
		resid := math.Sqrt(max(0, float64(dot32(centred[i*dim:(i+1)*dim], centred[i*dim:(i+1)*dim])-pn)))
		row := ix.aug[i*w : (i+1)*w]
		copy(row, p)
		row[l] = float32(resid)
		row[l+1] = float32((1 - boundSlack) * (float64(pn) + resid*resid))
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
	xc, xp, xa, lb []float32
	pass           []int32 // the centroids whose bound passes a test
	cand           []candidate
}

func (ix *Index) newScratch() *scratch {
	k := ix.K()
	return &scratch{xc: make([]float32, indexBlock*ix.dim), xp: make([]float32, indexBlock*ix.l),
		xa: make([]float32, indexBlock*(ix.l+2)), lb: make([]float32, indexBlock*k), pass: make([]int32, 0, k+16)}
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
	w := l + 2
	xp, xa, lb := s.xp[:rows*l], s.xa[:rows*w], s.lb[:rows*k]
	cpu := tensor.CPU{}
	cpu.Gemm(false, false, 1, tensor.FromFloat32s(xc, rows, dim), tensor.FromFloat32s(ix.basis, dim, l), 0, tensor.FromFloat32s(xp, rows, l))
	as := make([]float32, rows) // |Px|^2 + |Rx|^2 per row
	for i := range rows {
		p := xp[i*l : (i+1)*l]
		pn := dot32(p, p)
		rx := float32(math.Sqrt(max(0, float64(dot32(xc[i*dim:(i+1)*dim], xc[i*dim:(i+1)*dim])-pn))))
		as[i] = pn + rx*rx
		a := xa[i*w : (i+1)*w]
		for j, v := range p {
			a[j] = -2 * v
		}
		a[l], a[l+1] = -2*rx, 1
	}
	// key_j = (1 - slack)(|Pc_j|^2 + |Rc_j|^2) - 2(Px.Pc_j + |Rx||Rc_j|):
	// the lowered bound |x - c_j|^2 >= |Px - Pc_j|^2 + (|Rx| - |Rc_j|)^2
	// less (1 - slack)(|Px|^2 + |Rx|^2), the same for every centroid of
	// the row.
	cpu.Gemm(false, true, 1, tensor.FromFloat32s(xa, rows, w), tensor.FromFloat32s(ix.aug, k, w), 0, tensor.FromFloat32s(lb, rows, k))
	for i := range rows {
		xi := xs[i*dim : (i+1)*dim]
		key := lb[i*k : (i+1)*k]
		if source != nil {
			for _, j := range bySource[rowSrc[i]] {
				key[j] = float32(math.Inf(1))
			}
		}
		// The centroid of the lowest bound is measured first: its
		// distance is the first best. Then every centroid whose bound
		// passes the best is measured, lowest bound first, until the
		// bounds exceed the best found so far. Distances are measured in
		// float32 here; those within rounding of the best are measured
		// again in float64 at the end, as the brute-force search does,
		// so that the two agree on near ties.
		bi, bd := -1, math.Inf(1)
		lowest := vec.Min(key)
		if !math.IsInf(float64(lowest), 1) {
			low := (1 - boundSlack) * as[i]
			s.pass = vec.FilterLE(key, lowest, s.pass)
			if len(s.pass) == 0 { // NaN bounds (a NaN feature): the first centroid not left out
				for j, v := range key {
					if !math.IsInf(float64(v), 1) {
						s.pass = append(s.pass, int32(j))
						break
					}
				}
			}
			first := s.pass[0]
			best := vec.SqDist(xi, ix.host[int(first)*dim:(int(first)+1)*dim])
			cand := append(s.cand[:0], candidate{first, best})
			s.pass = vec.FilterLE(key, best*(1+1e-4)-low, s.pass)
			slices.SortFunc(s.pass, func(a, b int32) int { return cmp.Compare(key[a], key[b]) })
			for _, j := range s.pass {
				if key[j] > best*(1+1e-4)-low {
					break
				}
				if j == first {
					continue
				}
				e := vec.SqDist(xi, ix.host[int(j)*dim:(int(j)+1)*dim])
				cand = append(cand, candidate{j, e})
				best = min(best, e)
			}
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
		}
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
