package main

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/org/anomnet"
	"github.com/org/anomnet/internal/testutil"
)

// runCLI runs the command line as main does and returns the exit status
// and what went to stdout and stderr.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// forbidBackbone makes loading the backbone a test failure: the failures
// under test must come before it, in seconds, and need no weights.
func forbidBackbone(t *testing.T) {
	t.Helper()
	saved := loadBackbone
	loadBackbone = func(context.Context, string, io.Writer) (anomnet.Backbone, error) {
		t.Error("the backbone was loaded before the input was checked")
		return nil, errors.New("no backbone in this test")
	}
	t.Cleanup(func() { loadBackbone = saved })
}

// oneLine checks that s is exactly one line.
func oneLine(t *testing.T, s string) string {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("stderr is not one line: %q", s)
	}
	return strings.TrimSuffix(s, "\n")
}

func TestUsage(t *testing.T) {
	verbs := []string{"fit", "eval", "predict", "demo", "bench predict", "bench backbone", "bench adapter", "weights fetch", "version", "help"}
	code, out, errOut := runCLI(t)
	if code != exitUsage || out != "" {
		t.Errorf("no arguments: exit %d, stdout %q; want 2 and nothing", code, out)
	}
	for _, v := range verbs {
		if !strings.Contains(errOut, "\n  "+v+" ") {
			t.Errorf("the usage printed without arguments does not list %q:\n%s", v, errOut)
		}
	}
	code, out, _ = runCLI(t, "help")
	if code != exitOK || out != errOut {
		t.Errorf("help: exit %d, want 0 and the same usage on stdout; got\n%s", code, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout (exit 0) or stderr
	}{
		{[]string{"help", "fit"}, exitOK, "-plots"},
		{[]string{"help", "help"}, exitOK, "commands:"},
		{[]string{"-h", "-h"}, exitOK, "commands:"},
		{[]string{"help", "bench"}, exitOK, "bench predict"},
		{[]string{"fit", "-h"}, exitOK, "-epochs1"},
		{[]string{"eval", "--help"}, exitOK, "-out"},
		{[]string{"help", "bench", "predict"}, exitOK, "-model"},
		{[]string{"version"}, exitOK, runtime.Version()},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"bench"}, exitUsage, "needs a sub-command"},
		{[]string{"bench", "frobnicate"}, exitUsage, `unknown command "bench frobnicate"`},
		{[]string{"fit"}, exitUsage, "fit wants DATA/CATEGORY|DIR, got 0"},
		{[]string{"fit", "a", "b"}, exitUsage, "got 2"},
		{[]string{"fit", "-nope", "data/cat"}, exitUsage, "flag provided but not defined: -nope"},
		{[]string{"fit", "-epochs1", "x", "data/cat"}, exitUsage, "-epochs1"},
		{[]string{"fit", "-crop", "300", "data/cat"}, exitUsage, "crop 300"},
		{[]string{"fit", "-epochs1", "-1", "data/cat"}, exitUsage, "negative epochs"},
		{[]string{"eval", "model.anm"}, exitUsage, "eval wants MODEL DATA/CATEGORY"},
		{[]string{"predict", "-chunk", "0", "m", "x"}, exitUsage, "-chunk"},
		{[]string{"predict", "-input", "tiles", "m", "x"}, exitUsage, `-input "tiles": want crop, full or tile`},
		{[]string{"eval", "-input", "tiles", "m", "x"}, exitUsage, `-input "tiles": want crop, full or tile`},
		{[]string{"version", "extra"}, exitUsage, "version wants no arguments"},
		{[]string{"demo", "extra"}, exitUsage, "demo wants no arguments"},
		{[]string{"demo", "-input", "tiles"}, exitUsage, `input "tiles" (want auto, crop, full or tile)`},
		{[]string{"fit", "-input", "tiles", "data/cat"}, exitUsage, `input "tiles" (want auto, crop, full or tile)`},
		{[]string{"fit", "-input", "tile", "-tile-size", "100", "data/cat"}, exitUsage, "tiles of 100 pixels"},
		{[]string{"fit", "-input", "full", "-full-side", "-1", "data/cat"}, exitUsage, "full frame: side -1"},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut)
		}
		got := out
		if tc.code != exitOK {
			got = oneLine(t, errOut)
			if out != "" {
				t.Errorf("%v: stdout %q on a usage error", tc.args, out)
			}
			if !strings.HasPrefix(got, "anomnet") || !strings.Contains(got, "see 'anomnet help") {
				t.Errorf("%v: %q lacks the prefix or the pointer to help", tc.args, got)
			}
		}
		if !strings.Contains(got, tc.out) {
			t.Errorf("%v: output %q does not contain %q", tc.args, got, tc.out)
		}
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	fs := newFlags("x", "A B", "")
	o := fs.String("o", "", "")
	v := fs.Bool("v", false, "")
	pos, err := fs.parse([]string{"a", "-o", "out", "b", "-v"}, 2, io.Discard)
	if err != nil || !slices.Equal(pos, []string{"a", "b"}) || *o != "out" || !*v {
		t.Errorf("got %v, %v, -o %q, -v %v", pos, err, *o, *v)
	}
	fs = newFlags("x", "A B", "")
	fs.Bool("v", false, "")
	pos, err = fs.parse([]string{"-v", "--", "-a", "-v"}, 2, io.Discard)
	if err != nil || !slices.Equal(pos, []string{"-a", "-v"}) {
		t.Errorf("after --: got %v, %v", pos, err)
	}
}

