package parallel

import (
	"slices"
	"sync"
	"testing"
)

// TestFor checks the split: contiguous ranges that cover [0, n) in order,
// one goroutine number each, and one inline call for a single worker.
func TestFor(t *testing.T) {
	for _, tc := range []struct{ workers, n, calls int }{
		{0, 0, 1}, {1, 0, 1}, {4, 0, 1}, {1, 10, 1}, {-3, 10, 1},
		{4, 10, 4}, {4, 3, 3}, {16, 1000, 16}, {3, 7, 3},
	} {
		var mu sync.Mutex
		got := make([][3]int, 0)
		For(tc.workers, tc.n, func(w, lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, [3]int{w, lo, hi})
		})
		if len(got) != tc.calls {
			t.Fatalf("For(%d, %d): %d calls %v, want %d", tc.workers, tc.n, len(got), got, tc.calls)
		}
		slices.SortFunc(got, func(a, b [3]int) int { return a[0] - b[0] })
		next := 0
		for i, r := range got {
			if r[0] != i || r[1] != next || r[2] < r[1] || r[2]-r[1] > tc.n/tc.calls+1 {
				t.Fatalf("For(%d, %d): ranges %v are not an even, ordered split", tc.workers, tc.n, got)
			}
			next = r[2]
		}
		if next != tc.n {
			t.Fatalf("For(%d, %d): ranges %v end at %d", tc.workers, tc.n, got, next)
		}
	}
}
