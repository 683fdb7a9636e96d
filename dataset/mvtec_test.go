package dataset

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMVTecLayout(t *testing.T) {
	root := t.TempDir()
	dir := fixtureCategory(t, root, "widget", 3, 2, map[string]int{"scratch": 2, "crack": 1})
	// Other image formats, extension case, and files the reader must skip.
	fixtureWrite(t, filepath.Join(dir, "train", "good", "100.JPG"), fixtureGray(32, 24))
	fixtureWrite(t, filepath.Join(dir, "train", "good", "101.bmp"), fixtureGray(32, 24))
	fixtureWrite(t, filepath.Join(dir, "train", "good", "102.tiff"), fixtureGray(32, 24))
	fixtureWrite(t, filepath.Join(dir, "train", "good", ".hidden.png"), fixtureGray(32, 24))
	fixtureTouch(t, filepath.Join(dir, "train", "good", "notes.txt"), "not an image")
	fixtureTouch(t, filepath.Join(dir, "train", "good", "Thumbs.db"), "junk")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "train", "good", "sub.png"), 0o755)) // a folder, not an image
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "test", ".cache"), 0o755))           // hidden folder, not a defect
	fixtureTouch(t, filepath.Join(dir, ".anomnet-synth"), "stamp")
	// A mask stored as BMP is found too.
	fixtureWrite(t, filepath.Join(dir, "test", "dent", "000.png"), fixtureGray(32, 24))
	fixtureWrite(t, filepath.Join(dir, "ground_truth", "dent", "000_mask.bmp"), fixtureMask(32, 24, image.Rect(0, 0, 2, 2)))

	c, err := MVTec(root, "widget")
	require.NoError(t, err)
	assert.Equal(t, root, c.Root)
	assert.Equal(t, "widget", c.Name)
	assert.True(t, c.HasMasks)

	var train []string
	for _, s := range c.Train {
		train = append(train, filepath.Base(s.Path))
		assert.Equal(t, Good, s.Defect)
		assert.False(t, s.Anomalous)
		assert.Empty(t, s.MaskPath)
	}
	assert.Equal(t, []string{"000.png", "001.png", "002.png", "100.JPG", "101.bmp", "102.tiff"}, train)

	type row struct{ rel, defect, mask string }
	var test []row
	for _, s := range c.Test {
		rel, _ := filepath.Rel(dir, s.Path)
		mask := ""
		if s.MaskPath != "" {
			mask, _ = filepath.Rel(dir, s.MaskPath)
		}
		assert.Equal(t, s.Defect != Good, s.Anomalous, s.Path)
		assert.Equal(t, uint8(MVTecMaskThreshold), s.MaskThreshold)
		test = append(test, row{filepath.ToSlash(rel), s.Defect, filepath.ToSlash(mask)})
	}
	assert.Equal(t, []row{
		{"test/crack/000.png", "crack", "ground_truth/crack/000_mask.png"},
		{"test/dent/000.png", "dent", "ground_truth/dent/000_mask.bmp"},
		{"test/good/000.png", "good", ""},
		{"test/good/001.png", "good", ""},
		{"test/scratch/000.png", "scratch", "ground_truth/scratch/000_mask.png"},
		{"test/scratch/001.png", "scratch", "ground_truth/scratch/001_mask.png"},
	}, test)
	assert.Equal(t, []string{"crack", "dent", "scratch"}, c.Defects())

	// The listing is the same every time.
	again, err := MVTec(root, "widget")
	require.NoError(t, err)
	assert.Equal(t, c, again)
}

func TestMVTecWithoutGroundTruth(t *testing.T) {
	root := t.TempDir()
	dir := fixtureCategory(t, root, "bottle", 2, 1, map[string]int{"broken": 2})
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "ground_truth")))
	c, err := MVTec(root, "bottle")
	require.NoError(t, err)
	assert.False(t, c.HasMasks)
	require.Len(t, c.Test, 3)
	for _, s := range c.Test {
		assert.Empty(t, s.MaskPath)
	}
	assert.True(t, c.Test[0].Anomalous)
	assert.False(t, c.Test[2].Anomalous)
}

func TestMVTecErrors(t *testing.T) {
	cases := []struct {
		name string
		// edit breaks a valid category in dir and returns the path the
		// error must name.
		edit func(t *testing.T, dir string) string
		want string
	}{
		{"missing mask", func(t *testing.T, dir string) string {
			require.NoError(t, os.Remove(filepath.Join(dir, "ground_truth", "crack", "001_mask.png")))
			return filepath.Join(dir, "test", "crack", "001.png")
		}, "defect image without a mask: expected "},
		{"missing mask folder", func(t *testing.T, dir string) string {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "ground_truth", "crack")))
			return filepath.Join(dir, "test", "crack", "000.png")
		}, "without a mask"},
		{"empty category folder", func(t *testing.T, dir string) string {
			require.NoError(t, os.RemoveAll(dir))
			require.NoError(t, os.Mkdir(dir, 0o755))
			return filepath.Join(dir, "train", "good")
		}, "missing training folder"},
		{"missing category", func(t *testing.T, dir string) string {
			require.NoError(t, os.RemoveAll(dir))
			return dir
		}, "missing category folder"},
		{"empty train/good", func(t *testing.T, dir string) string {
			good := filepath.Join(dir, "train", "good")
			require.NoError(t, os.RemoveAll(good))
			fixtureTouch(t, filepath.Join(good, "readme.txt"), "no images here")
			fixtureWrite(t, filepath.Join(good, ".hidden.png"), fixtureGray(4, 4))
			return good
		}, "no training images"},
		{"no test folder", func(t *testing.T, dir string) string {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "test")))
			return filepath.Join(dir, "test")
		}, "missing test folder"},
		{"empty test folder", func(t *testing.T, dir string) string {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "test")))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "test"), 0o755))
			return filepath.Join(dir, "test")
		}, "no test images"},
		{"empty defect folder", func(t *testing.T, dir string) string {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "test", "hole"), 0o755))
			return filepath.Join(dir, "test", "hole")
		}, "empty defect folder"},
		{"train is a file", func(t *testing.T, dir string) string {
			good := filepath.Join(dir, "train", "good")
			require.NoError(t, os.RemoveAll(good))
			fixtureTouch(t, good, "")
			return good
		}, "not a folder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := fixtureCategory(t, root, "widget", 2, 1, map[string]int{"crack": 2})
			path := tc.edit(t, dir)
			_, err := MVTec(root, "widget")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "anomnet/dataset: ")
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tc.want)
			if tc.name == "missing mask" {
				assert.Contains(t, err.Error(), filepath.Join(dir, "ground_truth", "crack", "001_mask.png"))
			}
		})
	}
}

func TestCategories(t *testing.T) {
	root := t.TempDir()
	fixtureCategory(t, root, "b", 1, 1, nil)
	fixtureCategory(t, root, "a", 1, 1, nil)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "split_csv"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".trash", "train", "good"), 0o755))
	fixtureTouch(t, filepath.Join(root, "README.md"), "")
	got, err := Categories(root)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, got)

	empty := t.TempDir()
	_, err = Categories(empty)
	require.ErrorContains(t, err, empty)
	require.ErrorContains(t, err, "no MVTec AD category")
	_, err = Categories(filepath.Join(empty, "nowhere"))
	require.ErrorContains(t, err, filepath.Join(empty, "nowhere"))
}
