package dataset

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func touch(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))
	}
}

// TestTraining checks the two layouts fit accepts: an MVTec AD category
// (train/good only; no test folder needed) and a plain folder of images,
// listed recursively, sorted, hidden entries and other files skipped.
func TestTraining(t *testing.T) {
	t.Run("mvtec without test", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "part")
		touch(t, filepath.Join(dir, "train/good/b.png"), filepath.Join(dir, "train/good/a.jpg"), filepath.Join(dir, "other/c.png"))
		c, err := Training(dir)
		require.NoError(t, err)
		require.Equal(t, "part", c.Name)
		require.Equal(t, []string{filepath.Join(dir, "train/good/a.jpg"), filepath.Join(dir, "train/good/b.png")}, paths(c.Train))
		require.Empty(t, c.Test)
	})
	t.Run("plain folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "camera")
		touch(t,
			filepath.Join(dir, "2026-12-01/img_002.PNG"),
			filepath.Join(dir, "2026-12-01/img_001.bmp"),
			filepath.Join(dir, "top.tif"),
			filepath.Join(dir, "notes.txt"),
			filepath.Join(dir, ".thumbs/x.png"),
			filepath.Join(dir, ".hidden.png"),
		)
		require.NoError(t, os.Symlink(filepath.Join(dir, "missing.png"), filepath.Join(dir, "dangling.png")))
		c, err := Training(dir)
		require.NoError(t, err)
		require.Equal(t, "camera", c.Name)
		require.Equal(t, []string{
			filepath.Join(dir, "2026-12-01/img_001.bmp"),
			filepath.Join(dir, "2026-12-01/img_002.PNG"),
			filepath.Join(dir, "top.tif"),
		}, paths(c.Train))
		for _, s := range c.Train {
			require.Equal(t, Good, s.Defect)
			require.False(t, s.Anomalous)
		}
	})
	t.Run("errors", func(t *testing.T) {
		root := t.TempDir()
		_, err := Training(filepath.Join(root, "nowhere"))
		require.ErrorContains(t, err, "nowhere: missing folder of training images")
		empty := filepath.Join(root, "empty")
		touch(t, filepath.Join(empty, "readme.txt"))
		_, err = Training(empty)
		require.ErrorContains(t, err, "empty: no training images")
		mv := filepath.Join(root, "mv")
		require.NoError(t, os.MkdirAll(filepath.Join(mv, "train/good"), 0o755))
		touch(t, filepath.Join(mv, "elsewhere.png")) // not in train/good: the MVTec layout wins
		_, err = Training(mv)
		require.ErrorContains(t, err, "train/good holds no")
		file := filepath.Join(root, "f.png")
		touch(t, file)
		_, err = Training(file)
		require.ErrorContains(t, err, "is not a folder")
	})
}

func paths(ss []Sample) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Path)
	}
	return out
}
