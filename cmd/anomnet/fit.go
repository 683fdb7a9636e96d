package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
)

// configFlags registers a flag for each Config knob, with the values of
// the preset that args name (-preset, DefaultConfig's without one), and
// returns a function that reads them back. The preset is read from args
// before the flags are parsed, so that the other flags change it wherever
// they stand.
func configFlags(fs *flagSet, args []string) func() (anomnet.Config, error) {
	name := presetArg(args)
	c, presetErr := anomnet.Preset(name)
	if presetErr != nil {
		c = anomnet.DefaultConfig()
	}
	var noTrain bool
	fs.String("preset", name, "start from a preset: default, or paper (METHOD.md literally: mean + jitter, lr 1e-4, 10 + 10 epochs)")
	taps := fs.String("taps", strings.Join(c.Taps, ","), "backbone taps, comma-separated")
	grid := fs.String("grid", c.Grid, "the tap whose map size the feature grid takes (\"\": the largest tapped map)")
	fs.IntVar(&c.Resize, "resize", c.Resize, "resize images to this square size")
	fs.IntVar(&c.Crop, "crop", c.Crop, "then crop this centred square")
	fs.StringVar(&c.Input, "input", c.Input, "input: auto (full where the training images' median elongation, longer side over shorter, is beyond 4:3, else crop), crop (resize to a square, crop its centre: the MVTec AD protocol), full (the whole image, its aspect ratio kept) or tile (the image at its own resolution, in overlapping tiles)")
	fs.IntVar(&c.TileSize, "tile-size", c.TileSize, "with -input tile: the side of a tile, pixels (a multiple of 16)")
	fs.Float64Var(&c.TileOverlap, "tile-overlap", c.TileOverlap, "with -input tile: the share of a tile that neighbouring tiles share when predicting (0 to 0.75)")
	fs.IntVar(&c.FullSide, "full-side", c.FullSide, "with -input full: the shorter side of the frame, pixels")
	fs.IntVar(&c.FullMax, "full-max", c.FullMax, "with -input full: the longer side of the frame at most, pixels")
	fs.BoolVar(&c.NoTurn, "no-turn", c.NoTurn, "with -input full: resize each image to the frame as it lies (by default an image that lies the other way, wide in a tall frame or tall in a wide one, is resized to the frame turned a quarter turn, upright, and its maps are turned)")
	fs.IntVar(&c.K, "k", c.K, "number of centroids (0: -k-fraction of the training feature vectors, within -k-min and -k-max)")
	fs.Float64Var(&c.KFraction, "k-fraction", c.KFraction, "with -k 0: centroids as a share of the training feature vectors")
	fs.IntVar(&c.KMin, "k-min", c.KMin, "with -k 0: at least this many centroids")
	fs.IntVar(&c.KMax, "k-max", c.KMax, "with -k 0: at most this many centroids")
	fs.StringVar(&c.TapBalance, "tap-balance", c.TapBalance, "weigh the tapped layers: dims (scale sqrt(Cmin/C)), channels (Cmin/C, PatchCore's weights) or none")
	fs.StringVar(&c.ImageScore, "image-score", c.ImageScore, "image score: grid (max of the location scores) or map (max of the blurred pixel map)")
	fs.BoolFunc("no-train", "same as -epochs1 0 -epochs2 0: no training (the default)", func(string) error { noTrain = true; return nil })
	fs.StringVar(&c.Init, "init", c.Init, "centroid initialisation: mean (mean + jitter), kmeans++ or kcenter (greedy farthest point)")
	fs.BoolFunc("kmeanspp", "same as -init kmeans++", func(string) error { c.Init = anomnet.InitKMeansPP; return nil })
	fs.Float64Var(&c.Jitter, "jitter", c.Jitter, "initial jitter, fraction of the features' mean std")
	fs.Float64Var(&c.Delta, "delta", c.Delta, "separation threshold (0: mean distance of the features to their mean)")
	fs.IntVar(&c.Adapter.Height, "adapter-height", c.Adapter.Height, "height of the adapted feature grid (0: the largest tapped map's)")
	fs.IntVar(&c.Adapter.Width, "adapter-width", c.Adapter.Width, "width of the adapted feature grid (0: the largest tapped map's)")
	fs.IntVar(&c.Adapter.Kernel, "adapter-kernel", max(c.Adapter.Kernel, 1), "adapter convolution kernel, 1 or 3")
	fs.BoolVar(&c.Adapter.NoPool, "no-pool", c.Adapter.NoPool, "turn off the adapter's 3x3 average aggregation")
	fs.Float64Var(&c.Adapter.Centre, "pool-centre", c.Adapter.Centre, "share of the 3x3 aggregation's weight moved to the window's centre (0: the plain mean; 0.1: PatchCore's first-layer weights)")
	fs.IntVar(&c.Epochs1, "epochs1", c.Epochs1, "stage 1 epochs")
	fs.IntVar(&c.Epochs2, "epochs2", c.Epochs2, "stage 2 epochs")
	fs.IntVar(&c.BatchSize, "batch", c.BatchSize, "images per training step")
	fs.Float64Var(&c.LR, "lr", c.LR, "Adam learning rate of the adapter")
	fs.Float64Var(&c.LRCentroids, "lr-centroids", c.LRCentroids, "Adam learning rate of the centroids (0: -lr)")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "adapter weight decay")
	fs.StringVar(&c.DecayTo, "decay-to", c.DecayTo, "adapter weight decay towards: start (its initial, identity weights) or zero (METHOD.md)")
	fs.IntVar(&c.TrainK, "train-k", c.TrainK, "with -init kcenter: centroids that train (the first seeds); all are re-read through the trained adapter")
	fs.Float64Var(&c.LambdaAtt, "lambda-att", c.LambdaAtt, "attraction loss weight")
	fs.Float64Var(&c.LambdaSep, "lambda-sep", c.LambdaSep, "separation loss weight")
	fs.Float64Var(&c.LambdaEnt, "lambda-ent", c.LambdaEnt, "entropy loss weight")
	fs.Float64Var(&c.LambdaCon, "lambda-con", c.LambdaCon, "contrastive loss weight")
	fs.Float64Var(&c.Margin, "margin", c.Margin, "contrastive negative margin")
	fs.IntVar(&c.Sample, "sample", c.Sample, "feature vectors per batch in the contrastive pairs")
	fs.BoolVar(&c.NoSep, "no-sep", c.NoSep, "ablation: no separation loss in stage 1")
	fs.BoolVar(&c.NoEnt, "no-ent", c.NoEnt, "ablation: no entropy loss in stage 1")
	fs.BoolVar(&c.NoStage2, "no-stage2", c.NoStage2, "ablation: skip stage 2")
	fs.BoolVar(&c.SingleStage, "single-stage", c.SingleStage, "ablation: all losses jointly for -epochs1 epochs")
	fs.BoolVar(&c.NoCon, "no-con", c.NoCon, "ablation: single stage without the contrastive loss")
	fs.Float64Var(&c.Sigma, "sigma", c.Sigma, "Gaussian blur of the anomaly map, pixels")
	fs.Float64Var(&c.ImageSigma, "image-sigma", c.ImageSigma, "Gaussian blur of the map whose maximum is the image score (-image-score map), pixels")
	fs.Float64Var(&c.MapPower, "map-power", c.MapPower, "power of the location distances before upsampling and blur (1: METHOD.md's distances, 2: squared distances)")
	fs.StringVar(&c.MapBaseline, "map-baseline", c.MapBaseline, "subtracted from each image's location scores: none (METHOD.md), median (of the image's own) or capped (the median, at most the highest of the normal training images')")
	fs.Float64Var(&c.FalseAlarms, "false-alarms", c.FalseAlarms, "thresholds for this false-alarm rate on normal images (and pixels), each scored without its own centroids")
	fs.Float64Var(&c.ImageThreshold, "image-threshold", c.ImageThreshold, "image threshold, raw score (0: calibrate)")
	fs.Float64Var(&c.PixelThreshold, "pixel-threshold", c.PixelThreshold, "pixel threshold, raw score (0: calibrate)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.IntVar(&c.BackboneBatch, "backbone-batch", c.BackboneBatch, "images per backbone pass")
	cacheMB := fs.Int64("feature-cache-mb", c.CacheBytes>>20, "memory for cached backbone features, MiB; the rest spills to a temporary file")
	return func() (anomnet.Config, error) {
		if presetErr != nil {
			return c, usageError{msg: presetErr.Error()}
		}
		c.Taps = strings.Split(*taps, ",")
		c.Grid = *grid
		c.CacheBytes = *cacheMB << 20
		if noTrain {
			c.Epochs1, c.Epochs2 = 0, 0
		}
		if err := c.Validate(); err != nil {
			return c, usageError{msg: err.Error()}
		}
		return c, nil
	}
}

