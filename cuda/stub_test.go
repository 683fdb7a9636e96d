//go:build !cuda

package cuda

import (
	"strings"
	"testing"
)

func TestStub(t *testing.T) {
	if Available() {
		t.Fatal("Available() = true without the cuda tag")
	}
	d, err := New(0)
	if d != nil || err == nil || !strings.Contains(err.Error(), "-tags cuda") {
		t.Fatalf("New(0) = %v, %v; want nil and the built-without-CUDA error", d, err)
	}
	if _, err := Count(); err == nil {
		t.Error("Count() returned no error")
	}
}
