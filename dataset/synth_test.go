package dataset

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smallSynth is a quick layout for the file tests.
var smallSynth = SynthOptions{Seed: 7, Size: 128, Train: 3, TestGood: 2, TestDefect: 4}

func synthEncodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func TestSynthImageDeterministic(t *testing.T) {
	opts := SynthOptions{Seed: 42, Size: 128}
	for _, cat := range SynthCategories() {
		defects, err := SynthDefects(cat)
		require.NoError(t, err)
		for _, d := range append([]string{"good"}, defects...) {
			a, am, err := SynthImage(cat, 3, d, opts)
			require.NoError(t, err)
			b, bm, err := SynthImage(cat, 3, d, opts)
			require.NoError(t, err)
			assert.Equal(t, synthEncodePNG(t, a), synthEncodePNG(t, b), "%s/%s image", cat, d)
			assert.Equal(t, synthEncodePNG(t, am), synthEncodePNG(t, bm), "%s/%s mask", cat, d)
		}
		// Another seed or index is another image.
		a, _, _ := SynthImage(cat, 3, "good", opts)
		b, _, _ := SynthImage(cat, 4, "good", opts)
		c, _, _ := SynthImage(cat, 3, "good", SynthOptions{Seed: 43, Size: 128})
		assert.NotEqual(t, a.Pix, b.Pix, cat)
		assert.NotEqual(t, a.Pix, c.Pix, cat)
	}
}

// synthReadTree maps every file under dir (slash paths) to its bytes.
func synthReadTree(t *testing.T, dir string) map[string][]byte {
	files := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	}))
	return files
}

func TestWriteSyntheticLayout(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "synth")
	var calls [][2]int
	require.NoError(t, WriteSynthetic(dir, smallSynth, func(done, total int) { calls = append(calls, [2]int{done, total}) }))

	total := len(SynthCategories()) * (3 + 2 + 4)
	require.NotEmpty(t, calls)
	assert.Equal(t, [2]int{0, total}, calls[0])
	assert.Equal(t, [2]int{total, total}, calls[len(calls)-1])
	for k := 1; k < len(calls); k++ {
		assert.Equal(t, calls[k-1][0]+1, calls[k][0], "progress counts one image at a time")
	}

	files := synthReadTree(t, dir)
	for _, cat := range SynthCategories() {
		defects, _ := SynthDefects(cat)
		want := []string{cat + "/" + synthStamp}
		for i := range 3 {
			want = append(want, cat+"/train/good/"+[]string{"000", "001", "002"}[i]+".png")
		}
		want = append(want, cat+"/test/good/000.png", cat+"/test/good/001.png")
		// Four defective images over three types: 2, 1, 1.
		for d, defect := range defects {
			stems := []string{"000"}
			if d == 0 {
				stems = append(stems, "001")
			}
			for _, st := range stems {
				want = append(want, cat+"/test/"+defect+"/"+st+".png", cat+"/ground_truth/"+defect+"/"+st+"_mask.png")
			}
		}
		var got []string
		for p := range files {
			if strings.HasPrefix(p, cat+"/") {
				got = append(got, p)
			}
		}
		assert.ElementsMatch(t, want, got, cat)
	}
	for p, b := range files {
		if !strings.HasSuffix(p, ".png") {
			continue
		}
		img, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err, p)
		assert.Equal(t, image.Rect(0, 0, 128, 128), img.Bounds(), p)
		switch {
		case strings.Contains(p, "/ground_truth/"):
			g, ok := img.(*image.Gray)
			require.True(t, ok, "%s is %T, want 8-bit gray", p, img)
			assert.True(t, slices.ContainsFunc(g.Pix, func(v uint8) bool { return v == 255 }), "%s is empty", p)
			for _, v := range g.Pix {
				if v != 0 && v != 255 {
					t.Fatalf("%s holds %d, want 0 or 255", p, v)
				}
			}
		case strings.HasPrefix(p, "grain/"):
			assert.IsType(t, &image.Gray{}, img, p)
		default:
			assert.IsType(t, &image.RGBA{}, img, p)
		}
	}
	// The files are the in-memory images.
	img, mask, err := SynthImage("weave", synthTestDefectBase, "scratch", smallSynth)
	require.NoError(t, err)
	assert.Equal(t, synthEncodePNG(t, img), files["weave/test/scratch/000.png"])
	assert.Equal(t, synthEncodePNG(t, mask), files["weave/ground_truth/scratch/000_mask.png"])

	// Nothing is left beside dir.
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	// Same options again: kept as is, byte for byte, and counted as done.
	calls = nil
	require.NoError(t, WriteSynthetic(dir, smallSynth, func(done, total int) { calls = append(calls, [2]int{done, total}) }))
	assert.Equal(t, [2]int{total, total}, calls[len(calls)-1])
	assert.Equal(t, files, synthReadTree(t, dir))

	// Other options over an existing category: an error, nothing touched.
	other := smallSynth
	other.Seed++
	err = WriteSynthetic(dir, other, nil)
	assert.ErrorContains(t, err, "other options")
	assert.Equal(t, files, synthReadTree(t, dir))

	// A directory that is not ours is never overwritten.
	foreign := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(foreign, "weave", "train"), 0o755))
	assert.ErrorContains(t, WriteSynthetic(foreign, smallSynth, nil), "not a synthetic category")
}

