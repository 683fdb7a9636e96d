package anomnet

import (
	"image"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPresets checks that the paper preset is METHOD.md's literal
// settings and valid, and that unknown presets are refused.
func TestPresets(t *testing.T) {
	p, err := Preset("paper")
	require.NoError(t, err)
	require.NoError(t, p.Validate())
	require.Equal(t, 256, p.K)
	require.Equal(t, InitMean, p.Init)
	require.Equal(t, [2]int{10, 10}, [2]int{p.Epochs1, p.Epochs2})
	require.Equal(t, 1e-4, p.LR)
	require.Equal(t, DecayZero, p.DecayTo)
	require.Equal(t, ScoreMap, p.ImageScore)
	require.Equal(t, TapNone, p.TapBalance)
	require.Len(t, p.Plans(), 2)
	require.Equal(t, Plan{Stage: Stage2, Epochs: 10, Con: true}, p.Plan(Stage2))
	require.Equal(t, Plan{Stage: Stage1}, DefaultConfig().Plan(Stage1), "the defaults train nothing")
	d, err := Preset("")
	require.NoError(t, err)
	require.Equal(t, DefaultConfig().K, d.K)
	_, err = Preset("fast")
	require.ErrorContains(t, err, `no preset "fast"`)
}

// TestNumCentroids checks K from the data: the share, the floor, the cap
// and never more centroids than vectors.
func TestNumCentroids(t *testing.T) {
	c, err := DefaultConfig().withDefaults()
	require.NoError(t, err)
	c.KFraction, c.KMin, c.KMax = 0.1, 256, 32768
	for n, want := range map[int]int{100: 100, 1000: 256, 5000: 500, 206192: 20619, 1_000_000: 32768} {
		require.Equal(t, want, c.numCentroids(n), "%d vectors", n)
	}
	c.K = 77
	require.Equal(t, 77, c.numCentroids(1_000_000))
}

// TestGrid checks how Config.Grid resolves to the adapter's grid: ""
// (the default) is the largest map, a tap name its place among the taps,
// and a grid outside the taps is an error.
func TestGrid(t *testing.T) {
	c, err := Config{}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, []string{"stage2", "stage3"}, c.Taps)
	require.Equal(t, "", c.Grid)
	require.Equal(t, 0, c.Adapter.Grid, "the largest map")

	c, err = Config{Taps: []string{"stage1", "stage2", "stage3"}, Grid: "stage2"}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, 2, c.Adapter.Grid, "stage2 is the second tap")

	c, err = Config{Taps: []string{"stage3", "stage1"}, Grid: "stage1"}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, 2, c.Adapter.Grid)

	require.ErrorContains(t, Config{Taps: []string{"stage3"}, Grid: "stage2"}.Validate(), `grid "stage2" is not one of the taps`)
	c = DefaultConfig()
	c.Grid, c.Adapter.Grid = "", 4
	require.ErrorContains(t, c.Validate(), "adapter grid of tap 4 of 2")
}

func TestInputConfig(t *testing.T) {
	c, err := Config{}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, InputAuto, c.Input, "the default input") // an old model file's is the crop: TestOldModelFile
	require.ErrorContains(t, Config{Input: "tiles"}.Validate(), `input "tiles" (want auto, crop, full or tile)`)
	require.ErrorContains(t, Config{Input: InputFull, Width: 64}.Validate(), "frame 64x0")
	require.ErrorContains(t, Config{Input: InputFull, FullMax: -3}.Validate(), "at most -3")
	require.ErrorContains(t, Config{Input: InputTile, TileSize: 100}.Validate(), "tiles of 100 pixels")
	require.ErrorContains(t, Config{Input: InputTile, TileOverlap: 0.9}.Validate(), "overlapping by 0.9")
	tile, err := Config{Input: InputTile}.withDefaults()
	require.NoError(t, err)
	require.True(t, tile.Preprocess().Native)
	w, h := tile.InputSize()
	require.Equal(t, [2]int{224, 224}, [2]int{w, h})

	full := DefaultConfig()
	full.Input = InputFull
	// The frame comes from the median size: one stray image moves nothing.
	f := full.Frame([]image.Point{{201, 512}, {203, 512}, {205, 512}, {1000, 100}, {202, 512}})
	require.Equal(t, [2]int{208, 512}, [2]int{f.Width, f.Height})
	require.Equal(t, 208, f.Preprocess().Width)
	require.Equal(t, f, f.Frame([]image.Point{{100, 100}}), "a set frame stays")
	crop := DefaultConfig()
	crop.Input = InputCrop
	require.Equal(t, crop, crop.Frame([]image.Point{{201, 512}}), "the crop input has no frame")
	require.Equal(t, 224, crop.Preprocess().Crop)
}

// TestAutoInput checks how InputAuto resolves: the crop up to a median
// elongation of 4:3, the full input with its frame beyond it, tall images
// or wide or both; the crop without sizes.
func TestAutoInput(t *testing.T) {
	auto := DefaultConfig()
	require.Equal(t, InputAuto, auto.Input)
	require.NoError(t, auto.Validate())
	for _, c := range []struct {
		sizes []image.Point
		input string
		w, h  int
	}{
		{[]image.Point{{512, 512}}, InputCrop, 0, 0},
		{[]image.Point{{400, 300}, {300, 400}, {400, 300}}, InputCrop, 0, 0},     // 4:3 exactly
		{[]image.Point{{401, 300}, {401, 300}, {100, 400}}, InputFull, 304, 224}, // just past it
		{[]image.Point{{300, 300}, {150, 400}, {400, 150}}, InputFull, 224, 224}, // elongated each, square in their median size
		{[]image.Point{{300, 300}, {150, 400}, {300, 310}}, InputCrop, 0, 0},
		{[]image.Point{{203, 512}, {201, 512}, {207, 512}}, InputFull, 208, 512},
		{[]image.Point{{1920, 1080}}, InputFull, 400, 224},
		{nil, InputCrop, 0, 0},
	} {
		require.Equal(t, c.input == InputFull, Elongation(c.sizes) > AutoAspect)
		f := auto.Frame(c.sizes)
		require.Equal(t, c.input, f.Input, "%v", c.sizes)
		require.Equal(t, [2]int{c.w, c.h}, [2]int{f.Width, f.Height}, "%v", c.sizes)
		require.NoError(t, f.Validate())
	}
	// Only auto is resolved: the other inputs stay as they are.
	for _, in := range []string{InputCrop, InputTile} {
		c := auto
		c.Input = in
		require.Equal(t, in, c.Frame([]image.Point{{203, 512}}).Input)
	}
}
