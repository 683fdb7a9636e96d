package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListInputs(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"b.png", "sub/a.JPG", "sub/notes.txt", ".hidden/c.png", "pred/good/x.overlay.png"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := listInputs(dir, filepath.Join(dir, "pred"))
	if err != nil {
		t.Fatal(err)
	}
	want := []input{{path: filepath.Join(dir, "b.png"), stem: "b"}, {path: filepath.Join(dir, "sub/a.JPG"), stem: filepath.Join("sub", "a")}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %v, want %v (no hidden entries, no earlier outputs, no text)", got, want)
	}

	one, err := listInputs(filepath.Join(dir, "sub/a.JPG"), "predictions")
	if err != nil || len(one) != 1 || one[0].stem != "a" {
		t.Errorf("one image: %v, %v", one, err)
	}
	if _, err := listInputs(filepath.Join(dir, "sub/notes.txt"), "predictions"); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("a text file: %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "b.jpg"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := listInputs(dir, filepath.Join(dir, "pred")); err == nil || !strings.Contains(err.Error(), "b.jpg") {
		t.Errorf("b.png and b.jpg: %v, want an error naming both", err)
	}
}
