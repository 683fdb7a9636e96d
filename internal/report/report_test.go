package report

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// readPNG decodes the PNG file at path.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img
}

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

func TestWritePNG(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "heat.png")
	img := HeatmapImage([]float32{0, 0.3, 0.6, 1}, 2, 2, 0, 1)
	require.NoError(t, WritePNG(path, img))
	require.NoError(t, WritePNG(path, img), "replaces an existing file")
	require.Equal(t, []string{"heat.png"}, names(t, dir), "no temporary file left")
	got := readPNG(t, path)
	require.Equal(t, img.Bounds(), got.Bounds())
	require.Equal(t, color.RGBAModel.Convert(img.At(1, 1)), color.RGBAModel.Convert(got.At(1, 1)))
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}

func TestWritePNGErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	img := MaskImage(make([]bool, 4), 2, 2)

	// A parent that is a file fails even for root.
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	path := filepath.Join(file, "out.png")
	err := WritePNG(path, img)
	require.ErrorContains(t, err, path)

	// Renaming over a directory fails after the temporary file is written.
	path = filepath.Join(dir, "taken.png")
	require.NoError(t, os.MkdirAll(filepath.Join(path, "child"), 0o755))
	err = WritePNG(path, img)
	require.ErrorContains(t, err, path)

	// An image PNG cannot encode.
	path = filepath.Join(dir, "empty.png")
	err = WritePNG(path, image.NewRGBA(image.Rectangle{}))
	require.ErrorContains(t, err, path)
	require.ElementsMatch(t, []string{"file", "taken.png"}, names(t, dir), "no temporary file left")
}

func TestWritePNGUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which may write into a read-only directory")
	}
	dir := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(dir, 0o500))
	path := filepath.Join(dir, "out.png")
	err := WritePNG(path, MaskImage(make([]bool, 4), 2, 2))
	require.ErrorContains(t, err, path)
	require.Empty(t, names(t, dir))
}
