package anomnet

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/org/anomnet/dataset"
	"github.com/stretchr/testify/require"
)

func tileConfig() Config {
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 0, 0
	cfg.Input, cfg.TileSize = InputTile, 64
	return cfg
}

// TestTileInput fits on the tiles of tall images at their own resolution:
// a blotch in the top strip, which the crop input cuts away, is found with
// the heatmap's maximum on it, the map has the image's own size, and the
// model file keeps the input.
func TestTileInput(t *testing.T) {
	const w, h = 96, 200
	rng := rand.New(rand.NewPCG(31, 1))
	train, good := stripeSet(rng, 16, w, h), stripeSet(rng, 5, w, h)
	bad, mask := tallStripes(rng, w, h, 40, 6, 5)
	m := fitTiny(t, tileConfig(), synthSet{train: train})
	cal := m.Calibration()
	require.Len(t, cal.Scores, 16, "one score per training image, not per tile")
	require.True(t, cal.HeldOut)

	rs, err := m.PredictBatch(context.Background(), append(slices.Clone(good), bad))
	require.NoError(t, err)
	for _, r := range rs {
		require.Equal(t, [2]int{w, h}, [2]int{r.Width, r.Height})
		require.Len(t, r.Map, w*h)
		require.Len(t, r.Mask, w*h)
		require.InDelta(t, float64(slices.Max(r.Map)), r.Score, 1e-6, "the image score is the blended map's maximum")
	}
	r := rs[len(rs)-1]
	for _, g := range rs[:len(rs)-1] {
		require.Greater(t, r.Score, g.Score, "the blotch scores above every normal image")
	}
	peak := slices.Index(r.Map, slices.Max(r.Map))
	require.True(t, mask[peak], "the heatmap's maximum (%d, %d) is on the blotch", peak%w, peak/w)

	path := filepath.Join(t.TempDir(), "tile.anm")
	require.NoError(t, m.SaveFile(path))
	l, err := LoadFile(path, newTinyNet(3))
	require.NoError(t, err)
	require.Equal(t, InputTile, l.Config().Input)
	lr, err := l.Predict(bad)
	require.NoError(t, err)
	require.Equal(t, r, lr)

	// An image smaller than a tile is enlarged to tile it, and its map
	// comes back at its own size.
	small, _ := tallStripes(rng, 40, 90, 0, 0, 0)
	sr, err := m.Predict(small)
	require.NoError(t, err)
	require.Equal(t, [2]int{40, 90}, [2]int{sr.Width, sr.Height})
}

// TestTileSeams checks that blending leaves no seam on a normal image: the
// map changes no more across the tiles' edges than elsewhere.
func TestTileSeams(t *testing.T) {
	const w, h = 160, 160
	rng := rand.New(rand.NewPCG(32, 1))
	train := stripeSet(rng, 12, w, h)
	cfg := tileConfig()
	cfg.Sigma = 1 // a light blur, which would not hide a seam
	m := fitTiny(t, cfg, synthSet{train: train})
	img, _ := tallStripes(rng, w, h, 0, 0, 0)
	r, err := m.Predict(img)
	require.NoError(t, err)

	// Tile edges inside the image, along x (the layout is the same along y).
	edges := map[int]bool{}
	for _, rc := range dataset.Tiles(w, h, cfg.TileSize, m.Config().TileOverlap) {
		for _, x := range []int{rc.Min.X, rc.Max.X} {
			if x > 0 && x < w {
				edges[x] = true
			}
		}
	}
	require.NotEmpty(t, edges)
	var seam, all float64
	var nSeam, nAll int
	for y := range h {
		for x := 1; x < w; x++ {
			d := math.Abs(float64(r.Map[y*w+x] - r.Map[y*w+x-1]))
			all, nAll = all+d, nAll+1
			if edges[x] {
				seam, nSeam = seam+d, nSeam+1
			}
		}
	}
	seam, all = seam/float64(nSeam), all/float64(nAll)
	t.Logf("mean |step| across tile edges %.4g, everywhere %.4g", seam, all)
	require.Less(t, seam, 1.5*all, "a seam shows at the tiles' edges")
}