// parseConfig registers the Config flags (configFlags) after the
// command's own, parses args with npos positional arguments and returns
// them with the Config.
func (fs *flagSet) parseConfig(args []string, npos int, stdout io.Writer) ([]string, anomnet.Config, error) {
	config := configFlags(fs, args)
	pos, err := fs.parse(args, npos, stdout)
	if err != nil {
		return nil, anomnet.Config{}, err
	}
	cfg, err := config()
	return pos, cfg, err
}

// presetArg returns the value of a -preset flag in args ("" if none): the
// last one, as the flag package keeps the last of repeated flags. It reads
// up to "--"; a flag's value that is itself "-preset" would fool it.
func presetArg(args []string) string {
	var name string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		key, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if key != "preset" {
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		name = val
	}
	return name
}

func fit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fit", "DATA/CATEGORY|DIR",
		"Trains a model on the normal images of DATA/CATEGORY/train/good (an MVTec AD category; its\n"+
			"test folder is not needed), or of every image under the folder DIR, and saves it (-o).\n"+
			"With -plots DIR it also draws the centroids' evolution in stage 1 and the loss curves.")
	out := fs.String("o", "model.anm", "output model file")
	plots := fs.String("plots", "", "also write centroids.png and losses.png to this folder")
	cache := fs.cacheFlag()
	pos, cfg, err := fs.parseConfig(args, 1, stdout)
	if err != nil {
		return err
	}
	job := fitJob{data: pos[0], out: *out, plots: *plots, cache: *cache, cfg: cfg}
	_, err = job.run(ctx, stdout, stderr)
	return err
}

