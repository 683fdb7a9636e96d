package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
)

// needWeights skips a test when the ResNet-50 weights are not in the
// cache, except under CI=true, where their absence is a failure.
func needWeights(t *testing.T) {
	t.Helper()
	if _, err := backbone.CachedResNet50(backbone.FetchOptions{}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the weights are missing: %v", err)
		}
		t.Skipf("needs the ResNet-50 weights (anomnet weights fetch): %v", err)
	}
}

// readReport reads eval's JSON report at path, and its bytes for messages.
func readReport(t *testing.T, path string) (evalReport, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep evalReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep, b
}

// shareBackbone makes the commands of one test load the backbone once
// (loading it takes seconds) and returns where it is kept once loaded.
func shareBackbone(t *testing.T) *anomnet.Backbone {
	var bb anomnet.Backbone
	saved := loadBackbone
	loadBackbone = func(ctx context.Context, cache string, stderr io.Writer) (anomnet.Backbone, error) {
		if bb == nil {
			var err error
			if bb, err = saved(ctx, cache, stderr); err != nil {
				return nil, err
			}
		}
		return bb, nil
	}
	t.Cleanup(func() { loadBackbone = saved })
	return &bb
}

// TestEndToEnd fits a tiny model on a small synthetic set, evaluates it
// and predicts its test folder with -save-maps, then checks the files of
// each step and that predict's maps, scores and eval's report agree.
func TestEndToEnd(t *testing.T) {
	needWeights(t)
	bb := shareBackbone(t)

	root := t.TempDir()
	synth := dataset.SynthOptions{Size: 128, Train: 4, TestGood: 2, TestDefect: 3, Categories: []string{"washer"}}
	if err := dataset.WriteSynthetic(filepath.Join(root, "data"), synth, nil); err != nil {
		t.Fatal(err)
	}
	cat := filepath.Join(root, "data", "washer")
	model := filepath.Join(root, "washer.anm")
	small := []string{"-resize", "128", "-crop", "112", "-epochs1", "2", "-epochs2", "1", "-k", "8", "-batch", "2", "-sample", "256"}

	code, out, errOut := runCLI(t, append(append([]string{"fit", "-o", model, "-plots", filepath.Join(root, "plots")}, small...), cat)...)
	if code != exitOK {
		t.Fatalf("fit: exit %d: %s", code, errOut)
	}
	for _, p := range []string{model, filepath.Join(root, "plots", "centroids.png"), filepath.Join(root, "plots", "losses.png")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("fit: %v (stdout %q)", err, out)
		}
	}

	code, out, errOut = runCLI(t, "eval", model, cat)
	if code != exitOK {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	evalDir := filepath.Join(root, "washer.eval") // the default: next to the model
	for _, name := range []string{"report.json", "report.md", "roc.png", "overlays.png"} {
		if _, err := os.Stat(filepath.Join(evalDir, name)); err != nil {
			t.Errorf("eval: %v", err)
		}
	}
	if !strings.Contains(out, "I-AUROC") || !strings.Contains(out, filepath.Join(evalDir, "report.md")) {
		t.Errorf("eval printed %q", out)
	}
	rep, b := readReport(t, filepath.Join(evalDir, "report.json"))
	if rep.Images != 5 || rep.Crop != 112 || len(rep.Rows) != 1+3 || rep.Rows[0].IAUROC == nil || rep.Rows[0].AUPRO == nil {
		t.Errorf("report.json: %s", b)
	}
	evalScore := map[string]float64{}
	for _, s := range rep.Scores {
		evalScore[s.Path] = s.Score
	}

	pred := filepath.Join(root, "pred")
	code, out, errOut = runCLI(t, "predict", "-save-maps", "-out", pred, model, filepath.Join(cat, "test"))
	if code != exitOK {
		t.Fatalf("predict: exit %d: %s", code, errOut)
	}
	var lines []prediction
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var p prediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("predict: line %q: %v", sc.Text(), err)
		}
		lines = append(lines, p)
	}
	if len(lines) != 5 {
		t.Fatalf("predict: %d JSON lines, want 5:\n%s", len(lines), out)
	}
	for _, p := range lines {
		rel, _ := filepath.Rel(filepath.Join(cat, "test"), p.Path)
		if want := filepath.Join(pred, strings.TrimSuffix(rel, ".png")+".npy"); p.Map != want {
			t.Errorf("%s: map at %s, want %s (mirroring test/<defect>/)", p.Path, p.Map, want)
		}
		for _, f := range []string{p.Overlay, p.Mask} {
			if _, err := dataset.Open(f); err != nil {
				t.Error(err)
			}
		}
		b, err := os.ReadFile(p.Map)
		if err != nil {
			t.Fatal(err)
		}
		m, rows, cols, err := readNPY(b)
		if err != nil {
			t.Fatalf("%s: %v", p.Map, err)
		}
		if rows != 112 || cols != 112 {
			t.Errorf("%s: %d x %d", p.Map, rows, cols)
		}
		// The default image score is the maximum of the map blurred
		// with ImageSigma, as wide as the map's Sigma or wider: a wider
		// Gaussian is the narrower one blurred again, so its maximum is
		// at most the map's, up to the borders' handling.
		if max := float64(slices.Max(m)); p.Score > max*1.02 || p.Score < max/2 {
			t.Errorf("%s: score %v, map max %v", p.Path, p.Score, max)
		}
		if s, ok := evalScore[p.Path]; !ok || math.Abs(s-p.Score) > 1e-6*math.Abs(s) {
			t.Errorf("%s: predict scores %v, eval %v (listed %v)", p.Path, p.Score, s, ok)
		}
	}

	// Re-thresholding by rate agrees between the CLI and the API.
	code, out, errOut = runCLI(t, "predict", "-false-alarms", "0.4", "-out", filepath.Join(root, "pred40"), model, filepath.Join(cat, "test"))
	if code != exitOK {
		t.Fatalf("predict -false-alarms: exit %d: %s", code, errOut)
	}
	m, err := anomnet.LoadFile(model, *bb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetFalseAlarmRate(0.4); err != nil {
		t.Fatal(err)
	}
	thr := m.Calibration().ImageThreshold
	if !strings.Contains(errOut, fmt.Sprintf("image %.4g", thr)) {
		t.Errorf("predict -false-alarms 0.4 printed %q, the API's threshold is %.4g", errOut, thr)
	}
	sc = bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var p prediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if p.Anomalous != (p.Score > thr) {
			t.Errorf("%s: score %v, anomalous %v at the API's threshold %v", p.Path, p.Score, p.Anomalous, thr)
		}
		n++
	}
	if n != 5 {
		t.Errorf("predict -false-alarms: %d lines", n)
	}
	// And eval's decisions at that rate.
	code, _, errOut = runCLI(t, "eval", "-false-alarms", "0.4", "-out", filepath.Join(root, "eval40"), model, cat)
	if code != exitOK {
		t.Fatalf("eval -false-alarms: exit %d: %s", code, errOut)
	}
	rep, _ = readReport(t, filepath.Join(root, "eval40", "report.json"))
	if rep.Calibration.ImageThreshold != thr || rep.FalseAlarms == nil || rep.FalseAlarms.Target != 0.4 {
		t.Errorf("eval -false-alarms 0.4: threshold %v, false alarms %+v; the API's threshold is %v", rep.Calibration.ImageThreshold, rep.FalseAlarms, thr)
	}
	for _, s := range rep.Scores {
		if s.Anomalous != (s.Score > thr) {
			t.Errorf("eval: %s: score %v, anomalous %v at the API's threshold %v", s.Path, s.Score, s.Anomalous, thr)
		}
	}
}