func TestWriteSyntheticDeterministic(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	opts := smallSynth
	opts.Categories = []string{"washer", "grain"}
	require.NoError(t, WriteSynthetic(a, opts, nil))
	prev := runtime.GOMAXPROCS(1) // another schedule must not matter
	defer runtime.GOMAXPROCS(prev)
	require.NoError(t, WriteSynthetic(b, opts, nil))
	fa, fb := synthReadTree(t, a), synthReadTree(t, b)
	assert.Len(t, fa, 2*(1+3+2+4+4))
	assert.Equal(t, fa, fb)
}

func TestSynthOptionErrors(t *testing.T) {
	for name, o := range map[string]SynthOptions{
		"unknown category": {Categories: []string{"carpet"}},
		"twice":            {Categories: []string{"weave", "weave"}},
		"negative":         {Train: -1},
		"tiny":             {Size: 16},
	} {
		assert.Error(t, WriteSynthetic(t.TempDir(), o, nil), name)
		_, _, err := SynthImage("weave", 0, "good", o)
		if name != "unknown category" && name != "twice" {
			assert.Error(t, err, name)
		}
	}
	_, _, err := SynthImage("weave", 0, "missing", SynthOptions{})
	assert.ErrorContains(t, err, "no defect")
	_, _, err = SynthImage("pill", 0, "good", SynthOptions{})
	assert.ErrorContains(t, err, "unknown")
	_, _, err = SynthImage("weave", -1, "good", SynthOptions{})
	assert.Error(t, err)
	_, err = SynthDefects("pill")
	assert.Error(t, err)
}

