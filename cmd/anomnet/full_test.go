package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/org/anomnet"
)

// writeTall writes a w x h noisy gray PNG (and, with mask, its mask: a
// bright square near the top) to path.
func writeTall(t *testing.T, path string, w, h int, seed uint64, mask bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 9))
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			switch {
			case mask:
				if x >= w/3 && x < w/2 && y >= 4 && y < 16 {
					g.SetGray(x, y, color.Gray{255})
				}
			default:
				g.SetGray(x, y, color.Gray{uint8(100 + r.IntN(40))})
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, g); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFullInputCLI fits a model with -input full on tall images, checks
// that eval compares with the whole masks and says so, that predict
// writes maps, overlays and masks at each image's own size, and that a
// model refuses an eval or predict that asks for the other input.
func TestFullInputCLI(t *testing.T) {
	needWeights(t)
	shareBackbone(t)

	root := t.TempDir()
	cat := filepath.Join(root, "tall")
	const w, h = 70, 170
	for i, p := range []string{"train/good/0.png", "train/good/1.png", "train/good/2.png", "train/good/3.png", "test/dent/0.png"} {
		writeTall(t, filepath.Join(cat, p), w, h, uint64(i), false)
	}
	// A normal part of another size: the full input resizes it to the
	// frame; the tiled input scores it at its own, and eval's overlays
	// grid draws it in the same cells as the others.
	writeTall(t, filepath.Join(cat, "test/good/0.png"), 90, 150, 9, false)
	writeTall(t, filepath.Join(cat, "ground_truth/dent/0_mask.png"), w, h, 0, true)

	model := filepath.Join(root, "full.anm")
	code, _, errOut := runCLI(t, "fit", "-o", model, "-input", "full", "-full-side", "64", "-full-max", "160", "-k", "8", cat)
	if code != exitOK {
		t.Fatalf("fit: exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, "note:") {
		t.Errorf("fit: a note about shapes, all training images having one: %s", errOut)
	}
	// An image of another shape is resized to the frame, and predict says so.
	code, _, errOut = runCLI(t, "predict", "-out", filepath.Join(root, "gpred"), model, filepath.Join(cat, "test", "good", "0.png"))
	if code != exitOK || !strings.Contains(errOut, "note: 1 of 1 images (for example 90x150) have another shape than the 64x160 frame") {
		t.Errorf("predict of a 90 x 150 image with a 64 x 160 frame: exit %d: %s", code, errOut)
	}
	evalDir := filepath.Join(root, "eval")
	code, _, errOut = runCLI(t, "eval", "-input", "full", "-out", evalDir, model, cat)
	if code != exitOK {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	rep, b := readReport(t, filepath.Join(evalDir, "report.json"))
	// 70 x 170 with the shorter side at 64: 64 x 155, the longer side
	// rounded to 160.
	if rep.Input != anomnet.InputFull || rep.Width != 64 || rep.Height != 160 || rep.Crop != 0 || rep.Rows[0].AUPRO == nil {
		t.Errorf("report.json: %s", b)
	}
	md, err := os.ReadFile(filepath.Join(evalDir, "report.md"))
	if err != nil || !strings.Contains(string(md), "the whole image and mask resized to 64 x 160 (input full)") {
		t.Errorf("report.md does not state the protocol: %v\n%s", err, md)
	}

	pred := filepath.Join(root, "pred")
	line, _, rows, cols := predictOne(t, "-input", "full", "-save-maps", "-out", pred, model, filepath.Join(cat, "test", "dent", "0.png"))
	if rows != h || cols != w {
		t.Errorf("map %s: %d x %d, want the image's own %d rows of %d", line.Map, rows, cols, h, w)
	}
	for _, p := range []string{line.Overlay, line.Mask} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != w || cfg.Height != h {
			t.Errorf("%s: %dx%d (%v), want %dx%d", p, cfg.Width, cfg.Height, err, w, h)
		}
	}

	// The tiled input: the same images at their own resolution, in tiles.
	tiled := filepath.Join(root, "tile.anm")
	code, _, errOut = runCLI(t, "fit", "-o", tiled, "-input", "tile", "-tile-size", "64", "-k", "8", cat)
	if code != exitOK {
		t.Fatalf("fit -input tile: exit %d: %s", code, errOut)
	}
	tileEval := filepath.Join(root, "tile.eval")
	code, _, errOut = runCLI(t, "eval", "-input", "tile", "-json", filepath.Join(root, "tile.json"), "-out", tileEval, tiled, cat)
	if code != exitOK {
		t.Fatalf("eval -input tile: exit %d: %s", code, errOut)
	}
	rep, b = readReport(t, filepath.Join(root, "tile.json"))
	if rep.Input != anomnet.InputTile || rep.Width != 64 || rep.Rows[0].AUPRO == nil {
		t.Errorf("tile report.json: %s", b)
	}
	if _, err := os.Stat(filepath.Join(tileEval, "overlays.png")); err != nil {
		t.Errorf("tile eval: %v", err)
	}
	if line, _, rows, cols := predictOne(t, "-save-maps", "-out", filepath.Join(root, "tpred"), tiled, filepath.Join(cat, "test", "dent", "0.png")); rows != h || cols != w {
		t.Errorf("tile map %s: %d x %d, want %d x %d", line.Map, rows, cols, h, w)
	}

	// A crop model's outputs at the image's own size: NaN where the crop
	// did not look (rows 0 to 10 of 170: the crop keeps 16 to 240 of 256).
	cropModel := filepath.Join(root, "crop.anm")
	code, _, errOut = runCLI(t, "fit", "-o", cropModel, "-input", "crop", "-k", "8", cat)
	if code != exitOK {
		t.Fatalf("fit (crop): exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, "input auto") {
		t.Errorf("fit -input crop: %q", errOut)
	}
	// With no -input, these tall images take the full input.
	code, _, errOut = runCLI(t, "fit", "-o", filepath.Join(root, "auto.anm"), "-full-side", "64", "-full-max", "160", "-k", "8", cat)
	if code != exitOK || !strings.Contains(errOut, "input auto: full, frame 64x160 (the training images' median elongation, 2.43, is beyond 4:3; -input crop squashes them to squares)") {
		t.Errorf("fit (auto): exit %d: %s", code, errOut)
	}
	line, data, rows, cols := predictOne(t, "-own-size", "-save-maps", "-out", filepath.Join(root, "cpred"), cropModel, filepath.Join(cat, "test", "dent", "0.png"))
	if rows != h || cols != w {
		t.Fatalf("crop map at own size %s: %d x %d, want %d x %d", line.Map, rows, cols, h, w)
	}
	if v := data[5*w+35]; v == v {
		t.Errorf("row 5, outside the crop: %v, want NaN", v)
	}
	if v := data[85*w+35]; v != v {
		t.Error("row 85, inside the crop: NaN")
	}

	// The other input is refused, naming the model and the flag.
	code, _, errOut = runCLI(t, "eval", "-input", "crop", "-out", evalDir, model, cat)
	if code == exitOK || !strings.Contains(errOut, model+" was fitted with -input full, not crop") {
		t.Errorf("eval -input crop of a full model: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "predict", "-input", "crop", "-out", pred, model, cat)
	if code == exitOK || !strings.Contains(errOut, "was fitted with -input full, not crop") {
		t.Errorf("predict -input crop of a full model: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "eval", "-input", "full", "-out", tileEval, tiled, cat)
	if code == exitOK || !strings.Contains(errOut, "was fitted with -input tile, not full") {
		t.Errorf("eval -input full of a tiled model: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "eval", "-input", "tiles", "-out", evalDir, model, cat)
	if code == exitOK || !strings.Contains(errOut, `-input "tiles": want crop, full or tile`) {
		t.Errorf("eval -input tiles: exit %d: %s", code, errOut)
	}
}

// predictOne runs predict with args on one image and returns its JSON line
// and the map it saved (-save-maps) with its rows and columns.
func predictOne(t *testing.T, args ...string) (line prediction, data []float32, rows, cols int) {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{"predict"}, args...)...)
	if code != exitOK {
		t.Fatalf("predict %v: exit %d: %s", args, code, errOut)
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &line); err != nil {
		t.Fatalf("predict %v: %q: %v", args, out, err)
	}
	b, err := os.ReadFile(line.Map)
	if err != nil {
		t.Fatal(err)
	}
	if data, rows, cols, err = readNPY(b); err != nil {
		t.Fatalf("%s: %v", line.Map, err)
	}
	return line, data, rows, cols
}

func TestNoteOffFrame(t *testing.T) {
	cfg := anomnet.DefaultConfig()
	cfg.Input, cfg.Width, cfg.Height = anomnet.InputFull, 64, 160
	var b strings.Builder
	// 160x64 lies the other way: resized to the turned frame, it keeps
	// its shape (but not with -no-turn).
	noteOffFrame(&b, cfg, []image.Point{{70, 170}, {90, 150}, {66, 160}, {160, 64}}, "training images")
	if want := "note: 1 of 4 training images (for example 90x150) have another shape than the 64x160 frame"; !strings.Contains(b.String(), want) {
		t.Errorf("%q, want %q", b.String(), want)
	}
	b.Reset()
	noTurn := cfg
	noTurn.NoTurn = true
	noteOffFrame(&b, noTurn, []image.Point{{70, 170}, {90, 150}, {66, 160}, {160, 64}}, "training images")
	if want := "note: 2 of 4 training images (for example 90x150) have another shape than the 64x160 frame"; !strings.Contains(b.String(), want) {
		t.Errorf("no turn: %q, want %q", b.String(), want)
	}
	b.Reset()
	noteOffFrame(&b, cfg, []image.Point{{70, 170}, {64, 160}}, "images")
	crop := anomnet.DefaultConfig()
	noteOffFrame(&b, crop, []image.Point{{90, 150}}, "images")
	if b.Len() != 0 {
		t.Errorf("a note where every image fits, or for the crop input: %q", b.String())
	}
}
