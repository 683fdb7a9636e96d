package anomnet

import (
	"context"
	"fmt"
	"image"
	"math"

	"github.com/org/anomnet/dataset"
	"golang.org/x/image/draw"
)

// tiling is one image cut into the tiles of the tiled input
// (Config.InputTile).
type tiling struct {
	img   image.Image // the image, enlarged where it is smaller than a tile
	rects []image.Rectangle
	w, h  int // the image's own size
}

// newTiling cuts img into cfg's tiles with the given overlap; an image
// smaller than a tile on a side is first enlarged (bilinear, its aspect
// ratio kept) until it covers one.
func newTiling(cfg Config, img image.Image, overlap float64) tiling {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	tw, th := tiledSize(cfg.TileSize, w, h)
	src := img
	if tw != w || th != h {
		e := image.NewRGBA(image.Rect(0, 0, tw, th))
		draw.BiLinear.Scale(e, e.Bounds(), img, b, draw.Src, nil)
		src = e
	}
	return tiling{img: src, rects: dataset.Tiles(tw, th, cfg.TileSize, overlap), w: w, h: h}
}

// tiledSize is the size a w x h image is tiled at: its own, or enlarged
// (its aspect ratio kept) until both sides reach size.
func tiledSize(size, w, h int) (int, int) {
	switch {
	case w >= size && h >= size:
		return w, h
	case w <= h:
		return size, max(size, (h*size+w/2)/w)
	}
	return max(size, (w*size+h/2)/h), size
}

// size returns the size of the tiled (perhaps enlarged) image.
func (tl tiling) size() (w, h int) {
	b := tl.img.Bounds()
	return b.Dx(), b.Dy()
}

// tile returns tile k as an opaque image, ready for the backbone: the
// native preprocessing of that part of the image (a sub-image where the
// image type has them, as the standard ones do, so that the copy takes
// their fast path).
func (tl tiling) tile(k int) Prepared {
	r := tl.rects[k].Add(tl.img.Bounds().Min)
	var part image.Image = window{tl.img, r}
	if s, ok := tl.img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok {
		part = s.SubImage(r)
	}
	return Prepared{dataset.Preprocess{Native: true}.Image(part)}
}

// window is the part r of an image: its bounds, the pixels read in place.
type window struct {
	image.Image
	r image.Rectangle
}

// Bounds implements image.Image.
func (w window) Bounds() image.Rectangle { return w.r }

// tileSource lists the training tiles of images, tile by tile, image by
// image: Fit's images in the tiled input. The tiles do not overlap (but
// for the last of a row or column, flush with the edge), and one image's
// tiling is made at a time, so that memory holds a batch of tiles, not
// every tile.
type tileSource struct {
	cfg    Config
	images []image.Image
	refs   [][2]int // (image, tile) of each tile
	cur    int      // the image whose tiling is held
	tl     tiling
}

func newTileSource(cfg Config, images []image.Image) (*tileSource, []int, error) {
	s := &tileSource{cfg: cfg, images: images, cur: -1}
	var groups []int
	for i, img := range images {
		if err := checkImage(cfg, img, i); err != nil {
			return nil, nil, err
		}
		b := img.Bounds()
		tw, th := tiledSize(cfg.TileSize, b.Dx(), b.Dy())
		for k := range len(dataset.Tiles(tw, th, cfg.TileSize, 0)) {
			s.refs = append(s.refs, [2]int{i, k})
			groups = append(groups, i)
		}
	}
	return s, groups, nil
}

// Len is the number of tiles.
func (s *tileSource) Len() int { return len(s.refs) }

// get returns tiles lo to hi-1.
func (s *tileSource) get(lo, hi int) []image.Image {
	out := make([]image.Image, 0, hi-lo)
	for _, r := range s.refs[lo:hi] {
		if r[0] != s.cur {
			s.cur, s.tl = r[0], newTiling(s.cfg, s.images[r[0]], 0)
		}
		out = append(out, s.tl.tile(r[1]))
	}
	return out
}

// tileWeight is the blending weight of a tile's pixel at x of size: a
// tent, highest at the centre and small but not zero at the edges, so
// that where tiles overlap the map passes smoothly from one to the next
// and where one tile covers a pixel its value is kept.
func tileWeight(x, size int) float32 {
	return float32(min(x+1, size-x)) / float32((size+1)/2)
}

// predictTiled scores one image in the tiled input: its tiles, a backbone
// batch at a time, then the tiles' maps blended into one map of the
// image's own size.
func (m *Model) predictTiled(ctx context.Context, img image.Image, index int) (Result, error) {
	if err := checkImage(m.cfg, img, index); err != nil {
		return Result{}, err
	}
	tl := newTiling(m.cfg, img, m.cfg.TileOverlap)
	w, h := tl.size()
	size := m.cfg.TileSize
	sum := make([]float32, w*h)
	weight := make([]float32, w*h)
	score := math.Inf(-1)
	for lo := 0; lo < len(tl.rects); lo += m.cfg.BackboneBatch {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		hi := min(lo+m.cfg.BackboneBatch, len(tl.rects))
		tiles := make([]image.Image, 0, hi-lo)
		for k := lo; k < hi; k++ {
			tiles = append(tiles, tl.tile(k))
		}
		maps, _, err := m.backboneMaps(ctx, m.cfg, tiles, 0)
		if err != nil {
			return Result{}, fmt.Errorf("anomnet: image %d, tiles %d to %d: %w", index, lo, hi-1, err)
		}
		pix, scores := m.pixelMaps(ctx, maps)
		for j, p := range pix {
			r := tl.rects[lo+j]
			score = max(score, scores[j])
			for y := range size {
				wy := tileWeight(y, size)
				row := (r.Min.Y+y)*w + r.Min.X
				for x := range size {
					c := wy * tileWeight(x, size)
					sum[row+x] += c * p[y*size+x]
					weight[row+x] += c
				}
			}
		}
	}
	for i := range sum {
		sum[i] /= weight[i]
	}
	if m.cfg.ImageScore == ScoreMap {
		// The blended map's maximum: blending can only lower a tile's.
		score = math.Inf(-1)
		for _, v := range sum {
			score = max(score, float64(v))
		}
	}
	r := m.result(sum, w, h, score)
	if w != tl.w || h != tl.h {
		r = r.Resized(tl.w, tl.h)
	}
	return r, nil
}
