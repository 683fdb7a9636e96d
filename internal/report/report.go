// Package report draws the pictures of anomnet's command-line reports:
// anomaly heat maps and their overlays on the input images, masks and
// their outlines, grids of tiles with captions, line plots (ROC and loss
// curves) and 2-D scatter plots of PCA projections of features.
//
// Every function returns an image or writes a PNG file; none prints.
// Shape mismatches (a map that is not size x size, tiles of different
// sizes) are programmer errors and panic with an "anomnet/report:"
// prefix; anything that depends on the data or the file system is
// returned as an error.
package report

import (
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
)

// WritePNG writes img to path as a PNG file, safely: to a temporary file
// in the same directory, synced, then renamed over path, so that path
// holds either its old contents or the complete picture, never a part.
// Errors name path.
func WritePNG(path string, img image.Image) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("anomnet/report: write %s: %w", path, err)
	}
	tmp := f.Name()
	err = png.Encode(f, img)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CreateTemp makes the file private; a picture is for sharing.
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("anomnet/report: write %s: %w", path, err)
	}
	return nil
}
