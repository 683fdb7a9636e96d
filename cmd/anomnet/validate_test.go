package main

import (
	"encoding/json"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/org/anomnet/dataset"
)

// TestValidateReadsNoTestImage runs the validation protocol on a synthetic
// category whose test images and masks are all replaced by garbage: it
// must fit and score on train/good alone, and report figures.
func TestValidateReadsNoTestImage(t *testing.T) {
	needWeights(t)
	root := t.TempDir()
	synth := dataset.SynthOptions{Size: 128, Train: 10, TestGood: 1, TestDefect: 1, Categories: []string{"washer"}}
	if err := dataset.WriteSynthetic(filepath.Join(root, "data"), synth, nil); err != nil {
		t.Fatal(err)
	}
	cat := filepath.Join(root, "data", "washer")
	var spoiled int
	for _, dir := range []string{"test", "ground_truth"} {
		err := filepath.WalkDir(filepath.Join(cat, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				spoiled++
				return os.WriteFile(p, []byte("not an image"), 0o644)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if spoiled == 0 {
		t.Fatal("no test files to spoil")
	}
	out := filepath.Join(root, "v.json")
	code, stdout, stderr := runCLI(t, "validate", "-holdout", "0.3", "-copies", "3", "-json", out,
		"-defects", "all", "-resize", "128", "-crop", "112", "-no-train", "-k", "16",
		"-sweep-sigma", "2,4", "-sweep-power", "0.5", cat)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var v validation
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	r := v.Metrics
	if v.Fit != 7 || v.HeldBack != 3 || v.Copies != 3 || v.Defects != "all" || r.IAUROC == nil || r.PAUROC == nil || r.AUPRO == nil ||
		r.Images != 12 || r.Defective != 9 {
		t.Fatalf("validation %+v from %s (stdout %s)", v, b, stdout)
	}
	for _, f := range []float64{*r.IAUROC, *r.PAUROC, *r.AUPRO} {
		if f < 0 || f > 1 {
			t.Errorf("figure %g outside [0, 1]", f)
		}
	}
	// The sweep: one row per blur, the same images, figures of their own.
	if len(v.Sweep) != 2 || v.Sweep[0].Sigma != 2 || v.Sweep[1].Sigma != 4 || v.Sweep[0].Power != 0.5 ||
		v.Sweep[0].Metrics.Images != 12 || v.Sweep[0].Metrics.AUPRO == nil || *v.Sweep[0].Metrics.AUPRO == *v.Sweep[1].Metrics.AUPRO {
		t.Errorf("sweep %+v", v.Sweep)
	}
	if !strings.Contains(stdout, "washer: sigma 2, power 0.5, baseline 0: I-AUROC") {
		t.Errorf("stdout has no line for the sweep: %s", stdout)
	}
	if code, _, stderr := runCLI(t, "validate", "-sweep-power", "1,x", cat); code != exitUsage || !strings.Contains(stderr, `-sweep-power: "x"`) {
		t.Errorf("-sweep-power 1,x: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "validate", "-defects", "rusty", cat); code != exitUsage || !strings.Contains(stderr, `-defects "rusty"`) {
		t.Errorf("-defects rusty: exit %d, %s", code, stderr)
	}
}

// TestHoldOut checks the split: disjoint, complete, the share asked for,
// and the same for the same seed.
func TestHoldOut(t *testing.T) {
	fit, held := holdOut(50, 0.2, 7)
	if len(held) != 10 || len(fit) != 40 {
		t.Fatalf("%d held back, %d to fit", len(held), len(fit))
	}
	all := slices.Sorted(slices.Values(append(slices.Clone(fit), held...)))
	for i, v := range all {
		if v != i {
			t.Fatalf("the split is not a partition of 0..49: %v", all)
		}
	}
	f2, h2 := holdOut(50, 0.2, 7)
	if !slices.Equal(fit, f2) || !slices.Equal(held, h2) {
		t.Fatal("the split changed for the same seed")
	}
	if _, h3 := holdOut(50, 0.2, 8); slices.Equal(held, h3) {
		t.Fatal("another seed gave the same split")
	}
}

func TestPresetArg(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"-k", "5", "-preset", "paper", "DATA"}, "paper"},
		{[]string{"--preset=paper", "-no-train", "DATA"}, "paper"},
		{[]string{"-preset", "paper", "-preset", "default", "DATA"}, "default"},
		{[]string{"-o", "m.anm", "DATA", "--", "-preset", "paper"}, ""},
	} {
		if got := presetArg(c.args); got != c.want {
			t.Errorf("%q: preset %q, want %q", c.args, got, c.want)
		}
	}
}

// TestCorrupters runs every -defects kind on one image: the same size, a
// non-empty mask, and the same output for the same seed.
func TestCorrupters(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 64, 48))
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range src.Pix {
		src.Pix[i] = uint8(rng.IntN(256))
	}
	for _, kind := range []string{defectsPhotometric, defectsStructural, defectsLarge, defectsLogical, defectsBoth, defectsAll} {
		corrupt, ok := corrupters[kind]
		if !ok {
			t.Fatalf("no corrupter for -defects %s", kind)
		}
		for copy := range 3 {
			img, mask := corrupt(src, copy, rand.New(rand.NewPCG(2, uint64(copy))))
			again, _ := corrupt(src, copy, rand.New(rand.NewPCG(2, uint64(copy))))
			if img.Bounds() != src.Bounds() || mask.Bounds() != src.Bounds() || !slices.Equal(img.Pix, again.Pix) {
				t.Fatalf("%s, copy %d: bounds %v and %v, or not seeded", kind, copy, img.Bounds(), mask.Bounds())
			}
			if !slices.ContainsFunc(mask.Pix, func(v uint8) bool { return v > 0 }) {
				t.Errorf("%s, copy %d: empty mask", kind, copy)
			}
		}
	}
	if len(corrupters) != 6 {
		t.Errorf("%d kinds of -defects, the test knows 6", len(corrupters))
	}
}
