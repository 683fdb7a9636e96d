package main

import (
	"encoding/json"
	"image"
	"image/color"
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

// TestCorruptedSetOriginal paints the defects on the original image and
// preprocesses image and mask after: the copies have the model's input
// size, the mask is the painted one carried through the crop, and the
// pixels it marks changed.
func TestCorruptedSetOriginal(t *testing.T) {
	orig := image.NewRGBA(image.Rect(0, 0, 120, 300))
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range orig.Pix {
		orig.Pix[i] = uint8(100 + rng.IntN(20))
	}
	pre := dataset.Preprocess{Resize: 64, Crop: 56}
	items := []dataset.Item{{Sample: dataset.Sample{Path: "a.png"}, Image: pre.Image(orig)}}
	calls := 0
	original := func(k int) (image.Image, dataset.Preprocess, error) {
		calls++
		return orig, pre, nil
	}
	// A corrupter whose defect is known: the top-left 60 x 150 quarter
	// turned white.
	quarter := func(img image.Image, _ int, _ *rand.Rand) (*image.RGBA, *image.Gray) {
		b := img.Bounds()
		out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		mask := image.NewGray(out.Bounds())
		for y := range b.Dy() {
			for x := range b.Dx() {
				c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				if x < 60 && y < 150 {
					c, mask.Pix[y*mask.Stride+x] = color.RGBA{255, 255, 255, 255}, 255
				}
				out.SetRGBA(x, y, c)
			}
		}
		return out, mask
	}
	val, imgs, err := corruptedSet(items, []int{0}, 2, 1, quarter, original)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(val) != 3 || len(imgs) != 3 {
		t.Fatalf("%d originals read, %d items, %d images", calls, len(val), len(imgs))
	}
	d := val[1]
	if d.Image.Bounds() != image.Rect(0, 0, 56, 56) || len(d.Mask) != 56*56 {
		t.Fatalf("copy %v with %d mask values, want the 56 x 56 crop", d.Image.Bounds(), len(d.Mask))
	}
	want := pre.Mask(func() image.Image { _, m := quarter(orig, 0, nil); return m }(), 127)
	if !slices.Equal(d.Mask, want) {
		t.Error("the mask is not the painted one carried through the crop")
	}
	// Bilinear resizing blurs the edge by a pixel: compare the means.
	var sum [2]float64
	var n [2]int
	for i, in := range d.Mask {
		k := 0
		if in {
			k = 1
		}
		sum[k] += float64(d.Image.Pix[4*i])
		n[k]++
	}
	if n[1] == 0 || sum[1]/float64(n[1]) < 240 || sum[0]/float64(n[0]) > 130 {
		t.Errorf("mean grey %v over %v pixels outside and inside the mask: the mask is not on the painted part", sum, n)
	}
	if code, _, stderr := runCLI(t, "validate", "-paint", "walls", "x"); code != exitUsage || !strings.Contains(stderr, `-paint "walls"`) {
		t.Errorf("-paint walls: exit %d, %s", code, stderr)
	}
}