// TestSynthDefectsAreReal checks each defect against its defect-free twin:
// the image changes inside the mask, not outside it (beyond the edge
// ramp), and the mask lies within the 224 crop that preprocessing keeps.
func TestSynthDefectsAreReal(t *testing.T) {
	opts := SynthOptions{Seed: 1}
	for _, cat := range SynthCategories() {
		defects, _ := SynthDefects(cat)
		for _, d := range defects {
			var in, out, area []float64
			for k := range 8 {
				idx := synthTestDefectBase + k
				img, mask, err := SynthImage(cat, idx, d, opts)
				require.NoError(t, err)
				twin, twinMask, err := SynthImage(cat, idx, "good", opts)
				require.NoError(t, err)
				require.False(t, slices.Contains(twinMask.Pix, 255), "a good image has an empty mask")
				var sin, sout float64
				var nin, nout, inCrop int
				for i, m := range mask.Pix {
					diff := 0.0
					for ch := range 3 {
						diff += math.Abs(float64(img.Pix[4*i+ch]) - float64(twin.Pix[4*i+ch]))
					}
					if m == 255 {
						sin += diff / 3
						nin++
						if x, y := i%256, i/256; x >= 16 && x < 240 && y >= 16 && y < 240 {
							inCrop++
						}
					} else {
						sout += diff / 3
						nout++
					}
				}
				require.Positive(t, nin, "%s/%s %d: empty mask", cat, d, k)
				// PRO averages over connected regions: a defect must not
				// leave stray fragments of mask.
				assert.Equal(t, 1, synthRegions(mask), "%s/%s %d: 8-connected mask regions", cat, d, k)
				assert.GreaterOrEqual(t, float64(inCrop), 0.9*float64(nin), "%s/%s %d: defect outside the crop", cat, d, k)
				in, out, area = append(in, sin/float64(nin)), append(out, sout/float64(nout)), append(area, float64(nin))
			}
			mi, mo := synthMean(in), synthMean(out)
			t.Logf("%-6s %-7s synthMean |defect - twin| inside %5.1f, outside %.3f (8-bit); mask area %.0f px", cat, d, mi, mo, synthMean(area))
			assert.Greater(t, mi, 8.0, "%s/%s: too faint to see", cat, d)
			assert.Less(t, mo, 0.1, "%s/%s: changes outside the mask", cat, d)
		}
	}
}

// synthRegions counts the 8-connected regions of a mask.
func synthRegions(m *image.Gray) int {
	n := m.Rect.Dx()
	seen := make([]bool, len(m.Pix))
	count := 0
	for start, v := range m.Pix {
		if v == 0 || seen[start] {
			continue
		}
		count++
		stack := []int{start}
		seen[start] = true
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					x, y := i%n+dx, i/n+dy
					if j := y*n + x; x >= 0 && y >= 0 && x < n && y < n && m.Pix[j] != 0 && !seen[j] {
						seen[j] = true
						stack = append(stack, j)
					}
				}
			}
		}
	}
	return count
}

func synthMean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// synthAUROC is the area under the ROC of scores for positives against
// negatives: the Mann-Whitney statistic with tied ranks averaged.
func synthAUROC(neg, pos []float64) float64 {
	type obs struct {
		v   float64
		pos bool
	}
	all := make([]obs, 0, len(neg)+len(pos))
	for _, v := range neg {
		all = append(all, obs{v, false})
	}
	for _, v := range pos {
		all = append(all, obs{v, true})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	rankSum := 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		r := float64(i+j+1) / 2 // ranks i+1..j averaged
		for k := i; k < j; k++ {
			if all[k].pos {
				rankSum += r
			}
		}
		i = j
	}
	np, nn := float64(len(pos)), float64(len(neg))
	return (rankSum - np*(np+1)/2) / (np * nn)
}

func TestSynthAUROCHelper(t *testing.T) {
	assert.Equal(t, 1.0, synthAUROC([]float64{1, 2}, []float64{3, 4}))
	assert.Equal(t, 0.0, synthAUROC([]float64{3, 4}, []float64{1, 2}))
	assert.Equal(t, 0.5, synthAUROC([]float64{1, 1}, []float64{1, 1}))
	// neg {0.1, 0.4, 0.35}, pos {0.8, 0.35}: 0.8 wins 3 pairs, 0.35 wins 1
	// and ties 1: 4.5 of 6.
	assert.InDelta(t, 4.5/6, synthAUROC([]float64{0.1, 0.4, 0.35}, []float64{0.8, 0.35}), 1e-12)
}

// synthPlane is an image as float luminance in [0, 1], row-major.
type synthPlane struct {
	n   int
	pix []float64
}

func synthLuma(img *image.RGBA) synthPlane {
	n := img.Rect.Dx()
	g := synthPlane{n, make([]float64, n*n)}
	for i := range g.pix {
		p := img.Pix[4*i:]
		g.pix[i] = (0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2])) / 255
	}
	return g
}

