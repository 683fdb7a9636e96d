package testutil

import "testing"

// fakeTB records a Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }

var sink []byte

func TestAllocBound(t *testing.T) {
	f := &fakeTB{TB: t}
	AllocBound(f, 1<<20, func() { sink = make([]byte, 4<<20) })
	if !f.failed {
		t.Error("4 MiB allocated under a 1 MiB bound passed")
	}
	f = &fakeTB{TB: t}
	AllocBound(f, 8<<20, func() { sink = make([]byte, 1<<20) })
	if f.failed {
		t.Error("1 MiB allocated under an 8 MiB bound failed")
	}
}
