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

	"github.com/org/anomnet/internal/gemm"
	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/vec"
)

// IndexDim is the dimension of the subspace S in which an Index bounds
// distances before it measures them in full. A larger S prunes more full
// distances and costs more per bound: on kolektor's full-input model the
// search ran fastest at 192 of 128 to 256 (docs/RESULTS.md, eighth round).
const IndexDim = 192

// IndexCoarse is the dimension of the first, coarse bounds: the leading
// principal axes of the subspace, one GEMM over all centroids, IndexCoarse
// + 2 products per centroid. Only the centroids that pass them get the
// bound in all IndexDim dimensions (IndexDim - IndexCoarse + 2 more
// products). 64 was fastest of 32 to 96.
const IndexCoarse = 64

// Index is a Set with an exact nearest-centroid search that prunes: it
// finds the same centroid as the brute-force search (the nearest, the
// lowest index among equals) and the same distance, while measuring the
// full distance to few centroids.
//
// Every distance splits into its part in a subspace S that holds most of
// the centroids' spread (their principal axes, IndexDim of them) and the
// part orthogonal to it: |x - c|^2 = |P(x - c)|^2 + |R(x - c)|^2 >=
// |Px - Pc|^2 + (|Rx| - |Rc|)^2. The same holds in the subspace S1 of
// S's IndexCoarse leading axes, with a looser bound. The coarse bounds of
// all centroids come from one GEMM in S1; the centroids whose coarse
// bound is below the best distance found so far get the bound in S, and
// those whose bound in S is below it too are measured in full.
type Index struct {
	*Set
	host  []float32 // the centroids, K x D, on the host
	mean  []float32 // D, the centroids' mean
	basis []float32 // D x L, orthonormal columns
	// aug is K x (L + 2): each centred centroid in the basis, then the
	// norm of its part outside S, then the bound's centroid term (1 -
	// boundSlack)(|proj|^2 + resid^2), lowered for rounding. One GEMM of
	// the rows' [-2 x', -2 |Rx|, 1] with it gives every bound's key.
	aug []float32
	// fine is K x (L - L1 + 2): [Pc[L1:], |Rc|, |R1c|], with R1c the part
	// of the centred centroid outside S1. The dot product of a row's
	// [-2 Px[L1:], -2 |Rx|, 2 |R1x|] with it takes a coarse key to the key
	// in S, the two centroid terms (1 - boundSlack)|c|^2 being the same:
	// half the products of the bound in S from scratch.
	fine []float32
	// coarse holds, chunk by chunk of indexChunk centroids, the K x (L1 +
	// 2) rows of the same in the coarse subspace S1, packed for the GEMM
	// that every block of rows multiplies them by.
	coarse     []*gemm.PackedB
	l, l1, dim int
	// With K at least probeMin the centroids are parted into cells, by the
	// nearest in S of len(cellStart)-1 centres spread over their order: a
	// row's search first measures the centroid of the lowest bound in the
	// cell whose centre has the lowest coarse bound, so that the best
	// distance starts near the final one and the bounds prune from the
	// first chunk. host, aug and coarse then hold the centroids cell by
	// cell: position q is centroid perm[q], and cell c is positions
	// cellStart[c] to cellStart[c+1]. Without cells perm is nil and
	// positions are centroids.
	perm      []int32
	cellStart []int32
	centres   *gemm.PackedB // the centres' coarse rows
}

// probeCell is the mean number of centroids in a cell of an Index, and
// probeMin the K from which it has cells: one cell's bounds cost a row
// probeCell dot products, a small part of its search.
const (
	probeCell = 128
	probeMin  = 4 * indexChunk
)

// boundSlack lowers each bound by this share of |Px|^2 + |Rx|^2 + |Pc|^2 +
// |Rc|^2, which exceeds the float32 rounding of the bound's GEMM (L + 2
// products, each at most that sum) with a wide margin: a bound may then
// only be lower than the truth, and the search stays exact.
const boundSlack = 5e-5

