package centroid

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/org/anomnet/internal/tensor"
	"github.com/stretchr/testify/require"
)

// TestIndexNearest checks the pruned search against the brute-force one
// (the CPU Device's Nearest): the same index and the same distance for
// every row, on clustered data like features, on data with exact ties
// (duplicate centroids, rows on a grid) and on queries far from every
// centroid, where the bounds prune little.
func TestIndexNearest(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(8, 9))
	for _, c := range []struct {
		name         string
		k, n, dim    int
		spread, away float64
		grid         bool
	}{
		{name: "clustered", k: 700, n: 500, dim: 160, spread: 3},
		{name: "clustered, several chunks", k: 3*indexChunk + 37, n: 300, dim: 100, spread: 2},
		// Enough centroids for cells: each row's first measure is a probe.
		{name: "clustered, cells", k: probeMin + 77, n: 300, dim: 48, spread: 2},
		{name: "far queries, cells", k: probeMin + 5, n: 100, dim: 48, spread: 1, away: 30},
		{name: "few dims", k: 300, n: 300, dim: 12, spread: 1},
		{name: "far queries", k: 400, n: 200, dim: 200, spread: 1, away: 30},
		{name: "one centroid", k: 1, n: 50, dim: 20, spread: 1},
		// No low-rank structure: the bounds are loose and the nearest is
		// rarely among the lowest bounds.
		{name: "isotropic", k: 500, n: 300, dim: 300, spread: 1},
		{name: "grid ties", k: 64, n: 300, dim: 2, grid: true},
		// Ties across cells: the lowest centroid number wins, whatever
		// the order the cells keep the centroids in.
		{name: "grid ties, cells", k: 8 * 288, n: 300, dim: 2, grid: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := make([]float32, c.k*c.dim)
			centres := make([]float64, 10*c.dim)
			for i := range centres {
				if c.name != "isotropic" {
					centres[i] = 5 * rng.NormFloat64()
				}
			}
			for i := range c.k {
				for j := range c.dim {
					if c.grid {
						cs[i*c.dim+j] = float32([2]int{i % 8, i / 8}[j])
						continue
					}
					cs[i*c.dim+j] = float32(centres[(i%10)*c.dim+j] + c.spread*rng.NormFloat64())
				}
			}
			if c.k > 10 {
				copy(cs[5*c.dim:6*c.dim], cs[9*c.dim:10*c.dim]) // a duplicate centroid
			}
			xs := make([]float32, c.n*c.dim)
			for i := range c.n {
				for j := range c.dim {
					if c.grid {
						// Midway between grid points: ties of two or four.
						xs[i*c.dim+j] = float32(rng.IntN(15)) / 2
						continue
					}
					xs[i*c.dim+j] = float32(centres[(i%10)*c.dim+j] + c.spread*rng.NormFloat64() + c.away*rng.NormFloat64())
				}
			}
			if c.k > 10 {
				copy(xs[:c.dim], cs[9*c.dim:10*c.dim]) // on the duplicate: index 5 wins
			}
			set := NewSet(tensor.FromFloat32s(cs, c.k, c.dim))
			ix := NewIndex(d, set, rand.New(rand.NewPCG(1, 1)))
			x := tensor.FromFloat32s(xs, c.n, c.dim)
			wantI, wantD := tensor.NewInt32(c.n), tensor.New(c.n)
			d.Nearest(wantI, wantD, x, set.C)
			gotI, gotD := tensor.NewInt32(c.n), tensor.New(c.n)
			ix.Nearest(d, gotI, gotD, x)
			require.Equal(t, wantI.Int32s(), gotI.Int32s())
			require.Equal(t, wantD.Float32s(), gotD.Float32s())
			if c.k > 10 {
				require.EqualValues(t, 5, gotI.Int32s()[0])
			}
			// Either output alone.
			onlyD := tensor.New(c.n)
			ix.Nearest(d, nil, onlyD, x)
			require.Equal(t, wantD.Float32s(), onlyD.Float32s())
			// Rebuilt from its basis (as a saved model is): the same
			// subspace and the same results.
			again := NewIndexBasis(d, set, ix.Basis())
			require.Equal(t, ix.Basis(), again.Basis())
			againI, againD := tensor.NewInt32(c.n), tensor.New(c.n)
			again.Nearest(d, againI, againD, x)
			require.Equal(t, wantI.Int32s(), againI.Int32s())
			require.Equal(t, wantD.Float32s(), againD.Float32s())
			require.Panics(t, func() { NewIndexBasis(d, set, ix.Basis()[1:]) })
		})
	}
}