// blur is a separable Gaussian blur with clamped edges.
func (g synthPlane) blur(sigma float64) synthPlane {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	sum := 0.0
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	n := g.n
	tmp, out := make([]float64, n*n), make([]float64, n*n)
	for y := range n {
		for x := range n {
			s := 0.0
			for i, w := range k {
				s += w * g.pix[y*n+min(n-1, max(0, x+i-r))]
			}
			tmp[y*n+x] = s
		}
	}
	for y := range n {
		for x := range n {
			s := 0.0
			for i, w := range k {
				s += w * tmp[min(n-1, max(0, y+i-r))*n+x]
			}
			out[y*n+x] = s
		}
	}
	return synthPlane{n, out}
}

// shrink averages f x f blocks.
func (g synthPlane) shrink(f int) synthPlane {
	m := g.n / f
	out := synthPlane{m, make([]float64, m*m)}
	for y := range g.n {
		for x := range g.n {
			out.pix[(y/f)*m+x/f] += g.pix[y*g.n+x] / float64(f*f)
		}
	}
	return out
}

type synthTestSample struct {
	img    *image.RGBA
	mask   *image.Gray
	defect string
}

// synthTestSplit renders a category's train and test images as WriteSynthetic
// would write them, on all CPUs.
func synthTestSplit(t testing.TB, cat string, opts SynthOptions) (train, test []synthTestSample) {
	o, err := opts.withDefaults()
	require.NoError(t, err)
	items := synthPlan(synthCategoryByName(cat), o)
	all := make([]synthTestSample, len(items))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for k := range next {
				img, mask, err := SynthImage(cat, items[k].index, items[k].defect, o)
				if err != nil {
					panic(err)
				}
				all[k] = synthTestSample{img, mask, items[k].defect}
			}
		})
	}
	for k := range items {
		next <- k
	}
	close(next)
	wg.Wait()
	return all[:o.Train], all[o.Train:]
}

// TestSynthRawPixelBaseline is the set's difficulty check: two raw-pixel
// detectors, fitted on the training images, must not separate the test
// images well (image AUROC below 0.85). Both look only at the central
// 224 crop that preprocessing keeps.
//   - z-score: gray, Gaussian blur sigma 2, per-pixel mean and standard
//     deviation over the training images; score = max |x - mean| / std.
//   - nearest neighbour: gray averaged to 4x4 blocks; score = distance to
//     the nearest training image.
func TestSynthRawPixelBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("renders the default set (about 360 images)")
	}
	for _, cat := range SynthCategories() {
		for _, r := range synthRawPixelBaselines(t, cat, SynthOptions{}) {
			t.Logf("%-6s %-8s image AUROC %.3f (per defect:%s)", cat, r.name, r.synthAUROC, r.perDefect)
			assert.Less(t, r.synthAUROC, 0.85, "%s: the %s raw-pixel baseline separates the set", cat, r.name)
		}
	}
}

type synthBaselineResult struct {
	name       string
	synthAUROC float64
	perDefect  string
}