// NewIndex builds the pruning search over s's centroids (read once: the
// Index does not follow later changes of s.C). The subspace comes from a
// randomized range finder (two power iterations) seeded by rng, its axes
// put in principal order.
func NewIndex(d tensor.Device, s *Set, rng *rand.Rand) *Index {
	return newIndex(d, s, min(IndexDim, s.D(), s.K()), func(centred []float32, k, dim, l int) (basis, proj []float32) {
		basis = rangeFinder(centred, k, dim, l, rng)
		proj = project(centred, basis, k, dim, l)
		// The basis in principal order: the coarse bounds take its
		// leading axes, those of the centroids' largest spread.
		rot := principal(proj, k, l)
		return rotate(basis, dim, l, rot), rotate(proj, k, l, rot)
	})
}

// NewIndexBasis is NewIndex with the subspace given: basis (D x L,
// orthonormal columns in principal order, 1 <= L <= min(D, K)) as Basis
// returned it, so that a saved model's Index is rebuilt without the range
// finder, whatever IndexDim was when it was saved. Any orthonormal basis
// keeps the search exact; a poor one only makes it slower. It panics when
// basis is not D x L.
func NewIndexBasis(d tensor.Device, s *Set, basis []float32) *Index {
	k, dim := s.K(), s.D()
	l := len(basis) / max(dim, 1)
	if l < 1 || l > min(dim, k) || len(basis) != dim*l {
		panic(fmt.Sprintf("anomnet/centroid: NewIndexBasis: %d values, want %d x L with 1 <= L <= %d", len(basis), dim, min(dim, k)))
	}
	return newIndex(d, s, l, func(centred []float32, k, dim, l int) ([]float32, []float32) {
		return slices.Clone(basis), project(centred, basis, k, dim, l)
	})
}

// Basis returns the Index's subspace, D x L row-major, for NewIndexBasis.
func (ix *Index) Basis() []float32 { return slices.Clone(ix.basis) }

// newIndex builds an Index over a subspace of dimension l: subspace
// returns its basis (dim x l) and the centred centroids' coordinates in it
// (k x l).
func newIndex(d tensor.Device, s *Set, l int, subspace func(centred []float32, k, dim, l int) (basis, proj []float32)) *Index {
	k, dim := s.K(), s.D()
	host := d.ToHost(s.C).Float32s()
	ix := &Index{Set: s, host: host, dim: dim, l: l}
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
	var proj []float32
	ix.basis, proj = subspace(centred, k, dim, l)
	ix.l1 = min(IndexCoarse, l)
	var centres []int32
	if k >= probeMin {
		// The centroids are kept cell by cell, so that the candidates of
		// a row, near each other, lie near each other in memory.
		var members [][]int32
		centres, members = cells(proj, k, l, min(indexChunk, (k+probeCell-1)/probeCell))
		ix.perm = make([]int32, 0, k)
		pos := make([]int32, k)
		for _, m := range members {
			ix.cellStart = append(ix.cellStart, int32(len(ix.perm)))
			for _, j := range m {
				pos[j] = int32(len(ix.perm))
				ix.perm = append(ix.perm, j)
			}
		}
		ix.cellStart = append(ix.cellStart, int32(k))
		for c, j := range centres {
			centres[c] = pos[j]
		}
		// In place: host (the device's host copy), centred and proj are
		// this function's own.
		permuteRows(host, ix.perm, dim)
		permuteRows(centred, ix.perm, dim)
		permuteRows(proj, ix.perm, l)
	}
	norms := make([]float32, k) // the centred centroids' squared norms
	for i := range k {
		norms[i] = vec.Dot(centred[i*dim:(i+1)*dim], centred[i*dim:(i+1)*dim])
	}
	ix.aug = augment(proj, norms, k, l, l)
	coarse, w1 := augment(proj, norms, k, l, ix.l1), ix.l1+2
	ix.fine = fineRows(ix.aug, coarse, proj, k, l, ix.l1)
	for c0 := 0; c0 < k; c0 += indexChunk {
		kc := min(indexChunk, k-c0)
		ix.coarse = append(ix.coarse, gemm.PackB(true, w1, kc, coarse[c0*w1:(c0+kc)*w1], w1))
	}
	if centres != nil {
		rows := make([]float32, len(centres)*w1)
		for c, q := range centres {
			copy(rows[c*w1:(c+1)*w1], coarse[int(q)*w1:(int(q)+1)*w1])
		}
		ix.centres = gemm.PackB(true, w1, len(centres), rows, w1)
	}
	return ix
}