// fitJob is one training run: fit's, or demo's.
type fitJob struct {
	data, out, plots, cache string
	cfg                     anomnet.Config
	bb                      anomnet.Backbone // nil: load the default
}

// fitted is what a fitJob leaves for the next step.
type fitted struct {
	model *anomnet.Model
	bb    anomnet.Backbone
	took  time.Duration
	plots []string
}

// run checks every input and output before the slow work (backbone,
// features, training), so that a bad file fails in seconds; then trains,
// saves the model and draws the plots.
func (j fitJob) run(ctx context.Context, stdout, stderr io.Writer) (fitted, error) {
	var res fitted
	if err := checkOutputFile(j.out); err != nil {
		return res, err
	}
	if j.plots != "" {
		if err := outputDir(j.plots); err != nil {
			return res, err
		}
	}
	cat, err := dataset.Training(j.data)
	if err != nil {
		return res, err
	}
	if j.cfg, err = withFrame(j.cfg, cat.Train, stderr); err != nil {
		return res, err
	}
	p := newProgress(stderr)
	_, imgs, err := loadImages(ctx, j.cfg, cat.Train, p, "load")
	if err != nil {
		return res, err
	}
	bb := j.bb
	if bb == nil {
		if bb, err = loadBackbone(ctx, j.cache, stderr); err != nil {
			return res, err
		}
	}
	res.bb = bb

	cfg := j.cfg
	log := &fitLog{cfg: cfg}
	cfg.Progress = log.progress(p, cfg)
	if j.plots != "" {
		cfg.Snapshot = log.snapshot
	}
	m, err := anomnet.New(bb, cfg)
	if err != nil {
		return res, err
	}
	start := time.Now()
	p.mark()
	err = m.Fit(ctx, imgs)
	p.end()
	if err != nil {
		return res, fmt.Errorf("fit %s: %w", j.data, err)
	}
	res.took = time.Since(start)
	if err := m.SaveFile(j.out); err != nil {
		return res, err
	}
	res.model = m
	cal := m.Calibration()
	fmt.Fprintf(stdout, "fitted %s on %d images in %s; image threshold %.4g, pixel threshold %.4g; wrote %s\n",
		cat.Name, len(imgs), fmtDuration(res.took), cal.ImageThreshold, cal.PixelThreshold, j.out)
	if j.plots != "" {
		if log.err != nil {
			return res, fmt.Errorf("plots: %w", log.err)
		}
		if res.plots, err = log.write(j.plots); err != nil {
			return res, err
		}
		fmt.Fprintf(stdout, "plots: %s\n", strings.Join(res.plots, ", "))
	}
	return res, nil
}