// synthRawPixelBaselines fits both raw-pixel detectors on a category's
// training images and returns their image AUROC on its test images.
func synthRawPixelBaselines(t testing.TB, cat string, opts SynthOptions) []synthBaselineResult {
	train, test := synthTestSplit(t, cat, opts)
	n := train[0].img.Rect.Dx()
	lo, hi := n/16, n-n/16 // the 224 crop of a 256 image
	prep := func(img *image.RGBA) (blurred, small synthPlane) {
		g := synthLuma(img)
		return g.blur(2), g.shrink(4)
	}
	synthMean, std := make([]float64, n*n), make([]float64, n*n)
	var smalls []synthPlane
	for _, s := range train {
		b, sm := prep(s.img)
		for i, v := range b.pix {
			synthMean[i] += v
			std[i] += v * v
		}
		smalls = append(smalls, sm)
	}
	nt := float64(len(train))
	for i := range synthMean {
		synthMean[i] /= nt
		// The floor keeps a pixel that never varies from dominating.
		std[i] = math.Sqrt(max(0, std[i]/nt-synthMean[i]*synthMean[i])) + 0.01
	}
	scores := [2]map[string][]float64{{}, {}}
	for _, s := range test {
		b, sm := prep(s.img)
		z := 0.0
		for y := lo; y < hi; y++ {
			for x := lo; x < hi; x++ {
				i := y*n + x
				z = max(z, math.Abs(b.pix[i]-synthMean[i])/std[i])
			}
		}
		nn := math.Inf(1)
		for _, tr := range smalls {
			d := 0.0
			for y := lo / 4; y < hi/4; y++ {
				for x := lo / 4; x < hi/4; x++ {
					e := sm.pix[y*sm.n+x] - tr.pix[y*sm.n+x]
					d += e * e
				}
			}
			nn = min(nn, d)
		}
		scores[0][s.defect] = append(scores[0][s.defect], z)
		scores[1][s.defect] = append(scores[1][s.defect], nn)
	}
	defects, _ := SynthDefects(cat)
	var out []synthBaselineResult
	for k, name := range []string{"z-score", "nearest"} {
		var bad []float64
		per := ""
		for _, d := range defects {
			bad = append(bad, scores[k][d]...)
			per += fmt.Sprintf(" %s %.2f", d, synthAUROC(scores[k]["good"], scores[k][d]))
		}
		out = append(out, synthBaselineResult{name, synthAUROC(scores[k]["good"], bad), per})
	}
	return out
}

// TestSynthPreview writes a contact sheet: per category one row of good
// images, then defective images of each type, then the same with their
// masks outlined in red.
// Set ANOMNET_SYNTH_PREVIEW to a file name to keep it.
func TestSynthPreview(t *testing.T) {
	const cell = 256
	opts := SynthOptions{Seed: 0}
	cats := SynthCategories()
	cols := 6
	sheet := image.NewRGBA(image.Rect(0, 0, cols*cell, 3*len(cats)*cell))
	for r, cat := range cats {
		defects, _ := SynthDefects(cat)
		for k := range cols {
			img, _, err := SynthImage(cat, k, "good", opts)
			require.NoError(t, err)
			synthPaste(sheet, img, nil, k*cell, 3*r*cell)
		}
		for k := range cols {
			d := defects[k%len(defects)]
			img, mask, err := SynthImage(cat, synthTestDefectBase+k, d, opts)
			require.NoError(t, err)
			synthPaste(sheet, img, nil, k*cell, (3*r+1)*cell)
			synthPaste(sheet, img, mask, k*cell, (3*r+2)*cell)
		}
	}
	path := os.Getenv("ANOMNET_SYNTH_PREVIEW")
	if path == "" {
		path = filepath.Join(t.TempDir(), "synth-preview.png")
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, sheet))
	require.NoError(t, f.Close())
	t.Logf("preview: %s", path)
}

// synthPaste copies img to (x0, y0) and outlines the mask's boundary in red.
func synthPaste(dst *image.RGBA, img *image.RGBA, mask *image.Gray, x0, y0 int) {
	n := img.Rect.Dx()
	on := func(x, y int) bool {
		return mask != nil && x >= 0 && y >= 0 && x < n && y < n && mask.Pix[y*n+x] == 255
	}
	for y := range n {
		for x := range n {
			c := img.RGBAAt(x, y)
			if on(x, y) && (!on(x-1, y) || !on(x+1, y) || !on(x, y-1) || !on(x, y+1)) {
				c = color.RGBA{255, 0, 0, 255}
			}
			dst.SetRGBA(x0+x, y0+y, c)
		}
	}
}

func BenchmarkSynthImage(b *testing.B) {
	for _, cat := range SynthCategories() {
		b.Run("category="+cat, func(b *testing.B) {
			for k := 0; b.Loop(); k++ {
				SynthImage(cat, synthTestDefectBase+k, "scratch", SynthOptions{})
			}
		})
	}
}

func BenchmarkWriteSynthetic(b *testing.B) {
	for b.Loop() {
		if err := WriteSynthetic(filepath.Join(b.TempDir(), "synth"), SynthOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