// permuteRows puts the rows of a (width values each) in the order perm,
// in place: row q becomes the former row perm[q]. It follows each cycle
// of the permutation with one spare row.
func permuteRows(a []float32, perm []int32, width int) {
	done := make([]bool, len(perm))
	spare := make([]float32, width)
	row := func(i int) []float32 { return a[i*width : (i+1)*width] }
	for start := range perm {
		if done[start] {
			continue
		}
		copy(spare, row(start))
		q := start
		for {
			done[q] = true
			j := int(perm[q])
			if j == start {
				copy(row(q), spare)
				break
			}
			copy(row(q), row(j))
			q = j
		}
	}
}

// cells parts the k rows of proj (k x l) by the nearest of g centres,
// rows spread evenly over the order (the lowest index among equals):
// returns the centres and the members of each, ascending.
func cells(proj []float32, k, l, g int) (centres []int32, members [][]int32) {
	cp := make([]float32, g*l)
	norm := make([]float32, g)
	for c := range g {
		j := c * k / g
		centres = append(centres, int32(j))
		copy(cp[c*l:(c+1)*l], proj[j*l:(j+1)*l])
		norm[c] = vec.Dot(cp[c*l:(c+1)*l], cp[c*l:(c+1)*l])
	}
	dots := make([]float32, k*g)
	tensor.CPU{}.Gemm(false, true, 1, tensor.FromFloat32s(proj, k, l), tensor.FromFloat32s(cp, g, l), 0,
		tensor.FromFloat32s(dots, k, g))
	members = make([][]int32, g)
	for j := range k {
		bc, bd := 0, float32(math.Inf(1))
		for c, d := range dots[j*g : (j+1)*g] {
			if e := norm[c] - 2*d; e < bd {
				bc, bd = c, e
			}
		}
		members[bc] = append(members[bc], int32(j))
	}
	return centres, members
}

// queryRow writes a row's side of the bound's GEMM, [-2 p, -2 |Rx|, 1],
// to dst (len(p) + 2) from its coordinates p in the subspace and its
// squared norm xn, and returns the bound's row term, lowered: (1 -
// boundSlack)(|p|^2 + |Rx|^2). augment writes the centroids' side.
func queryRow(dst, p []float32, xn float32) float32 {
	pn := vec.Dot(p, p)
	rx := float32(math.Sqrt(max(0, float64(xn-pn))))
	for j, v := range p {
		dst[j] = -2 * v
	}
	m := len(p)
	dst[m], dst[m+1] = -2*rx, 1
	return (1 - boundSlack) * (pn + rx*rx)
}

// project returns the rows of centred (k x dim) in the basis (dim x l).
func project(centred, basis []float32, k, dim, l int) []float32 {
	proj := make([]float32, k*l)
	tensor.CPU{}.Gemm(false, false, 1, tensor.FromFloat32s(centred, k, dim), tensor.FromFloat32s(basis, dim, l), 0,
		tensor.FromFloat32s(proj, k, l))
	return proj
}

// augment returns the K x (m + 2) rows [Pc[:m], |c - Pc[:m]|, (1 -
// boundSlack)|c|^2] of the centred centroids from their squared norms
// (norms) and their coordinates in the basis (proj, K x l): the
// centroids' side of the bound's GEMM (queryRow writes the rows' side).
func augment(proj, norms []float32, k, l, m int) []float32 {
	w := m + 2
	aug := make([]float32, k*w)
	for i := range k {
		p := proj[i*l : i*l+m]
		pn := vec.Dot(p, p)
		resid := math.Sqrt(max(0, float64(norms[i]-pn)))
		row := aug[i*w : (i+1)*w]
		copy(row, p)
		row[m] = float32(resid)
		row[m+1] = float32((1 - boundSlack) * (float64(pn) + resid*resid))
	}
	return aug
}