// progress returns the Config.Progress callback: it records the losses
// for the plot, draws the bar, and prints each epoch's mean losses.
func (l *fitLog) progress(p *progress, cfg anomnet.Config) func(anomnet.Progress) {
	var stage anomnet.Stage
	var sum anomnet.Losses
	var n int
	return func(pr anomnet.Progress) {
		if pr.Stage != stage {
			stage = pr.Stage
			unit := "img"
			switch {
			case stage.Trains():
				unit = "steps"
			case stage == anomnet.StageSeed:
				unit = "centroids"
			}
			p.begin(stage.String(), unit, pr.Epochs*pr.Steps)
			sum, n = anomnet.Losses{}, 0
		}
		done := (pr.Epoch-1)*pr.Steps + pr.Step
		if !stage.Trains() {
			p.update(done, "")
			return
		}
		l.steps = append(l.steps, stepLosses{stage: stage, epoch: pr.Epoch, losses: pr.Losses})
		lo := pr.Losses
		sum.Att, sum.Sep, sum.Ent, sum.Pos, sum.Neg, sum.Total = sum.Att+lo.Att, sum.Sep+lo.Sep, sum.Ent+lo.Ent, sum.Pos+lo.Pos, sum.Neg+lo.Neg, sum.Total+lo.Total
		n++
		if pr.Step == pr.Steps {
			f := 1 / float64(n)
			mean := anomnet.Losses{Att: sum.Att * f, Sep: sum.Sep * f, Ent: sum.Ent * f, Pos: sum.Pos * f, Neg: sum.Neg * f, Total: sum.Total * f}
			p.println(fmt.Sprintf("%s epoch %d/%d: mean loss %s", stage, pr.Epoch, pr.Epochs, fmtLosses(cfg.Plan(stage), mean)))
			sum, n = anomnet.Losses{}, 0
		}
		p.update(done, fmt.Sprintf("epoch %d/%d, loss %.4g", pr.Epoch, pr.Epochs, lo.Total))
	}
}

// fmtLosses prints the terms that plan minimises: the total, then the
// others in brackets.
func fmtLosses(plan anomnet.Plan, l anomnet.Losses) string {
	terms := l.Terms(plan)
	s := fmt.Sprintf("%.4g (", terms[0].Value)
	for i, t := range terms[1:] {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %.4g", t.Name, t.Value)
	}
	return s + ")"
}
