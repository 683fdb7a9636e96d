package dataset

import (
	"context"
	"encoding/csv"
	"image"
	"image/color"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realCounts are the files per folder that ../shared/data/README.md
// gives for each category.
var realCounts = map[string]struct {
	train int
	test  map[string]int // per test folder, good included
	masks bool
}{
	// transistor is the one colour category.
	"magnetic_tile": {761, map[string]int{"blowhole": 115, "break": 85, "crack": 57, "fray": 32, "good": 191, "uneven": 103}, true},
	"kolektor":      {263, map[string]int{"crack": 50, "good": 70}, true},
	"transistor":    {213, map[string]int{"bent_lead": 10, "cut_lead": 10, "damaged_case": 10, "good": 60, "misplaced": 10}, true},
}

// realDataRoot finds the shared evaluation data: $ANOMNET_DATA, else
// ../../shared/data from this package. It skips the test when the data
// is absent, unless $CI is set.
func realDataRoot(t *testing.T) string {
	root := os.Getenv("ANOMNET_DATA")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "data")
	}
	if _, err := os.Stat(root); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("evaluation data not found at %s (set ANOMNET_DATA): %v", root, err)
		}
		t.Skipf("evaluation data not found at %s; set ANOMNET_DATA to its folder to run this test", root)
	}
	return root
}

// realManifest reads manifest.csv: per image path (relative to the data
// root, slash-separated), its row as a column -> value map.
func realManifest(t *testing.T, root string) map[string]map[string]string {
	f, err := os.Open(filepath.Join(root, "manifest.csv"))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	out := map[string]map[string]string{}
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out[m["image"]] = m
	}
	return out
}

func TestRealDataCounts(t *testing.T) {
	root := realDataRoot(t)
	names, err := Categories(root)
	require.NoError(t, err)
	require.Equal(t, slices.Sorted(maps.Keys(realCounts)), names)

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			wc := realCounts[name]
			c, err := MVTec(root, name)
			require.NoError(t, err)
			assert.Len(t, c.Train, wc.train, "train/good")
			assert.Equal(t, wc.masks, c.HasMasks)

			got := map[string]int{}
			masks := map[string]int{}
			for _, s := range c.Test {
				got[s.Defect]++
				if s.MaskPath == "" {
					continue
				}
				masks[s.Defect]++
				// Every mask has its image's size (headers only).
				img, err := openHeader(s.Path, 0)
				require.NoError(t, err)
				img.Close()
				m, err := openHeader(s.MaskPath, 0)
				require.NoError(t, err)
				m.Close()
				assert.Equal(t, img.cfg.Width, m.cfg.Width, s.MaskPath)
				assert.Equal(t, img.cfg.Height, m.cfg.Height, s.MaskPath)
			}
			assert.Equal(t, wc.test, got, "test folders")
			for d, n := range wc.test {
				gt := filepath.Join(root, name, "ground_truth", d)
				files, err := listImages(gt)
				switch {
				case !wc.masks || d == Good:
					assert.Zero(t, masks[d], "masks of %s", d)
					assert.Error(t, err, "%s should not exist", gt)
				default:
					require.NoError(t, err)
					assert.Len(t, files, n, "%s", gt)
					assert.Equal(t, n, masks[d], "masks of %s", d)
				}
			}

			// The manifest, read as a split file, lists the same samples.
			viaCSV, err := VisA(root, name, filepath.Join(root, "manifest.csv"))
			require.NoError(t, err)
			assert.Equal(t, c.HasMasks, viaCSV.HasMasks)
			key := func(ss []Sample) []string {
				var out []string
				for _, s := range ss {
					out = append(out, strings.Join([]string{filepath.Clean(s.Path), s.Defect, strconv.FormatBool(s.Anomalous), filepath.Clean(s.MaskPath)}, "|"))
				}
				slices.Sort(out)
				return out
			}
			assert.Equal(t, key(c.Train), key(viaCSV.Train))
			assert.Equal(t, key(c.Test), key(viaCSV.Test))
		})
	}
}