// featureLike returns n rows of dim values with a decaying spectrum, as
// CNN features have (coordinate i has standard deviation 1/(1+i/8); the
// search does not care about the rotation), around clumps centres: a
// stand-in for adapted features in benchmarks.
func featureLike(rng *rand.Rand, n, dim, clumps int) []float32 {
	centres := make([]float64, clumps*dim)
	for i := range centres {
		centres[i] = 2 * rng.NormFloat64() / (1 + float64(i%dim)/8)
	}
	out := make([]float32, n*dim)
	for r := range n {
		c := rng.IntN(clumps)
		for i := range dim {
			out[r*dim+i] = float32(centres[c*dim+i] + rng.NormFloat64()/(1+float64(i)/8))
		}
	}
	return out
}

// BenchmarkNearest times the brute-force search (the CPU Device's GEMM
// search) and the pruning Index on 784 feature-like queries (one image's
// locations) at D = 1536, K = 1k, 8k and 32k.
func BenchmarkNearest(b *testing.B) {
	const dim, n = 1536, 784
	rng := rand.New(rand.NewPCG(3, 3))
	all := featureLike(rng, 32768+n, dim, 64)
	x := tensor.FromFloat32s(all[:n*dim], n, dim)
	d := tensor.CPU{}
	for _, k := range []int{1024, 8192, 32768} {
		set := NewSet(tensor.FromFloat32s(all[n*dim:(n+k)*dim], k, dim))
		dist := tensor.New(n)
		b.Run(fmt.Sprintf("brute/K=%d", k), func(b *testing.B) {
			for b.Loop() {
				d.Nearest(nil, dist, x, set.C)
			}
		})
		ix := NewIndex(d, set, rand.New(rand.NewPCG(1, 1)))
		b.Run(fmt.Sprintf("index/K=%d", k), func(b *testing.B) {
			for b.Loop() {
				ix.Nearest(d, nil, dist, x)
			}
		})
	}
}

// TestIndexNearestExcept checks the search that leaves out each row's own
// source against brute force over the centroids of the other sources.
func TestIndexNearestExcept(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(5, 6))
	const n, dim, sources = 200, 40, 6
	for _, c := range []struct {
		name   string
		k      int
		blocks bool
	}{
		{"random sources", 300, false},
		{"random sources, several chunks", 3*indexChunk + 100, false},
		// Each source fills a chunk of the search: rows of source 0 find
		// nothing in the first chunk and their first best in the second.
		{"a source per chunk", 3*indexChunk + 100, true},
		{"random sources, cells", probeMin + 100, false},
		{"a source per chunk, cells", probeMin + 100, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := c.k
			cs := featureLike(rng, k, dim, 5)
			xs := featureLike(rng, n, dim, 5)
			source := make([]int32, k)
			for j := range source {
				source[j] = int32(rng.IntN(sources))
				if c.blocks {
					source[j] = int32(j / indexChunk)
				}
			}
			source[7] = sources // the only centroid of its source
			rows := make([]int32, n)
			for i := range rows {
				rows[i] = int32(rng.IntN(sources + 1))
			}
			copy(xs[:dim], cs[3*dim:4*dim]) // on a centroid of its own source: not found
			rows[0] = source[3]
			ix := NewIndex(d, NewSet(tensor.FromFloat32s(cs, k, dim)), rand.New(rand.NewPCG(1, 1)))
			gotI, gotD := tensor.NewInt32(n), tensor.New(n)
			ix.NearestExcept(d, gotI, gotD, tensor.FromFloat32s(xs, n, dim), source, rows)
			for i := range n {
				bi, bd := -1, math.Inf(1)
				for j := range k {
					if source[j] == rows[i] {
						continue
					}
					if e := tensor.SqDist(xs[i*dim:(i+1)*dim], cs[j*dim:(j+1)*dim]); e < bd {
						bi, bd = j, e
					}
				}
				require.EqualValues(t, bi, gotI.Int32s()[i], "row %d", i)
				require.Equal(t, float32(math.Sqrt(bd)), gotD.Float32s()[i], "row %d", i)
			}
			require.NotEqualValues(t, 3, gotI.Int32s()[0])
			// Leaving out every centroid: -1 and +Inf.
			i1, d1 := tensor.NewInt32(1), tensor.New(1)
			ix.NearestExcept(d, i1, d1, tensor.FromFloat32s(xs[:dim], 1, dim), make([]int32, k), []int32{0})
			require.EqualValues(t, -1, i1.Int32s()[0])
			require.True(t, math.IsInf(float64(d1.Float32s()[0]), 1))
		})
	}
}

