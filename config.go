package anomnet

import (
	"fmt"
	"image"
	"math"
	"slices"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/dataset"
)

// Config holds every setting of a model: what the backbone taps, the
// adapter, the centroids, both training stages, scoring and thresholds.
// DefaultConfig returns the library's defaults and PaperConfig METHOD.md's
// settings; in a Config given to New, a zero field also means its default,
// so a program sets only what it changes. The ablations of METHOD.md
// section 4 are the No* and SingleStage switches, whose zero value is the
// full method (with training epochs to run it).
type Config struct {
	// Taps are the backbone layers whose maps feed the adapter.
	Taps []string `json:"taps"`
	// Grid is the tap whose map size the feature grid takes: the other
	// maps are pooled down or interpolated up to it. "" (the default)
	// takes the largest tapped map.
	Grid string `json:"grid,omitempty"`
	// Resize and Crop are the preprocessing of the crop input (the
	// default, InputCrop: METHOD.md's and the MVTec AD benchmark's): resize
	// to Resize x Resize, aspect ratio not kept, then the centred Crop x
	// Crop square.
	Resize int `json:"resize"`
	Crop   int `json:"crop"`
	// Input is how an image becomes the backbone's input: InputAuto (the
	// default), InputCrop (Resize, then Crop) or InputFull, the whole
	// image resized to the model's frame, Width x Height, with nothing
	// cut. Fit sets an unset frame from the training images (dataset.Frame
	// of their median size: the aspect ratio kept, the shorter side
	// FullSide pixels unless the longer one would pass FullMax). An image
	// of another shape is resized to the frame all the same. InputTile
	// keeps each image at its own resolution and cuts it into TileSize x
	// TileSize tiles that overlap by the share TileOverlap (dataset.Tiles;
	// an image smaller than a tile is first enlarged to its size; 0 takes
	// the defaults, 224 and 0.25): Fit trains on the tiles of the good
	// images, without overlap, and Predict scores an image tile by tile, a
	// batch at a time, and blends the tiles' maps into one map of the
	// image's size. InputAuto is resolved by Fit (Config.Frame) from the
	// training images' sizes: InputFull where their median elongation (the
	// longer side over the shorter) exceeds AutoAspect, else InputCrop;
	// the fitted model keeps the one chosen. In the full input an image
	// that lies the other way from the frame, wide in a tall frame or tall
	// in a wide one, is resized to the frame turned a quarter turn
	// (dataset.Preprocess.Turns): the backbone sees it upright, its
	// feature maps are turned into the frame's layout, and its anomaly
	// map is turned back; NoTurn resizes it to the frame as it is
	// (squashed), as models saved before this existed do.
	Input       string  `json:"input,omitempty"`
	NoTurn      bool    `json:"no_turn"`
	FullSide    int     `json:"full_side,omitempty"`
	FullMax     int     `json:"full_max,omitempty"`
	Width       int     `json:"width,omitempty"`
	Height      int     `json:"height,omitempty"`
	TileSize    int     `json:"tile_size,omitempty"`
	TileOverlap float64 `json:"tile_overlap,omitempty"`

	// Adapter configures the feature adapter (METHOD.md 3).
	Adapter adapter.Options `json:"adapter"`

	// K is the number of centroids. METHOD.md leaves it open; 0 chooses
	// it from the data: KFraction of the training feature vectors (one per
	// location of each training image), at least KMin and at most KMax
	// (and never more than there are vectors).
	K         int     `json:"k"`
	KFraction float64 `json:"k_fraction"`
	KMin      int     `json:"k_min"`
	KMax      int     `json:"k_max"`
	// Init is how the centroids start: InitMean (METHOD.md's: the global
	// mean of the training features plus jitter), InitKMeansPP (k-means++
	// seeding on a sample of the training features) or InitKCenter (greedy
	// farthest-point seeding over every training feature vector, as
	// PatchCore's coreset, with distances tracked through a random
	// projection to centroid.ProjectionDim dimensions).
	Init string `json:"init"`
	// Jitter is the standard deviation of the initial jitter, as a
	// fraction of the features' mean per-dimension standard deviation.
	Jitter float64 `json:"jitter"`
	// Delta is the separation threshold; 0 means the data-driven default,
	// the mean distance of the training features to their global mean.
	Delta float64 `json:"delta"`

	// Epochs1 and Epochs2 are the epochs of stage 1 (centroid
	// optimisation) and stage 2 (contrastive learning). Both 0, the
	// default, trains nothing: the seeded centroids score, through the
	// adapter's starting point. By the validation protocol of
	// docs/RESULTS.md, training did not improve detection over that
	// start on the shared data; PaperConfig trains 10 + 10 epochs.
	Epochs1 int `json:"epochs1"`
	Epochs2 int `json:"epochs2"`
	// BatchSize is the number of images per training step.
	BatchSize int `json:"batch_size"`
	// LR is Adam's learning rate for the adapter; LRCentroids that for the
	// centroids (0: LR).
	LR          float64 `json:"lr"`
	LRCentroids float64 `json:"lr_centroids"`
	// WeightDecay is added to the adapter's gradient (PyTorch's Adam
	// weight_decay), times the parameters (DecayTo DecayZero, METHOD.md)
	// or times their difference from where they started (DecayStart: an
	// anchor to the initial, identity adapter, so that training cannot
	// shrink the feature space towards the origin). The centroids get
	// none: decay would pull them to the origin of the feature space,
	// which means nothing there.
	WeightDecay float64 `json:"weight_decay"`
	DecayTo     string  `json:"decay_to"`
	// TrainK bounds the centroids that train with InitKCenter: the first
	// TrainK seeds (a coarser farthest-point cover) move in training,
	// whose losses cost K times the features; after training all K seeds
	// are read again through the trained adapter and score.
	TrainK int `json:"train_k"`

	// Loss weights.
	LambdaAtt float64 `json:"lambda_att"`
	LambdaSep float64 `json:"lambda_sep"`
	LambdaEnt float64 `json:"lambda_ent"`
	LambdaCon float64 `json:"lambda_con"`
	// Margin is the contrastive negative margin m; Sample the number M of
	// feature vectors per batch that form the contrastive pairs.
	Margin float64 `json:"margin"`
	Sample int     `json:"sample"`

	// TapBalance weighs the tapped layers in the feature space by scaling
	// each tap's features: TapDims by sqrt(C_min / C_i), so that layers
	// whose channels vary alike count alike in a distance however many
	// channels they have; TapChannels by C_min / C_i, which halves the
	// weight of a layer with twice the channels again (the weight
	// PatchCore's embedding gives its layers, whose pooling averages the
	// channels of the wider one in pairs); TapNone (METHOD.md) leaves
	// them as they come.
	// The scale is the adapter's starting point: training may move it.
	TapBalance string `json:"tap_balance"`

	// Ablation switches (METHOD.md 4). NoSep and NoEnt drop those losses
	// from stage 1; NoStage2 skips the contrastive stage. SingleStage
	// trains everything jointly for Epochs1 epochs (centroids trainable,
	// contrastive term included unless NoCon; Epochs2 unused).
	NoSep       bool `json:"no_sep"`
	NoEnt       bool `json:"no_ent"`
	NoStage2    bool `json:"no_stage2"`
	SingleStage bool `json:"single_stage"`
	NoCon       bool `json:"no_con"`

	// Scorer, when set, scores the adapted features in place of the
	// NearestScorer of Crop and Sigma, for the calibration after training
	// and for Predict. A saved model does not keep it: see
	// Model.SetScorer.
	Scorer Scorer `json:"-"`
	// Sigma is the Gaussian blur of the pixel anomaly map, in pixels
	// (METHOD.md: 4; the default, 8, was chosen by the validation
	// protocol of docs/RESULTS.md).
	Sigma float64 `json:"sigma"`
	// ImageSigma is the Gaussian blur of the map whose maximum is the
	// image score (ImageScore ScoreMap), in pixels: a wider blur than the
	// pixel map's weighs a region over a single hot spot (the default, 8,
	// was chosen by the validation protocol of docs/RESULTS.md; METHOD.md
	// and the paper preset blur both maps alike, Sigma). A model file
	// written before it existed scores with Sigma.
	ImageSigma float64 `json:"image_sigma"`
	// MapPower raises each location's distance to this power before the
	// upsampling and blur (NearestScorer.Power; 1: METHOD.md's distance,
	// 2: the squared distance of PatchCore's code; the default, 0.5, was
	// chosen by the validation protocol of docs/RESULTS.md).
	MapPower float64 `json:"map_power"`
	// MapBaseline is what is subtracted from each image's location scores
	// before the upsampling: BaselineNone (METHOD.md, the default)
	// nothing; BaselineMedian the median of the image's own location
	// scores (NearestScorer.Baseline 0.5), so that a location scores how
	// far it stands out from the rest of its image. The median helps
	// where normal parts differ from one another as a whole and defects
	// are small, but it erases a defect that covers much of the image (a
	// part missing): docs/RESULTS.md, fourth round. BaselineCapped
	// subtracts the median but never more than the highest median of the
	// normal training images (Calibration.BaselineCap).
	MapBaseline string `json:"map_baseline"`
	// ImageScore is how an image's score comes from its maps: ScoreMap
	// (METHOD.md: the maximum of the blurred pixel map) or ScoreGrid (the
	// maximum of the location scores before upsampling and blur, as
	// PatchCore scores).
	ImageScore string `json:"image_score"`
	// FalseAlarms is the false-alarm rate the thresholds are set for: the
	// share of normal images above the image threshold, and of normal
	// pixels above the pixel threshold, measured on the training images
	// each scored without its own centroids (see Calibration). The image
	// threshold is a conformal order statistic: n images resolve rates
	// down to 1/(n+1). ImageThreshold or PixelThreshold (raw scores), when
	// set, replace the calibrated ones.
	//
	// The default, 5%, is the rate the good images a category has can
	// promise: n of them resolve 5% from n = 19 on (1% needs 99), and at
	// n = 200 the threshold is the tenth highest score, so the rate that new
	// normal images meet varies from fit to fit by about a third of the
	// target (at 1% it is the second highest and varies by about 70%). A line that can afford fewer
	// false alarms sets a lower rate, at fit or later without refitting
	// (Model.SetFalseAlarmRate), and catches fewer defects.
	FalseAlarms    float64 `json:"false_alarms"`
	ImageThreshold float64 `json:"image_threshold"`
	PixelThreshold float64 `json:"pixel_threshold"`
	// Deprecated: ImageQuantile and PixelQuantile are read from model
	// files of earlier versions and otherwise ignored; FalseAlarms
	// replaces them.
	ImageQuantile float64 `json:"image_quantile,omitempty"`
	PixelQuantile float64 `json:"pixel_quantile,omitempty"`

	// Seed makes a run reproducible: it drives the jitter, k-means++, the
	// shuffling and the contrastive samples.
	Seed uint64 `json:"seed"`
	// BackboneBatch is the number of images per backbone forward pass.
	BackboneBatch int `json:"backbone_batch"`
	// CacheBytes bounds the memory of the backbone-feature cache; features
	// beyond it spill to a temporary file in TempDir ("" : the system's).
	CacheBytes int64  `json:"-"`
	TempDir    string `json:"-"`
	// MaxPixels caps the pixels (width times height) of an image given to
	// Fit or Predict; larger images are refused with an error instead of
	// being resized. 0 means dataset.DefaultMaxPixels (64 Mi pixels).
	MaxPixels int `json:"-"`
	// Progress, when set, is called as training advances. It runs on the
	// training goroutine: it should return quickly.
	Progress func(Progress) `json:"-"`
	// Snapshot, when set, receives the centroids and a fixed sample of
	// adapted features after initialisation and after every epoch of
	// stage 1 (or of the joint stage): what a plot of the centroids'
	// evolution needs. It runs on the training goroutine.
	Snapshot func(Snapshot) `json:"-"`
}