// TestRealDataLoad decodes and preprocesses a handful of images of each
// category: two training images, a normal test image and the first image
// of each defect with its mask; it checks shapes, gray replication and
// the masks' pixel counts against the manifest.
func TestRealDataLoad(t *testing.T) {
	root := realDataRoot(t)
	manifest := realManifest(t, root)
	pre := DefaultPreprocess
	for _, name := range slices.Sorted(maps.Keys(realCounts)) {
		t.Run(name, func(t *testing.T) {
			c, err := MVTec(root, name)
			require.NoError(t, err)
			pick := slices.Clone(c.Train[:2])
			seen := map[string]bool{}
			for _, s := range c.Test {
				if !seen[s.Defect] {
					seen[s.Defect] = true
					pick = append(pick, s)
				}
			}
			items, err := (&Loader{Pre: pre}).Load(context.Background(), pick)
			require.NoError(t, err)
			anyMarked := false
			for i, it := range items {
				assert.Equal(t, pick[i], it.Sample)
				require.Equal(t, pre.Crop, it.Image.Bounds().Dx(), it.Path)
				require.Equal(t, pre.Crop, it.Image.Bounds().Dy(), it.Path)
				rel, err := filepath.Rel(root, it.Path)
				require.NoError(t, err)
				row := manifest[filepath.ToSlash(rel)]
				require.NotNil(t, row, "%s not in the manifest", rel)

				// Check the stored size through the decoder, and the
				// mask's anomalous pixels at that size.
				raw, err := Open(it.Path)
				require.NoError(t, err)
				assert.Equal(t, row["width"], strconv.Itoa(raw.Bounds().Dx()), it.Path)
				assert.Equal(t, row["height"], strconv.Itoa(raw.Bounds().Dy()), it.Path)
				if name != "transistor" { // the gray categories
					for p := 0; p < len(it.Image.Pix); p += 4 {
						px := it.Image.Pix[p : p+3]
						if px[0] != px[1] || px[1] != px[2] {
							t.Fatalf("%s: gray image with colour pixel %v", it.Path, px)
						}
					}
				}
				if !it.Anomalous || !c.HasMasks {
					assert.Nil(t, it.Mask, it.Path)
					continue
				}
				require.Len(t, it.Mask, pre.Crop*pre.Crop, it.Path)
				m, err := Open(it.MaskPath)
				require.NoError(t, err)
				assert.Equal(t, row["mask_px"], strconv.Itoa(countAbove(t, m, MVTecMaskThreshold)), it.MaskPath)
				for _, v := range it.Mask {
					anyMarked = anyMarked || v
				}
			}
			if c.HasMasks {
				assert.True(t, anyMarked, "no anomalous pixel in any loaded mask")
			}
		})
	}
}

// countAbove counts the pixels of m whose gray level exceeds threshold,
// failing on levels other than 0 and 255 (the README's promise).
func countAbove(t *testing.T, m image.Image, threshold uint8) int {
	n := 0
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			v := color.GrayModel.Convert(m.At(x, y)).(color.Gray).Y
			if v != 0 && v != 255 {
				t.Fatalf("mask level %d at (%d,%d)", v, x, y)
			}
			if v > threshold {
				n++
			}
		}
	}
	return n
}

// BenchmarkRealDataLoad decodes and preprocesses a whole category once
// per iteration, without the cache.
func BenchmarkRealDataLoad(b *testing.B) {
	root := os.Getenv("ANOMNET_DATA")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "data")
	}
	c, err := MVTec(root, "kolektor")
	if err != nil {
		b.Skip(err)
	}
	samples := append(slices.Clone(c.Train), c.Test...)
	l := &Loader{CacheBytes: -1}
	for b.Loop() {
		if _, err := l.Load(context.Background(), samples); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N*len(samples))*1e3, "ms/img")
}