// fineRows returns the K x (l - l1 + 2) rows [Pc[l1:], |Rc|, |R1c|] (see
// Index.fine) from the coordinates in the basis (proj, K x l) and the
// residual norms that augment put in the rows of S (aug, K x (l + 2)) and
// of S1 (coarse, K x (l1 + 2)).
func fineRows(aug, coarse, proj []float32, k, l, l1 int) []float32 {
	w := l - l1 + 2
	fine := make([]float32, k*w)
	for i := range k {
		row := fine[i*w : (i+1)*w]
		copy(row, proj[i*l+l1:(i+1)*l])
		row[w-2] = aug[i*(l+2)+l]
		row[w-1] = coarse[i*(l1+2)+l1]
	}
	return fine
}

// principal returns the l x l rotation that takes coordinates (the rows
// of proj, n x l) to their principal axes, largest variance first.
func principal(proj []float32, n, l int) []float32 {
	gt := make([]float32, l*l)
	tensor.CPU{}.Gemm(true, false, 1, tensor.FromFloat32s(proj, n, l), tensor.FromFloat32s(proj, n, l), 0, tensor.FromFloat32s(gt, l, l))
	g := mat.NewSymDense(l, nil)
	for i := range l {
		for j := i; j < l; j++ {
			g.SetSym(i, j, float64(gt[i*l+j]))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(g, true) {
		panic("anomnet/centroid: NewIndex: the eigendecomposition of the subspace failed")
	}
	var v mat.Dense
	eig.VectorsTo(&v)
	rot := make([]float32, l*l)
	for i := range l {
		for j := range l { // ascending eigenvalues: column l-1-j is the j-th largest
			rot[i*l+j] = float32(v.At(i, l-1-j))
		}
	}
	return rot
}

// rotate returns a (n x l) times rot (l x l).
func rotate(a []float32, n, l int, rot []float32) []float32 {
	out := make([]float32, n*l)
	tensor.CPU{}.Gemm(false, false, 1, tensor.FromFloat32s(a, n, l), tensor.FromFloat32s(rot, l, l), 0, tensor.FromFloat32s(out, n, l))
	return out
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

// indexBlock is how many rows share one GEMM of bounds, indexChunk how
// many centroids: the keys of a block and a chunk (512 KiB) stay in the
// core's cache between the GEMM that writes them and the scans that read
// them. Over all K at once they would make the search memory-bound.
const (
	indexBlock = 256
	indexChunk = 512
)

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
	// Rows on the host are read in place: the CPU Device's ToHost copies.
	var xs []float32
	if x.IsHost() {
		xs = x.Float32s()
	} else {
		xs = d.ToHost(x).Float32s()
	}
	// The centroids of each source, so that a row leaves out its own
	// without a pass over all K.
	var bySource map[int32][]int32
	if source != nil {
		if ix.perm != nil { // in the cells' order
			src := make([]int32, len(source))
			for q, j := range ix.perm {
				src[q] = source[j]
			}
			source = src
		}
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
	xc, xp, xa, x1, xf, lb []float32
	ck                     []float32 // per row, the cells' centres' coarse keys
	low, low1, best        []float32 // per row
	own                    []int     // per row: how many of its left-out centroids are behind
	pass                   []int32   // the centroids whose coarse bound passes
	keyed                  []candidate
	cand                   [][]candidate // per row
}

func (ix *Index) newScratch() *scratch {
	k := ix.K()
	return &scratch{xc: make([]float32, indexBlock*ix.dim), xp: make([]float32, indexBlock*ix.l),
		xa: make([]float32, indexBlock*(ix.l+2)), x1: make([]float32, indexBlock*(ix.l1+2)), xf: make([]float32, indexBlock*(ix.l-ix.l1+2)), lb: make([]float32, indexBlock*min(k, indexChunk)), pass: make([]int32, 0, min(k, indexChunk)+16),
		low: make([]float32, indexBlock), low1: make([]float32, indexBlock), best: make([]float32, indexBlock),
		own: make([]int, indexBlock), cand: make([][]candidate, indexBlock)}
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
	l1, w, w1 := ix.l1, l+2, ix.l1+2
	wf := l - l1 + 2
	xp, xa, x1, xf := s.xp[:rows*l], s.xa[:rows*w], s.x1[:rows*w1], s.xf[:rows*wf]
	cpu := tensor.CPU{}
	cpu.Gemm(false, false, 1, tensor.FromFloat32s(xc, rows, dim), tensor.FromFloat32s(ix.basis, dim, l), 0, tensor.FromFloat32s(xp, rows, l))
	// Per row, in S and in S1: [-2 Px, -2 |Rx|, 1] and the bound's row
	// term, lowered: (1 - slack)(|Px|^2 + |Rx|^2).
	low, low1, best := s.low[:rows], s.low1[:rows], s.best[:rows]
	for i := range rows {
		xn := vec.Dot(xc[i*dim:(i+1)*dim], xc[i*dim:(i+1)*dim])
		low[i] = queryRow(xa[i*w:(i+1)*w], xp[i*l:i*l+l], xn)
		low1[i] = queryRow(x1[i*w1:(i+1)*w1], xp[i*l:i*l+l1], xn)
		// The fine row, from the two rows' -2 |Rx| and -2 |R1x|.
		f := xf[i*wf : (i+1)*wf]
		copy(f, xa[i*w+l1:i*w+l])
		f[wf-2], f[wf-1] = xa[i*w+l], -x1[i*w1+l1]
		best[i] = float32(math.Inf(1))
		s.own[i] = 0
		s.cand[i] = s.cand[i][:0]
	}
	// key_j = (1 - slack)(|Pc_j|^2 + |Rc_j|^2) - 2(Px.Pc_j + |Rx||Rc_j|):
	// the lowered bound |x - c_j|^2 >= |Px - Pc_j|^2 + (|Rx| - |Rc_j|)^2
	// less the row term, the same for every centroid of the row. The
	// coarse keys come from one GEMM per chunk of centroids.
	//
	// A row's first centroid measured is its probe's (with cells), or the
	// one of the lowest coarse bound in the first chunk where it has one:
	// its distance is the first best. Then in each chunk, the centroids
	// whose coarse bound passes the best found so far get their bound in
	// S; those that pass again are measured, lowest bound first, until the
	// bounds exceed the best.
	// Distances are measured in float32 here; those within rounding of the
	// best are measured again in float64 at the end, as the brute-force
	// search does, so that the two agree on near ties.
	inf := float32(math.Inf(1))
	if g := len(ix.cellStart) - 1; g > 0 {
		s.ck = slices.Grow(s.ck[:0], rows*g)[:rows*g]
		gemm.SgemmPackedB(false, rows, 1, x1, w1, ix.centres, 0, s.ck, g)
	}
	for c0 := 0; c0 < k; c0 += indexChunk {
		kc := min(indexChunk, k-c0)
		lb := s.lb[:rows*kc]
		gemm.SgemmPackedB(false, rows, 1, x1, w1, ix.coarse[c0/indexChunk], 0, lb, kc)
		for i := range rows {
			xi := xs[i*dim : (i+1)*dim]
			key := lb[i*kc : (i+1)*kc]
			if source != nil {
				own := bySource[rowSrc[i]] // ascending
				for s.own[i] < len(own) && int(own[s.own[i]]) < c0+kc {
					key[int(own[s.own[i]])-c0] = inf
					s.own[i]++
				}
			}
			cand := s.cand[i]
			if g := len(ix.cellStart) - 1; c0 == 0 && g > 0 {
				if j := ix.probe(s.ck[i*g:(i+1)*g], xa[i*w:(i+1)*w], source, rowSrc, i); j >= 0 {
					best[i] = vec.SqDist(xi, ix.host[j*dim:(j+1)*dim])
					cand = append(cand, candidate{int32(j), best[i]})
					if j < kc {
						key[j] = inf // measured now, not again
					}
				}
			}
			if best[i] == inf {
				lowest := vec.Min(key)
				if lowest == inf {
					continue // every centroid of the chunk left out
				}
				s.pass = vec.FilterLE(key, lowest, s.pass)
				first := 0
				if len(s.pass) > 0 {
					first = int(s.pass[0])
				} else { // NaN bounds (a NaN feature): the first centroid not left out
					for key[first] == inf {
						first++
					}
				}
				key[first] = inf // measured now, not again
				j := c0 + first
				best[i] = vec.SqDist(xi, ix.host[j*dim:(j+1)*dim])
				cand = append(cand, candidate{int32(j), best[i]})
			}
			s.pass = vec.FilterLE(key, best[i]*(1+1e-4)-low1[i], s.pass)
			if len(s.pass) > 0 {
				xfi, keyed := xf[i*wf:(i+1)*wf], s.keyed[:0]
				for _, jc := range s.pass {
					j := c0 + int(jc)
					if kj := key[jc] + vec.Dot(xfi, ix.fine[j*wf:(j+1)*wf]); kj <= best[i]*(1+1e-4)-low[i] {
						keyed = append(keyed, candidate{int32(j), kj})
					}
				}
				slices.SortFunc(keyed, func(a, b candidate) int { return cmp.Compare(a.d, b.d) })
				for _, c := range keyed {
					if c.d > best[i]*(1+1e-4)-low[i] {
						break
					}
					e := vec.SqDist(xi, ix.host[int(c.j)*dim:(int(c.j)+1)*dim])
					cand = append(cand, candidate{c.j, e})
					best[i] = min(best[i], e)
				}
				s.keyed = keyed
			}
			s.cand[i] = cand
		}
	}
	for i := range rows {
		xi := xs[i*dim : (i+1)*dim]
		bi, bd := -1, math.Inf(1)
		for _, c := range s.cand[i] {
			if c.d > best[i]*(1+1e-4)+1e-30 {
				continue
			}
			j := int(c.j)
			if e := tensor.SqDist(xi, ix.host[j*dim:(j+1)*dim]); e < bd || (e == bd && ix.centroid(j) < ix.centroid(bi)) {
				bi, bd = j, e
			}
		}
		is[i], ds[i] = int32(ix.centroid(bi)), float32(math.Sqrt(max(bd, 0)))
		if bi < 0 {
			ds[i] = float32(math.Inf(1))
		}
	}
}

// centroid returns the number of the centroid at position q (-1 for -1).
func (ix *Index) centroid(q int) int {
	if ix.perm == nil || q < 0 {
		return q
	}
	return int(ix.perm[q])
}

// probe returns the position of the centroid of the lowest bound in S
// (xa is the row's side of the bound) in the cell whose centre has the
// lowest coarse bound (key, a row's coarse keys of the centres), leaving
// out those of source rowSrc[i] (source by position); -1 when every
// centroid of that cell is left out.
func (ix *Index) probe(key, xa []float32, source, rowSrc []int32, i int) int {
	g, gk := 0, float32(math.Inf(1))
	for c, v := range key[:len(ix.cellStart)-1] {
		if v < gk {
			g, gk = c, v
		}
	}
	w := ix.l + 2
	bj, bk := -1, float32(math.Inf(1))
	for j := int(ix.cellStart[g]); j < int(ix.cellStart[g+1]); j++ {
		if source != nil && source[j] == rowSrc[i] {
			continue
		}
		if kj := vec.Dot(xa, ix.aug[j*w:(j+1)*w]); kj < bk || bj < 0 {
			bj, bk = j, kj
		}
	}
	return bj
}

// candidate is a centroid and a float32 key: its bound or its distance.
type candidate struct {
	j int32
	d float32
}
