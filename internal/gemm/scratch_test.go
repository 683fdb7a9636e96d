package gemm

import "testing"

func TestScratch(t *testing.T) {
	scratch.Lock()
	scratch.free = nil // start from an empty list
	scratch.Unlock()
	a := getScratch(1000)
	if len(a) != 1000 {
		t.Fatalf("len %d", len(a))
	}
	a[0] = 42
	putScratch(a)
	// The kept buffer comes back for a request it can hold...
	b := getScratch(900)
	if len(b) != 900 || &b[0] != &a[0] {
		t.Fatal("a kept buffer large enough was not reused")
	}
	// ...and is not handed out twice.
	c := getScratch(900)
	if &c[0] == &b[0] {
		t.Fatal("one buffer handed out twice")
	}
	putScratch(b)
	putScratch(c)
	// A full list keeps the larger buffers.
	for range scratchKeep + 4 {
		putScratch(make([]float32, 10))
	}
	big := make([]float32, 1<<20)
	putScratch(big)
	if d := getScratch(1 << 20); &d[0] != &big[0] {
		t.Fatal("a large buffer was dropped for small ones")
	}
	scratch.Lock()
	n := len(scratch.free)
	scratch.Unlock()
	if n > scratchKeep {
		t.Fatalf("%d buffers kept, limit %d", n, scratchKeep)
	}
}
