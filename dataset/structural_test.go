package dataset

import (
	"image"
	"image/color"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCorruptStructural checks the structural defects on a noise image:
// the same seed gives the same defect, the mask is exactly the pixels
// changed by more than 24 levels, nothing changes within 4 pixels of the
// border, every output colour occurs in the source (pixels are moved, not
// painted), the defect covers a plausible share, and all three kinds occur.
func TestCorruptStructural(t *testing.T) {
	const w, h = 96, 80
	src := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range src.Pix {
		src.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			src.Pix[i] = 255
		}
	}
	colours := map[color.RGBA]bool{}
	for y := range h {
		for x := range w {
			colours[src.RGBAAt(x, y)] = true
		}
	}
	kinds := map[int]int{}
	for seed := range uint64(60) {
		img, mask := corruptTwice(t, CorruptStructural, src, seed, 5)
		inside := changedPixels(t, seed, src, img, mask, func(x, y int, a color.RGBA, _ bool) {
			require.True(t, colours[a], "seed %d: pixel %d,%d has a colour not in the source", seed, x, y)
		})
		share := float64(inside) / (w * h)
		require.True(t, share > 0.01 && share < 0.2, "seed %d: the defect covers %.3f of the image", seed, share)
		kinds[rand.New(rand.NewPCG(seed, 5)).IntN(3)]++
	}
	require.Len(t, kinds, 3, "every kind of defect drawn")

	// A uniform image cannot show a moved region: no mask, after the tries.
	flat := image.NewRGBA(image.Rect(0, 0, 40, 40))
	for i := range flat.Pix {
		flat.Pix[i] = 200
	}
	img, mask := CorruptStructural(flat, rand.New(rand.NewPCG(1, 1)))
	require.Equal(t, flat.Pix, img.Pix)
	for _, v := range mask.Pix {
		require.Zero(t, v)
	}
}

// TestTurnAndMirror checks that turn leaves its square as one of the three
// rotations of the source's (written out here by their formulas), each
// drawn for some seed, and mirror its rectangle as one of the two flips.
func TestTurnAndMirror(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for y := range 30 {
		for x := range 40 {
			src.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	region := func(img *image.RGBA, r image.Rectangle, at func(x, y int) (int, int)) []color.RGBA {
		var v []color.RGBA
		for y := range r.Dy() {
			for x := range r.Dx() {
				sx, sy := at(x, y)
				v = append(v, img.RGBAAt(r.Min.X+sx, r.Min.Y+sy))
			}
		}
		return v
	}
	id := func(x, y int) (int, int) { return x, y }
	turns, flips := map[int]int{}, map[int]int{}
	for seed := range uint64(30) {
		out := image.NewRGBA(src.Rect)
		copy(out.Pix, src.Pix)
		rng := rand.New(rand.NewPCG(seed, 1))
		r := turn(out, src, rng, 0.03+0.07*rng.Float64())
		s := r.Dx()
		require.Equal(t, s, r.Dy(), "a square")
		got := region(out, r, id)
		rotations := []func(x, y int) (int, int){
			func(x, y int) (int, int) { return y, s - 1 - x },
			func(x, y int) (int, int) { return s - 1 - x, s - 1 - y },
			func(x, y int) (int, int) { return s - 1 - y, x },
		}
		match := -1
		for q, f := range rotations {
			if slices.Equal(got, region(src, r, f)) {
				match = q
			}
		}
		require.NotEqual(t, -1, match, "seed %d: not a rotation of the source square", seed)
		turns[match]++

		copy(out.Pix, src.Pix)
		r = mirror(out, src, rand.New(rand.NewPCG(seed, 1)))
		got = region(out, r, id)
		w, h := r.Dx(), r.Dy()
		lr := region(src, r, func(x, y int) (int, int) { return w - 1 - x, y })
		tb := region(src, r, func(x, y int) (int, int) { return x, h - 1 - y })
		switch {
		case slices.Equal(got, lr):
			flips[0]++
		case slices.Equal(got, tb):
			flips[1]++
		default:
			t.Fatalf("seed %d: not a flip of the source rectangle", seed)
		}
	}
	require.Len(t, turns, 3, "quarter, half and three-quarter turns")
	require.Len(t, flips, 2, "both flips")
}

// TestCorruptLogical checks the logical defects: seeded, the mask exactly
// the pixels changed by more than 24, nothing changed at the border, a
// larger share of the image than the structural kinds, and both kinds
// drawn; a missing part shows the border's colour.
func TestCorruptLogical(t *testing.T) {
	const w, h = 96, 80
	src := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(7, 8))
	for y := range h {
		for x := range w {
			c := color.RGBA{30, 40, 50, 255} // the background
			if x >= 12 && y >= 10 && x < w-12 && y < h-10 {
				c = color.RGBA{uint8(100 + rng.IntN(150)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
			}
			src.SetRGBA(x, y, c)
		}
	}
	kinds := map[int]int{}
	for seed := range uint64(40) {
		img, mask := corruptTwice(t, CorruptLogical, src, seed, 6)
		background := 0
		inside := changedPixels(t, seed, src, img, mask, func(_, _ int, a color.RGBA, big bool) {
			if big && absDiff(a.R, 30) <= 6 && absDiff(a.G, 40) <= 6 && absDiff(a.B, 50) <= 6 {
				background++
			}
		})
		share := float64(inside) / (w * h)
		require.True(t, share > 0.03 && share < 0.35, "seed %d: the defect covers %.3f of the image", seed, share)
		kind := rand.New(rand.NewPCG(seed, 6)).IntN(2)
		kinds[kind]++
		if kind == 0 {
			require.Equal(t, inside, background, "seed %d: a missing part shows the background", seed)
		}
	}
	require.Len(t, kinds, 2, "both kinds drawn")
}

// corruptTwice runs corrupt twice with the same seed, requires the same
// image and mask, and returns them.
func corruptTwice(t *testing.T, corrupt func(image.Image, *rand.Rand) (*image.RGBA, *image.Gray), src image.Image, seed, stream uint64) (*image.RGBA, *image.Gray) {
	t.Helper()
	img, mask := corrupt(src, rand.New(rand.NewPCG(seed, stream)))
	again, mask2 := corrupt(src, rand.New(rand.NewPCG(seed, stream)))
	require.Equal(t, img.Pix, again.Pix, "seed %d", seed)
	require.Equal(t, mask.Pix, mask2.Pix, "seed %d", seed)
	require.Equal(t, src.Bounds(), img.Bounds())
	return img, mask
}

// changedPixels checks a region edit pixel by pixel: nothing changes in
// the 4-pixel border, and the mask holds exactly the pixels changed by
// more than 24 in some channel. It calls each on every pixel (big: in the
// mask) and returns the mask's size.
func changedPixels(t *testing.T, seed uint64, src, img *image.RGBA, mask *image.Gray, each func(x, y int, a color.RGBA, big bool)) int {
	t.Helper()
	w, h := src.Rect.Dx(), src.Rect.Dy()
	inside := 0
	for y := range h {
		for x := range w {
			a, b := img.RGBAAt(x, y), src.RGBAAt(x, y)
			if a != b {
				require.True(t, x >= 4 && y >= 4 && x < w-4 && y < h-4, "seed %d: pixel %d,%d at the border changed", seed, x, y)
			}
			big := max(absDiff(a.R, b.R), absDiff(a.G, b.G), absDiff(a.B, b.B)) > 24
			require.Equal(t, big, mask.GrayAt(x, y).Y == 255, "seed %d: mask at %d,%d", seed, x, y)
			if big {
				inside++
			}
			each(x, y, a, big)
		}
	}
	return inside
}