func TestErrorLine(t *testing.T) {
	for _, tc := range []struct{ err, want string }{
		{"anomnet/dataset: x.png: bad", "anomnet/dataset: x.png: bad"},
		{"open m.anm: no such file", "anomnet: open m.anm: no such file"},
		{"npm failed:\n  line 1\n\tline 2\n", "anomnet: npm failed: line 1 line 2"},
	} {
		if got := errorLine(errors.New(tc.err)); got != tc.want {
			t.Errorf("errorLine(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// writeTestPNG writes a small noisy RGB (or, for masks, 0/255 gray) PNG.
func writeTestPNG(t *testing.T, path string, seed uint64, mask bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	var img image.Image
	if mask {
		g := image.NewGray(image.Rect(0, 0, 40, 40))
		for y := 10; y < 20; y++ {
			for x := 12; x < 25; x++ {
				g.SetGray(x, y, color.Gray{255})
			}
		}
		img = g
	} else {
		m := image.NewRGBA(image.Rect(0, 0, 40, 40))
		for i := range m.Pix {
			m.Pix[i] = uint8(r.IntN(256))
		}
		for i := 3; i < len(m.Pix); i += 4 {
			m.Pix[i] = 255
		}
		img = m
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// makeCategory writes a small MVTec AD category under root and returns
// its path: 3 training images, 1 normal and 2 "crack" test images with
// their masks.
func makeCategory(t *testing.T, root string) string {
	t.Helper()
	cat := filepath.Join(root, "part")
	for i, p := range []string{"train/good/000.png", "train/good/001.png", "train/good/002.png", "test/good/000.png", "test/crack/000.png", "test/crack/001.png"} {
		writeTestPNG(t, filepath.Join(cat, p), uint64(i), false)
	}
	writeTestPNG(t, filepath.Join(cat, "ground_truth/crack/000_mask.png"), 0, true)
	writeTestPNG(t, filepath.Join(cat, "ground_truth/crack/001_mask.png"), 0, true)
	return cat
}

// dirNames lists a folder's entries, hidden ones included.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestBadInput checks that bad data and an unwritable output each fail
// with one line naming the file, exit status 1, before the backbone
// loads, and leave no model (nor a temporary file) behind.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup breaks the category and returns the command line and the
		// file the error must name.
		setup func(t *testing.T, cat, out string) (args []string, names string)
	}{
		{"corrupt PNG in train/good", func(t *testing.T, cat, out string) ([]string, string) {
			p := filepath.Join(cat, "train/good/001.png")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b[:len(b)/2], 0o644); err != nil { // truncated: the header reads, the pixels do not
				t.Fatal(err)
			}
			return []string{"fit", "-o", filepath.Join(out, "model.anm"), cat}, p
		}},
		{"not an image in train/good", func(t *testing.T, cat, out string) ([]string, string) {
			p := filepath.Join(cat, "train/good/002.png")
			if err := os.WriteFile(p, []byte("this is no PNG"), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"fit", "-o", filepath.Join(out, "model.anm"), "-plots", filepath.Join(out, "plots"), cat}, p
		}},
		// fit reads train/good only: a missing mask is eval's error (below).
		{"plain folder without images", func(t *testing.T, cat, out string) ([]string, string) {
			dir := filepath.Join(filepath.Dir(cat), "camera")
			if err := os.MkdirAll(filepath.Join(dir, "day1"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "day1", "notes.txt"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"fit", "-o", filepath.Join(out, "model.anm"), dir}, dir + ": no training images"
		}},
		{"empty train/good", func(t *testing.T, cat, out string) ([]string, string) {
			dir := filepath.Join(cat, "train/good")
			for _, n := range dirNames(t, dir) {
				if err := os.Remove(filepath.Join(dir, n)); err != nil {
					t.Fatal(err)
				}
			}
			return []string{"fit", "-o", filepath.Join(out, "model.anm"), cat}, dir
		}},
		{"output under a regular file", func(t *testing.T, cat, out string) ([]string, string) {
			// Tests may run as root, whom a read-only folder does not stop;
			// a path through a regular file fails for everyone.
			file := filepath.Join(out, "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(file, "model.anm")
			return []string{"fit", "-o", p, cat}, p
		}},
		{"output is a folder", func(t *testing.T, cat, out string) ([]string, string) {
			p := filepath.Join(out, "sub")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return []string{"fit", "-o", p, cat}, p
		}},
		{"plots under a regular file", func(t *testing.T, cat, out string) ([]string, string) {
			file := filepath.Join(out, "file")
			if err := os.WriteFile(file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(file, "plots")
			return []string{"fit", "-o", filepath.Join(out, "model.anm"), "-plots", p, cat}, p
		}},
		{"missing category", func(t *testing.T, cat, out string) ([]string, string) {
			p := filepath.Join(filepath.Dir(cat), "nope")
			return []string{"fit", "-o", filepath.Join(out, "model.anm"), p}, p
		}},
		{"eval: missing model", func(t *testing.T, cat, out string) ([]string, string) {
			p := filepath.Join(out, "none.anm")
			return []string{"eval", "-out", filepath.Join(out, "report"), p, cat}, p
		}},
		{"eval: missing mask", func(t *testing.T, cat, out string) ([]string, string) {
			m := filepath.Join(out, "model.anm")
			if err := os.WriteFile(m, []byte("not read: the data fails first"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(cat, "ground_truth/crack/000_mask.png")); err != nil {
				t.Fatal(err)
			}
			return []string{"eval", "-out", filepath.Join(out, "report"), m, cat}, filepath.Join(cat, "test/crack/000.png")
		}},
		{"eval: report under a regular file", func(t *testing.T, cat, out string) ([]string, string) {
			m := filepath.Join(out, "model.anm")
			if err := os.WriteFile(m, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(m, "report")
			return []string{"eval", "-out", p, m, cat}, p
		}},
		{"predict: folder without images", func(t *testing.T, cat, out string) ([]string, string) {
			m := filepath.Join(out, "model.anm")
			if err := os.WriteFile(m, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(cat, "ground_truth", "none")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return []string{"predict", "-out", filepath.Join(out, "pred"), m, p}, p
		}},
		{"predict: 20000x20000 PNG", func(t *testing.T, cat, out string) ([]string, string) {
			m := filepath.Join(out, "model.anm")
			if err := os.WriteFile(m, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(out, "huge.png")
			if err := os.WriteFile(p, testutil.PNGHeader(20000, 20000), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"predict", "-out", filepath.Join(out, "pred"), m, p}, p
		}},
		{"fit: 20000x20000 PNG in train/good", func(t *testing.T, cat, out string) ([]string, string) {
			p := filepath.Join(cat, "train/good/003.png")
			if err := os.WriteFile(p, testutil.PNGHeader(20000, 20000), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"fit", "-o", filepath.Join(out, "model.anm"), cat}, p
		}},
		{"predict: missing image", func(t *testing.T, cat, out string) ([]string, string) {
			m := filepath.Join(out, "model.anm")
			if err := os.WriteFile(m, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(cat, "test/good/nope.png")
			return []string{"predict", "-out", filepath.Join(out, "pred"), m, p}, p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forbidBackbone(t)
			root := t.TempDir()
			cat := makeCategory(t, filepath.Join(root, "data"))
			out := filepath.Join(root, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			// A model saved by an earlier run, which no failure may touch
			// (eval and predict cases replace it with their own).
			prev := filepath.Join(out, "model.anm")
			if err := os.WriteFile(prev, []byte("an earlier model"), 0o644); err != nil {
				t.Fatal(err)
			}
			args, names := tc.setup(t, cat, out)
			before := dirNames(t, out)
			kept := map[string][]byte{}
			for _, n := range before {
				if b, err := os.ReadFile(filepath.Join(out, n)); err == nil {
					kept[n] = b
				}
			}
			code, stdout, stderr := runCLI(t, args...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			line := oneLine(t, stderr)
			t.Logf("anomnet %s\n%s", strings.Join(args, " "), line)
			if !strings.Contains(line, names) {
				t.Errorf("error %q does not name %s", line, names)
			}
			for n, b := range kept {
				if got, err := os.ReadFile(filepath.Join(out, n)); err != nil || !bytes.Equal(got, b) {
					t.Errorf("%s was changed or lost (%v)", n, err)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			// Nothing new in the output folder but the folders asked for.
			for _, n := range dirNames(t, out) {
				if !slices.Contains(before, n) && n != "plots" && n != "report" && n != "pred" {
					t.Errorf("%s left behind in the output folder", n)
				}
			}
			if dir := filepath.Join(out, "plots"); slices.Contains(dirNames(t, out), "plots") && len(dirNames(t, dir)) > 0 {
				t.Errorf("files left in the plots folder: %v", dirNames(t, dir))
			}
		})
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{3, 1, 2}
	if m := median(xs); m != 2 {
		t.Errorf("median %v = %v", xs, m)
	}
	if xs[0] != 3 {
		t.Error("median sorted its argument")
	}
	if m := median([]float64{4, 1, 3, 2}); m != 3 {
		t.Errorf("median of four = %v, want the upper middle 3", m)
	}
	if s := fmtRatios([]float64{1, 0.956}); s != "1.00 0.96" {
		t.Errorf("fmtRatios = %q", s)
	}
}

// TestGridFlag checks -grid beside -taps: the largest map by default, the
// tap it names, and an error where it names a tap that -taps leaves out.
func TestGridFlag(t *testing.T) {
	for _, c := range []struct {
		args       []string
		grid, fail string
	}{
		{nil, "", ""},
		{[]string{"-taps", "stage1,stage2,stage3", "-grid", "stage2"}, "stage2", ""},
		{[]string{"-taps", "stage3"}, "", ""},
		{[]string{"-preset", "paper"}, "", ""},
		{[]string{"-taps", "stage1,stage2", "-grid", "stage1"}, "stage1", ""},
		{[]string{"-taps", "stage3", "-grid", "stage2"}, "", `grid "stage2" is not one of the taps`},
	} {
		fs := newFlags("x", "", "")
		_, cfg, err := fs.parseConfig(c.args, 0, io.Discard)
		if c.fail != "" {
			if err == nil || !strings.Contains(err.Error(), c.fail) {
				t.Errorf("%v: error %v, want one with %q", c.args, err, c.fail)
			}
			continue
		}
		if err != nil || cfg.Grid != c.grid {
			t.Errorf("%v: grid %q, %v; want %q", c.args, cfg.Grid, err, c.grid)
		}
	}
}

func TestFlagIsSet(t *testing.T) {
	fs := newFlags("x", "", "")
	fs.Int("chunk", 32, "")
	fs.Int("other", 1, "")
	if _, err := fs.parse([]string{"-chunk", "32"}, 0, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !fs.isSet("chunk") || fs.isSet("other") {
		t.Errorf("isSet: chunk %v (given, at its default value), other %v (not given)", fs.isSet("chunk"), fs.isSet("other"))
	}
}