// TestTileMemory predicts a 6000 x 4000 image in the tiled input in a child
// process and bounds its peak memory: tiles are scored a batch at a time,
// so that memory holds the image, its map and a batch, not every tile.
func TestTileMemory(t *testing.T) {
	if path := os.Getenv("ANOMNET_TILE_CHILD"); path != "" {
		m, err := LoadFile(path, newTinyNet(3))
		if err != nil {
			t.Fatal(err)
		}
		img := image.NewRGBA(image.Rect(0, 0, 6000, 4000))
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 7)
		}
		r, err := m.Predict(img)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("child: %dx%d map, score %.4g\n", r.Width, r.Height, r.Score)
		return
	}
	if testing.Short() {
		t.Skip("a 6000 x 4000 image takes seconds")
	}
	train := stripeSet(rand.New(rand.NewPCG(33, 1)), 4, 448, 448)
	cfg := tileConfig()
	cfg.TileSize = 224
	m := fitTiny(t, cfg, synthSet{train: train})
	path := filepath.Join(t.TempDir(), "tile.anm")
	require.NoError(t, m.SaveFile(path))

	cmd := exec.Command(os.Args[0], "-test.run=^TestTileMemory$", "-test.v")
	cmd.Env = append(os.Environ(), "ANOMNET_TILE_CHILD="+path)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "child: 6000x4000 map")
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
	const bound = 1 << 30
	t.Logf("peak RSS of the child: %d MiB (bound %d MiB; the image alone is %d MiB)", rss>>20, bound>>20, 6000*4000*4>>20)
	require.Less(t, rss, int64(bound))
}

func TestTiledSize(t *testing.T) {
	for _, tc := range [][4]int{
		{203, 512, 224, 565}, // the shorter side exactly the tile's: 203 * (224/203) is not 224 in floats
		{512, 203, 565, 224},
		{40, 40, 224, 224},
		{300, 100, 672, 224},
		{300, 400, 300, 400}, // large enough: kept
	} {
		w, h := tiledSize(224, tc[0], tc[1])
		require.Equal(t, [2]int{tc[2], tc[3]}, [2]int{w, h}, "%dx%d", tc[0], tc[1])
	}
}

// plainImage hides its image's methods but those of image.Image, SubImage
// among them.
type plainImage struct{ img image.Image }

func (p plainImage) ColorModel() color.Model { return p.img.ColorModel() }
func (p plainImage) Bounds() image.Rectangle { return p.img.Bounds() }
func (p plainImage) At(x, y int) color.Color { return p.img.At(x, y) }

// TestTileCopies checks the tiles of an image with sub-images (its fast
// path) against those of one without (read pixel by pixel), and the
// bounds' origin.
func TestTileCopies(t *testing.T) {
	img, _ := tallStripes(rand.New(rand.NewPCG(34, 1)), 300, 250, 0, 0, 0)
	off := img.SubImage(image.Rect(10, 20, 300, 250)) // bounds off the origin
	cfg := tileConfig()
	fast, slow := newTiling(cfg, off, 0.25), newTiling(cfg, plainImage{off}, 0.25)
	require.Equal(t, fast.rects, slow.rects)
	for k := range fast.rects {
		a, b := fast.tile(k), slow.tile(k)
		require.Equal(t, image.Rect(0, 0, 64, 64), a.Bounds())
		require.Equal(t, a.Pix, b.Pix, "tile %d", k)
	}
	r := fast.rects[len(fast.rects)-1]
	require.Equal(t, img.RGBAAt(10+r.Min.X+5, 20+r.Min.Y+7), fast.tile(len(fast.rects)-1).RGBAAt(5, 7))
}