// Snapshot is the state of training at the end of an epoch (Epoch 0: just
// after initialisation).
type Snapshot struct {
	Stage Stage
	Epoch int
	// D is the feature dimension; Centroids holds K x D values and
	// Features a sample of adapted feature vectors (n x D), the same
	// locations of the same training images at every snapshot.
	D         int
	Centroids []float32
	Features  []float32
}

// DefaultConfig returns the library's defaults: METHOD.md's, except where
// the validation protocol of docs/RESULTS.md measured a better choice on
// normal images (K from the data with farthest-point seeding, the layers'
// balance, no training epochs, the map's power and blur), and this
// library's choices where METHOD.md leaves one.
func DefaultConfig() Config {
	return Config{
		Taps:          []string{"stage2", "stage3"},
		Resize:        256,
		Crop:          224,
		Input:         InputAuto,
		FullSide:      224,
		FullMax:       512,
		TileSize:      224,
		TileOverlap:   0.25,
		K:             0,
		KFraction:     0.1,
		KMin:          256,
		KMax:          65536,
		Init:          InitKCenter,
		TapBalance:    TapChannels,
		ImageScore:    ScoreMap,
		Jitter:        0.01,
		Epochs1:       0,
		Epochs2:       0,
		BatchSize:     32,
		LR:            1e-4,
		WeightDecay:   5e-4,
		DecayTo:       DecayStart,
		TrainK:        1024,
		LambdaAtt:     1,
		LambdaSep:     1,
		LambdaEnt:     0.1,
		LambdaCon:     0.8,
		Margin:        0.1,
		Sample:        4096,
		Sigma:         8,
		ImageSigma:    8,
		MapPower:      0.5,
		MapBaseline:   BaselineNone,
		FalseAlarms:   0.05,
		Seed:          1,
		BackboneBatch: 8,
		CacheBytes:    2 << 30,
		MaxPixels:     dataset.DefaultMaxPixels,
	}
}

