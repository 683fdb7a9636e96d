package anomnet

import (
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// oddFloats are values whose bits a lossy round trip would change: a NaN
// with a payload, both zeros, both infinities, the smallest subnormal and
// the largest finite float32.
var oddFloats = []float32{
	math.Float32frombits(0x7fc0beef), float32(math.Copysign(0, -1)), 0,
	float32(math.Inf(1)), float32(math.Inf(-1)),
	math.SmallestNonzeroFloat32, -math.MaxFloat32, 1.0 / 3,
}

// cacheRecord returns record i of a cache with records of n values: the odd
// floats, rotated by i, so that no two records are alike.
func cacheRecord(i, n int) []float32 {
	rec := make([]float32, n)
	for k := range rec {
		rec[k] = oddFloats[(i+k)%len(oddFloats)]
	}
	return rec
}

// requireSameBits fails unless got and want hold the same float32 bits
// (require.Equal would call a NaN different from itself).
func requireSameBits(t *testing.T, want, got []float32, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for k := range want {
		require.Equal(t, math.Float32bits(want[k]), math.Float32bits(got[k]), "%s: value %d", msg, k)
	}
}

// spillFiles lists the feature cache's files in dir.
func spillFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "anomnet-features-*.bin"))
	require.NoError(t, err)
	return names
}

// TestFeatureCacheBitExact fills a cache with a budget of two records, so
// that the file holds the rest, and reads every record back, bit for bit,
// in memory and from the file, in any order.
func TestFeatureCacheBitExact(t *testing.T) {
	const n, count = 5, 6
	dir := t.TempDir()
	c := newFeatureCache(n, 2*n*4, dir)
	defer c.Close()
	for i := range count {
		rec := cacheRecord(i, n)
		require.NoError(t, c.Append(rec))
		rec[0] = 42 // the cache holds a copy
		require.Equal(t, i+1, c.Len())
		if i < 2 {
			require.Empty(t, spillFiles(t, dir), "no file while the records fit the budget")
		}
	}
	require.Equal(t, count, c.Len())
	require.Equal(t, count-2, c.Spilled())
	require.Len(t, spillFiles(t, dir), 1)

	for _, i := range []int{5, 0, 3, 1, 2, 4, 5, 0} {
		got := make([]float32, n)
		require.NoError(t, c.Get(i, got))
		requireSameBits(t, cacheRecord(i, n), got, "record")
	}
	// A longer dst: only its first n values are written, from memory
	// (record 1) as from the file (record 4).
	for _, i := range []int{1, 4} {
		got := []float32{9, 9, 9, 9, 9, 7, 7}
		require.NoError(t, c.Get(i, got))
		requireSameBits(t, append(cacheRecord(i, n), 7, 7), got, "long dst")
	}
}

// TestFeatureCacheBudget checks where the budget puts the line between
// memory and file: a record stays in memory when it fits in full.
func TestFeatureCacheBudget(t *testing.T) {
	const n = 3 // 12 bytes a record
	for _, c := range []struct {
		budget  int64
		spilled int
	}{{0, 4}, {11, 4}, {12, 3}, {23, 3}, {24, 2}, {48, 0}, {1 << 40, 0}} {
		fc := newFeatureCache(n, c.budget, t.TempDir())
		for i := range 4 {
			require.NoError(t, fc.Append(cacheRecord(i, n)))
		}
		require.Equal(t, c.spilled, fc.Spilled(), "budget %d", c.budget)
		require.Equal(t, 4, fc.Len())
		require.NoError(t, fc.Close())
	}
}

func TestFeatureCacheCloseRemovesFile(t *testing.T) {
	dir := t.TempDir()
	c := newFeatureCache(4, 16, dir)
	for i := range 3 {
		require.NoError(t, c.Append(cacheRecord(i, 4)))
	}
	files := spillFiles(t, dir)
	require.Len(t, files, 1)
	info, err := os.Stat(files[0])
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.Size(), int64(2*4*4), "the spilled records are in the file")

	require.NoError(t, c.Close())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "Close removes the spill file")
	require.Zero(t, c.Len(), "Close drops the records")
	require.NoError(t, c.Close(), "a second Close")

	// A cache that never spilled creates no file.
	c = newFeatureCache(4, 1<<20, dir)
	require.NoError(t, c.Append(cacheRecord(0, 4)))
	require.NoError(t, c.Close())
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}

// TestFeatureCacheReadError closes the spill file under the cache: Get of a
// spilled record names the file, and Close still removes it.
func TestFeatureCacheReadError(t *testing.T) {
	dir := t.TempDir()
	c := newFeatureCache(2, 8, dir)
	for i := range 2 {
		require.NoError(t, c.Append(cacheRecord(i, 2)))
	}
	name := c.file.Name()
	require.NoError(t, c.file.Close())

	got := make([]float32, 2)
	require.NoError(t, c.Get(0, got), "record 0 is in memory")
	err := c.Get(1, got)
	require.ErrorIs(t, err, os.ErrClosed)
	require.ErrorContains(t, err, name)

	require.Error(t, c.Close(), "the file was already closed")
	_, err = os.Stat(name)
	require.ErrorIs(t, err, fs.ErrNotExist, "Close removes the file even so")
}

func TestFeatureCacheMisuse(t *testing.T) {
	c := newFeatureCache(3, 12, t.TempDir())
	defer c.Close()
	require.NoError(t, c.Append(cacheRecord(0, 3)))
	require.NoError(t, c.Append(cacheRecord(1, 3))) // in the file

	// A record of the wrong length is a programming error: Append panics
	// and keeps nothing.
	require.PanicsWithValue(t, "anomnet: feature record of 2 values, want 3", func() { c.Append(make([]float32, 2)) })
	require.PanicsWithValue(t, "anomnet: feature record of 4 values, want 3", func() { c.Append(make([]float32, 4)) })
	require.Equal(t, 2, c.Len())

	// So is an index outside [0, Len): Get panics.
	for _, i := range []int{-1, 2, 100} {
		require.Panics(t, func() { c.Get(i, make([]float32, 3)) }, "index %d", i)
	}

	// A spill folder that does not exist: Append returns the error, with
	// the budget, and keeps nothing.
	missing := newFeatureCache(3, 12, filepath.Join(t.TempDir(), "missing"))
	require.NoError(t, missing.Append(cacheRecord(0, 3)))
	err := missing.Append(cacheRecord(1, 3))
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "over its 12-byte budget")
	require.Equal(t, 1, missing.Len())
	require.NoError(t, missing.Close())
}