// TestIndexCells checks the cells of an Index, whose probe gives each row
// its first best: every centroid in exactly one, the centres spread over
// the order, and a row whose probed cell is all left out (its own source)
// still finds the brute-force nearest elsewhere.
func TestIndexCells(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(7, 1))
	const dim = 32
	require.Nil(t, NewIndex(d, NewSet(tensor.FromFloat32s(featureLike(rng, probeMin-1, dim, 5), probeMin-1, dim)), rng).perm)
	k := probeMin + 300
	cs := featureLike(rng, k, dim, 5)
	ix := NewIndex(d, NewSet(tensor.FromFloat32s(cs, k, dim)), rand.New(rand.NewPCG(1, 1)))
	g := (k + probeCell - 1) / probeCell
	require.Len(t, ix.cellStart, g+1)
	require.EqualValues(t, 0, ix.cellStart[0])
	require.EqualValues(t, k, ix.cellStart[g])
	// Every centroid at one position, cell by cell, ascending within a
	// cell; the host rows follow the positions.
	seen := make([]int, k)
	var big []int32
	for c := range g {
		m := ix.perm[ix.cellStart[c]:ix.cellStart[c+1]]
		require.True(t, slices.IsSorted(m))
		for _, j := range m {
			seen[j]++
		}
		if len(m) > len(big) {
			big = m
		}
	}
	for j, v := range seen {
		require.Equal(t, 1, v, "centroid %d in %d cells", j, v)
	}
	for q, j := range ix.perm {
		require.Equal(t, cs[int(j)*dim:(int(j)+1)*dim], ix.host[q*dim:(q+1)*dim])
	}
	// Rows on the centroids of one cell, whose source is that cell: the
	// probe finds every centroid of the cell left out.
	source := make([]int32, k)
	for _, j := range big {
		source[j] = 1
	}
	n := min(len(big), 40)
	xs := make([]float32, n*dim)
	rows := make([]int32, n)
	for i := range n {
		copy(xs[i*dim:(i+1)*dim], cs[int(big[i])*dim:(int(big[i])+1)*dim])
		rows[i] = 1
	}
	gotI, gotD := tensor.NewInt32(n), tensor.New(n)
	ix.NearestExcept(d, gotI, gotD, tensor.FromFloat32s(xs, n, dim), source, rows)
	for i := range n {
		bi, bd := -1, math.Inf(1)
		for j := range k {
			if source[j] == 1 {
				continue
			}
			if e := tensor.SqDist(xs[i*dim:(i+1)*dim], cs[j*dim:(j+1)*dim]); e < bd {
				bi, bd = j, e
			}
		}
		require.EqualValues(t, bi, gotI.Int32s()[i], "row %d", i)
		require.Equal(t, float32(math.Sqrt(bd)), gotD.Float32s()[i], "row %d", i)
	}
}

// TestIndexCellTies checks that a tie between centroids of different
// cells goes to the lowest centroid number, though the cells keep the
// centroids in another order: a grid whose rows are numbered in a shuffled
// order, queried midway between grid points (ties of two or four).
func TestIndexCellTies(t *testing.T) {
	d := tensor.CPU{}
	rng := rand.New(rand.NewPCG(3, 8))
	const cols, rows = 8, 288
	k := cols * rows
	row := rng.Perm(rows)
	cs := make([]float32, 2*k)
	for i := range k {
		cs[2*i], cs[2*i+1] = float32(i%cols), float32(row[i/cols])
	}
	n := 2000
	xs := make([]float32, 2*n)
	for i := range n {
		xs[2*i], xs[2*i+1] = float32(rng.IntN(2*cols-1))/2, float32(rng.IntN(2*rows-1))/2
	}
	set := NewSet(tensor.FromFloat32s(cs, k, 2))
	ix := NewIndex(d, set, rand.New(rand.NewPCG(1, 1)))
	require.NotNil(t, ix.perm)
	x := tensor.FromFloat32s(xs, n, 2)
	wantI, wantD := tensor.NewInt32(n), tensor.New(n)
	d.Nearest(wantI, wantD, x, set.C)
	gotI, gotD := tensor.NewInt32(n), tensor.New(n)
	ix.Nearest(d, gotI, gotD, x)
	require.Equal(t, wantI.Int32s(), gotI.Int32s())
	require.Equal(t, wantD.Float32s(), gotD.Float32s())
}

// TestPermuteRows checks the in-place permutation of rows against a copy,
// on permutations with long cycles, fixed points and the identity.
func TestPermuteRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, n := range []int{1, 2, 7, 100} {
		for trial := range 3 {
			perm := make([]int32, n)
			for i, p := range rng.Perm(n) {
				perm[i] = int32(p)
			}
			if trial == 0 {
				for i := range perm {
					perm[i] = int32(i)
				}
			}
			const width = 3
			a := make([]float32, n*width)
			for i := range a {
				a[i] = float32(i)
			}
			want := make([]float32, len(a))
			for q, j := range perm {
				copy(want[q*width:(q+1)*width], a[int(j)*width:(int(j)+1)*width])
			}
			permuteRows(a, perm, width)
			require.Equal(t, want, a, "n %d, perm %v", n, perm)
		}
	}
}