// TestFitFolders checks that fit takes what a factory has at first: an
// MVTec AD category with only train/good (no test folder), and a plain
// folder of good images in sub-folders; and that the two fits, on the
// same images, make the same model as the whole category with its test
// images and masks: neither the centroids nor the calibration that sets
// the thresholds look at a test image.
func TestFitFolders(t *testing.T) {
	needWeights(t)
	root := t.TempDir()
	synth := dataset.SynthOptions{Size: 128, Train: 4, TestGood: 1, TestDefect: 1, Categories: []string{"washer"}}
	if err := dataset.WriteSynthetic(filepath.Join(root, "data"), synth, nil); err != nil {
		t.Fatal(err)
	}
	whole := filepath.Join(root, "data", "washer")
	good := filepath.Join(whole, "train", "good")
	onlyTrain := filepath.Join(root, "onlytrain")
	plain := filepath.Join(root, "camera")
	ents, err := os.ReadDir(good)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ents {
		b, err := os.ReadFile(filepath.Join(good, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{
			filepath.Join(onlyTrain, "train", "good", e.Name()),
			filepath.Join(plain, fmt.Sprintf("day%d", i/2), e.Name()), // sorted as in train/good
		} {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	small := []string{"-resize", "128", "-crop", "112", "-k", "8"}
	// The fit's recorded time would differ between the two fits.
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	var models [][]byte
	for _, dir := range []string{onlyTrain, plain, whole} {
		model := dir + ".anm"
		code, out, errOut := runCLI(t, append(append([]string{"fit", "-o", model}, small...), dir)...)
		if code != exitOK {
			t.Fatalf("fit %s: exit %d: %s", dir, code, errOut)
		}
		if want := fmt.Sprintf("fitted %s on %d images", filepath.Base(dir), len(ents)); !strings.Contains(out, want) {
			t.Errorf("fit %s: %q, want %q", dir, out, want)
		}
		b, err := os.ReadFile(model)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, b)
	}
	if !bytes.Equal(models[0], models[1]) {
		t.Error("the same images in the two layouts made different models")
	}
	if !bytes.Equal(models[0], models[2]) {
		t.Error("the category with its test images made another model than its train/good alone")
	}
}