// Validate returns an error naming the first setting of c out of range,
// once zero fields take DefaultConfig's values (as New does): a program
// can check a Config before it has a backbone.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// PaperConfig returns METHOD.md taken literally, the settings of the
// publication and the specification's own choices: K = 256 centroids at
// the features' mean plus jitter, adapter weight decay towards zero,
// layers as they come, the image score from the blurred map, and both
// training stages with their 10 + 10 epochs at learning rate 1e-4. It is
// the "paper" row of docs/RESULTS.md, beside the library's defaults.
func PaperConfig() Config {
	c := DefaultConfig()
	c.K, c.Init, c.Jitter = 256, InitMean, 0.01
	c.TrainK = 256
	c.DecayTo, c.TapBalance, c.ImageScore = DecayZero, TapNone, ScoreMap
	c.Epochs1, c.Epochs2, c.LR, c.WeightDecay = 10, 10, 1e-4, 5e-4
	c.Sigma, c.ImageSigma, c.MapPower = 4, 4, 1
	return c
}

// Preset returns the Config of a named preset: "default" (DefaultConfig)
// or "paper" (PaperConfig).
func Preset(name string) (Config, error) {
	switch name {
	case "", "default":
		return DefaultConfig(), nil
	case "paper":
		return PaperConfig(), nil
	}
	return Config{}, fmt.Errorf("anomnet: no preset %q (want default or paper)", name)
}

