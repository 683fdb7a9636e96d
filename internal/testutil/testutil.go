// Package testutil holds helpers that the tests of several packages share.
package testutil

import (
	"runtime"
	"testing"
)

// AllocBound fails t when fn allocates more than limit bytes in total: the
// fuzz targets' check that a forged size in the input cannot turn a small
// file into a huge allocation.
func AllocBound(t testing.TB, limit uint64, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > limit {
		t.Fatalf("allocated %d bytes (limit %d)", got, limit)
	}
}
