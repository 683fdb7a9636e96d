package dataset

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCorrupt checks that each synthetic defect changes the image inside
// its mask only, covers a sensible share of it away from the borders, and
// is the same for the same seed.
func TestCorrupt(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 96, 80))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range src.Pix {
		src.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			src.Pix[i] = 255
		}
	}
	kinds := map[int]int{}
	for seed := range uint64(60) {
		img, mask := corruptTwice(t, Corrupt, src, seed, 9)
		inside, changed := 0, 0
		for y := range 80 {
			for x := range 96 {
				in := mask.GrayAt(x, y).Y == 255
				if in {
					inside++
					require.True(t, x >= 4 && y >= 4 && x < 92 && y < 76, "seed %d: defect pixel %d,%d at the border", seed, x, y)
				}
				if img.RGBAAt(x, y) != src.RGBAAt(x, y) {
					changed++
					require.True(t, in, "seed %d: pixel %d,%d changed outside the mask", seed, x, y)
				}
			}
		}
		share := float64(inside) / (96 * 80)
		require.True(t, share > 0.001 && share < 0.06, "seed %d: the defect covers %.3f of the image", seed, share)
		require.Greater(t, changed, inside/4, "seed %d: %d of %d masked pixels changed", seed, changed, inside)
		kinds[rand.New(rand.NewPCG(seed, 9)).IntN(3)]++
	}
	require.Len(t, kinds, 3, "every kind of defect drawn")
	// The source is not touched, and tiny images come back unchanged.
	tiny := image.NewRGBA(image.Rect(0, 0, 8, 8))
	tiny.Set(1, 1, color.White)
	img, mask := Corrupt(tiny, rand.New(rand.NewPCG(1, 1)))
	require.Equal(t, tiny.Pix, img.Pix)
	require.Equal(t, make([]uint8, 64), mask.Pix)
}

// TestCorruptLarge checks the large defect: seeded, 15 - 65 % of the image,
// every masked pixel changed and nothing changed far outside the mask,
// darker and brighter both drawn.
func TestCorruptLarge(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 96, 80))
	for i := range src.Pix {
		src.Pix[i] = uint8(60 + i%97)
		if i%4 == 3 {
			src.Pix[i] = 255
		}
	}
	var darker, brighter int
	for seed := range uint64(40) {
		img, mask := corruptTwice(t, CorruptLarge, src, seed, 3)
		inside, sum := 0, 0
		for y := range 80 {
			for x := range 96 {
				a, b := img.RGBAAt(x, y), src.RGBAAt(x, y)
				if mask.GrayAt(x, y).Y == 255 {
					inside++
					require.NotEqual(t, a, b, "seed %d: masked pixel %d,%d unchanged", seed, x, y)
					sum += int(a.R) - int(b.R)
				} else if a != b {
					// Only the fading rim outside the mask may change.
					near := false
					for _, d := range [][2]int{{-8, 0}, {8, 0}, {0, -8}, {0, 8}} {
						nx, ny := x+d[0], y+d[1]
						if nx >= 0 && ny >= 0 && nx < 96 && ny < 80 && mask.GrayAt(nx, ny).Y == 255 {
							near = true
						}
					}
					require.True(t, near, "seed %d: pixel %d,%d changed far from the mask", seed, x, y)
				}
			}
		}
		share := float64(inside) / (96 * 80)
		require.True(t, share > 0.15 && share < 0.65, "seed %d: the defect covers %.3f of the image", seed, share)
		if sum < 0 {
			darker++
		} else {
			brighter++
		}
	}
	require.Positive(t, darker)
	require.Positive(t, brighter)
}