// withDefaults returns c with zero fields replaced by DefaultConfig's, or an
// error naming the first setting out of range.
func (c Config) withDefaults() (Config, error) {
	def := DefaultConfig()
	if len(c.Taps) == 0 {
		c.Taps = def.Taps
	}
	c.Taps = slices.Clone(c.Taps)
	if c.Grid != "" {
		i := slices.Index(c.Taps, c.Grid)
		if i < 0 {
			return c, fmt.Errorf("anomnet: config: grid %q is not one of the taps %v", c.Grid, c.Taps)
		}
		c.Adapter.Grid = i + 1
	}
	ints := []struct {
		v   *int
		def int
	}{
		{&c.Resize, def.Resize}, {&c.Crop, def.Crop}, {&c.K, def.K}, {&c.BatchSize, def.BatchSize},
		{&c.Sample, def.Sample}, {&c.BackboneBatch, def.BackboneBatch}, {&c.MaxPixels, def.MaxPixels},
		{&c.KMin, def.KMin}, {&c.KMax, def.KMax}, {&c.TrainK, def.TrainK},
		{&c.FullSide, def.FullSide}, {&c.FullMax, def.FullMax}, {&c.TileSize, def.TileSize},
	}
	for _, f := range ints {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	floats := []struct {
		v   *float64
		def float64
	}{
		{&c.Jitter, def.Jitter}, {&c.LR, def.LR}, {&c.WeightDecay, def.WeightDecay},
		{&c.LambdaAtt, def.LambdaAtt}, {&c.LambdaSep, def.LambdaSep}, {&c.LambdaEnt, def.LambdaEnt},
		{&c.LambdaCon, def.LambdaCon}, {&c.Margin, def.Margin}, {&c.Sigma, def.Sigma}, {&c.ImageSigma, def.ImageSigma},
		{&c.MapPower, def.MapPower}, {&c.FalseAlarms, def.FalseAlarms},
		{&c.KFraction, def.KFraction}, {&c.TileOverlap, def.TileOverlap},
	}
	for _, f := range floats {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.Init == "" {
		c.Init = def.Init
	}
	if c.Input == "" {
		c.Input = def.Input
	}
	if c.DecayTo == "" {
		c.DecayTo = def.DecayTo
	}
	if c.TapBalance == "" {
		c.TapBalance = def.TapBalance
	}
	if c.ImageScore == "" {
		c.ImageScore = def.ImageScore
	}
	if c.MapBaseline == "" {
		c.MapBaseline = def.MapBaseline
	}
	if c.LRCentroids == 0 {
		c.LRCentroids = c.LR
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = def.CacheBytes
	}
	switch {
	case c.Crop < 1 || c.Crop > c.Resize:
		return c, fmt.Errorf("anomnet: config: crop %d of a %d image", c.Crop, c.Resize)
	case c.Input != InputAuto && c.Input != InputCrop && c.Input != InputFull && c.Input != InputTile:
		return c, fmt.Errorf("anomnet: config: input %q (want %s, %s, %s or %s)", c.Input, InputAuto, InputCrop, InputFull, InputTile)
	case c.TileSize < 32 || c.TileSize%dataset.FrameAlign != 0 || !(c.TileOverlap >= 0 && c.TileOverlap <= 0.75):
		return c, fmt.Errorf("anomnet: config: tiles of %d pixels (want a multiple of %d, at least 32) overlapping by %g (want 0 to 0.75)", c.TileSize, dataset.FrameAlign, c.TileOverlap)
	case c.FullSide < 1 || c.FullMax < 1 || c.Width < 0 || c.Height < 0 || (c.Width == 0) != (c.Height == 0):
		return c, fmt.Errorf("anomnet: config: full frame: side %d, at most %d, frame %dx%d", c.FullSide, c.FullMax, c.Width, c.Height)
	case c.K < 0:
		return c, fmt.Errorf("anomnet: config: K = %d centroids", c.K)
	case c.KFraction <= 0 || c.KFraction > 1 || c.KMin < 1 || c.KMax < c.KMin:
		return c, fmt.Errorf("anomnet: config: centroids from the data: fraction %g, at least %d, at most %d", c.KFraction, c.KMin, c.KMax)
	case c.DecayTo != DecayZero && c.DecayTo != DecayStart:
		return c, fmt.Errorf("anomnet: config: decay to %q (want %s or %s)", c.DecayTo, DecayZero, DecayStart)
	case c.TrainK < 1:
		return c, fmt.Errorf("anomnet: config: %d training centroids", c.TrainK)
	case c.TapBalance != TapDims && c.TapBalance != TapChannels && c.TapBalance != TapNone:
		return c, fmt.Errorf("anomnet: config: tap balance %q (want %s, %s or %s)", c.TapBalance, TapDims, TapChannels, TapNone)
	case c.ImageScore != ScoreMap && c.ImageScore != ScoreGrid:
		return c, fmt.Errorf("anomnet: config: image score %q (want %s or %s)", c.ImageScore, ScoreMap, ScoreGrid)
	case c.MapBaseline != BaselineMedian && c.MapBaseline != BaselineNone && c.MapBaseline != BaselineCapped:
		return c, fmt.Errorf("anomnet: config: map baseline %q (want %s, %s or %s)", c.MapBaseline, BaselineNone, BaselineMedian, BaselineCapped)
	case c.BatchSize < 1 || c.BackboneBatch < 1 || c.Sample < 2:
		return c, fmt.Errorf("anomnet: config: batch size %d, backbone batch %d, sample %d", c.BatchSize, c.BackboneBatch, c.Sample)
	case c.Epochs1 < 0 || c.Epochs2 < 0:
		return c, fmt.Errorf("anomnet: config: negative epochs (%d, %d)", c.Epochs1, c.Epochs2)
	case c.Adapter.Kernel != 0 && c.Adapter.Kernel != 1 && c.Adapter.Kernel != 3:
		return c, fmt.Errorf("anomnet: config: adapter kernel %d (want 1 or 3)", c.Adapter.Kernel)
	case c.Adapter.Height < 0 || c.Adapter.Width < 0:
		return c, fmt.Errorf("anomnet: config: adapter size %dx%d", c.Adapter.Width, c.Adapter.Height)
	case c.Adapter.Grid < 0 || c.Adapter.Grid > len(c.Taps):
		return c, fmt.Errorf("anomnet: config: adapter grid of tap %d of %d", c.Adapter.Grid, len(c.Taps))
	case !(c.Adapter.Centre >= 0 && c.Adapter.Centre <= 1):
		return c, fmt.Errorf("anomnet: config: adapter centre weight %g (want 0 to 1)", c.Adapter.Centre)
	case !(c.FalseAlarms > 0 && c.FalseAlarms < 1):
		return c, fmt.Errorf("anomnet: config: false-alarm rate %g outside (0, 1)", c.FalseAlarms)
	case c.Init != InitMean && c.Init != InitKMeansPP && c.Init != InitKCenter:
		return c, fmt.Errorf("anomnet: config: centroid initialisation %q (want %s, %s or %s)", c.Init, InitMean, InitKMeansPP, InitKCenter)
	case c.CacheBytes < 0:
		return c, fmt.Errorf("anomnet: config: cache budget %d bytes", c.CacheBytes)
	case c.MaxPixels < 0:
		return c, fmt.Errorf("anomnet: config: pixel cap %d", c.MaxPixels)
	}
	for _, f := range []float64{c.Jitter, c.Delta, c.LR, c.LRCentroids, c.WeightDecay, c.LambdaAtt, c.LambdaSep,
		c.LambdaEnt, c.LambdaCon, c.Margin, c.Sigma, c.ImageSigma, c.MapPower, c.ImageThreshold, c.PixelThreshold} {
		if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return c, fmt.Errorf("anomnet: config: %g is not a valid rate, weight, threshold or size", f)
		}
	}
	return c, nil
}

// The choices of Config.TapBalance, Config.ImageScore, Config.MapBaseline,
// Config.DecayTo and Config.Input.
const (
	InputAuto = "auto"
	InputCrop = "crop"
	InputFull = "full"
	InputTile = "tile"

	DecayZero   = "zero"
	DecayStart  = "start"
	TapDims     = "dims"
	TapChannels = "channels"
	TapNone     = "none"
	ScoreMap    = "map"
	ScoreGrid   = "grid"

	BaselineMedian = "median"
	BaselineNone   = "none"
	BaselineCapped = "capped"
)

// The centroid initialisations of Config.Init.
const (
	InitMean     = "mean"
	InitKMeansPP = "kmeans++"
	InitKCenter  = "kcenter"
)

// Progress reports how training advances.
type Progress struct {
	// Stage is the step of Fit: StageFeatures, StageInit, one of the
	// training stages of Config.Plans, or StageCalibrate.
	Stage Stage
	// Epoch (1-based) of Epochs, and Step (1-based) of Steps in the epoch;
	// for "features" and "calibrate", Step counts images.
	Epoch, Epochs int
	Step, Steps   int
	// Losses are the current step's loss values (training stages only).
	Losses Losses
}

// Losses are the terms of one training step, unweighted, and the weighted
// total that was minimised.
type Losses struct {
	Att, Sep, Ent, Pos, Neg, Total float64
}

// Preprocess returns the preprocessing of c: its crop, or in the full
// input its frame (Width x Height, which must be set: see Frame).
func (c Config) Preprocess() dataset.Preprocess {
	switch c.Input {
	case InputFull:
		return dataset.Preprocess{Width: c.Width, Height: c.Height, Turn: !c.NoTurn}
	case InputTile:
		return dataset.Preprocess{Native: true}
	}
	return dataset.Preprocess{Resize: c.Resize, Crop: c.Crop}
}

// AutoAspect is the training images' median elongation (Elongation)
// above which InputAuto takes the full input: the crop input squashes
// each image to a square, and an ImageNet backbone is trained with its
// images stretched by at most 4:3 either way (the aspect range of the
// usual random-resized-crop augmentation). Up to it the crop's MVTec AD
// protocol keeps its resolution and centre; beyond it the crop stretches
// most images into shapes the features were not trained on.
const AutoAspect = 4.0 / 3

// Elongation is the median over sizes of each one's longer side over its
// shorter: how much the crop input stretches the median image (1 for an
// empty sizes).
func Elongation(sizes []image.Point) float64 {
	if len(sizes) == 0 {
		return 1
	}
	e := make([]float64, len(sizes))
	for i, p := range sizes {
		w, h := float64(max(1, p.X)), float64(max(1, p.Y))
		e[i] = max(w, h) / min(w, h)
	}
	slices.Sort(e)
	return e[len(e)/2]
}

// Frame returns c with its input resolved for training images of the
// given sizes: InputAuto becomes InputFull or InputCrop (see AutoAspect;
// InputCrop without sizes), and in the full input an unset frame becomes
// dataset.Frame of their median width and height (the camera's shape,
// which a stray image does not move), with FullSide and FullMax. The crop
// and tile inputs return c as it is.
func (c Config) Frame(sizes []image.Point) Config {
	if c.Input == InputAuto {
		c.Input = InputCrop
		if len(sizes) > 0 && Elongation(sizes) > AutoAspect {
			c.Input = InputFull
		}
	}
	if c.Input != InputFull || c.Width > 0 || len(sizes) == 0 {
		return c
	}
	ws, hs := make([]int, len(sizes)), make([]int, len(sizes))
	for i, p := range sizes {
		ws[i], hs[i] = max(1, p.X), max(1, p.Y)
	}
	slices.Sort(ws)
	slices.Sort(hs)
	side, most := c.FullSide, c.FullMax
	if side == 0 {
		side = DefaultConfig().FullSide
	}
	if most == 0 {
		most = DefaultConfig().FullMax
	}
	c.Width, c.Height = dataset.Frame(ws[len(ws)/2], hs[len(hs)/2], side, most)
	return c
}
