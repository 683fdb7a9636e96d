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
	"io"

	"github.com/org/anomnet/internal/atomicfile"
)

// WritePNG writes img to path as a PNG file, safely: to a temporary file
// in the same directory, synced, then renamed over path, so that path
// holds either its old contents or the complete picture, never a part.
// Errors name path.
func WritePNG(path string, img image.Image) error {
	// A picture is for sharing: 0644. The fastest compression: predict
	// writes two pictures per image, and the default level spends more
	// time on them than the model does on the image.
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return enc.Encode(w, img) }); err != nil {
		return fmt.Errorf("anomnet/report: write %s: %w", path, err)
	}
	return nil
}
