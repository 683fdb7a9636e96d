package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
)

// validate is the validation protocol by which anomnet's defaults are
// chosen without test images: part of train/good is held back, the model
// is fitted on the rest, and it must tell the held-back images from copies
// of them with a synthetic defect (dataset.Corrupt, or with -defects
// dataset.CorruptStructural too).
func validate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "DATA/CATEGORY|DIR",
		"Holds back a share of DATA/CATEGORY/train/good, or of the images under DIR (-holdout), fits\n"+
			"on the rest with the fit flags, and scores the held-back images and -copies copies of each\n"+
			"with a synthetic defect (-defects): image AUROC, pixel AUROC and AUPRO on normal images only.\n"+
			"No test image is read: this is how settings are compared without looking at the test set.")
	holdout := fs.Float64("holdout", 0.2, "share of train/good held back")
	copies := fs.Int("copies", 2, "defective copies of each held-back image")
	paint := fs.String("paint", paintInput, "where the synthetic defects are painted: input (on the preprocessed image, the model's view) or original (on the image as its file holds it, then preprocessed with its mask: the same defects whatever the input, to compare inputs)")
	defects := fs.String("defects", defectsPhotometric, "kinds of synthetic defect: photometric (a pasted patch, a scar or a blob), structural (a region turned, mirrored or exchanged), large (20 - 60% of the image darker or brighter), logical (a part missing or turned, 10 - 30% of the image), both (photometric and structural, the copies alternate) or all (the three in turn)")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	sigmas := fs.String("sweep-sigma", "", "also score the held-back set, from the same fit, with each of these blurs of the pixel map (comma-separated pixels; the image score keeps -image-sigma)")
	baselines := fs.String("sweep-baseline", "", "also score it with each of these quantiles of each image's location scores subtracted (comma-separated; 0.5: the median, 0: none)")
	powers := fs.String("sweep-power", "", "also score it with each of these powers of the location distances (comma-separated; 2: squared)")
	cache := fs.cacheFlag()
	pos, cfg, err := fs.parseConfig(args, 1, stdout)
	if err != nil {
		return err
	}
	if *holdout <= 0 || *holdout >= 1 || *copies < 1 {
		return usageError{msg: "need 0 < -holdout < 1 and -copies >= 1"}
	}
	if *paint != paintInput && *paint != paintOriginal {
		return usageError{msg: fmt.Sprintf("-paint %q: want %s or %s", *paint, paintInput, paintOriginal)}
	}
	corrupt, ok := corrupters[*defects]
	if !ok {
		return usageError{msg: fmt.Sprintf("-defects %q: want %s, %s, %s, %s, %s or %s", *defects, defectsPhotometric, defectsStructural, defectsLarge, defectsLogical, defectsBoth, defectsAll)}
	}
	sweep, err := parseSweep(*sigmas, *powers, *baselines)
	if err != nil {
		return err
	}
	cat, err := dataset.Training(pos[0])
	if err != nil {
		return err
	}
	if cfg, err = withFrame(cfg, cat.Train, stderr); err != nil {
		return err
	}
	p := newProgress(stderr)
	items, imgs, err := loadImages(ctx, cfg, cat.Train, p, "load")
	if err != nil {
		return err
	}
	fitIdx, valIdx := holdOut(len(imgs), *holdout, cfg.Seed)
	if len(fitIdx) == 0 || len(valIdx) == 0 {
		return fmt.Errorf("%s: %d training images are too few to hold %g back", pos[0], len(imgs), *holdout)
	}
	bb, err := loadBackbone(ctx, *cache, stderr)
	if err != nil {
		return err
	}
	log := &fitLog{cfg: cfg}
	cfg.Progress = log.progress(p, cfg)
	m, err := anomnet.New(bb, cfg)
	if err != nil {
		return err
	}
	train := make([]image.Image, len(fitIdx))
	for i, k := range fitIdx {
		train[i] = imgs[k]
	}
	start := time.Now()
	p.mark()
	err = m.Fit(ctx, train)
	p.end()
	if err != nil {
		return fmt.Errorf("fit %s: %w", pos[0], err)
	}
	took := time.Since(start)

	var original func(k int) (image.Image, dataset.Preprocess, error)
	if *paint == paintOriginal {
		original = func(k int) (image.Image, dataset.Preprocess, error) {
			img, err := dataset.OpenLimit(items[k].Path, cfg.MaxPixels)
			return img, cfg.Preprocess(), err
		}
	}
	val, valImgs, err := corruptedSet(items, valIdx, *copies, cfg.Seed, corrupt, original)
	if err != nil {
		return err
	}
	score := func(stage string) (evalRow, error) {
		p.begin(stage, "img", len(valImgs))
		rs, err := m.PredictBatch(ctx, valImgs)
		p.end()
		if err != nil {
			return evalRow{}, err
		}
		return evaluate(val, rs, "all", true)
	}
	row, err := score("validate")
	if err != nil {
		return err
	}
	res := validation{Category: cat.Name, Fit: len(fitIdx), HeldBack: len(valIdx), Copies: *copies,
		Defects: *defects, Paint: *paint, FitSec: took.Seconds(), Metrics: row}
	kind := res.Defects
	if *paint == paintOriginal {
		kind += ", painted on the original"
	}
	fmt.Fprintf(stdout, "%s: fitted on %d images in %s; %d held back, %d defective copies (%s): I-AUROC %s, P-AUROC %s, AUPRO %s\n",
		cat.Name, res.Fit, fmtDuration(took), res.HeldBack, len(valImgs)-res.HeldBack, kind,
		fmtMetric(row.IAUROC), fmtMetric(row.PAUROC), fmtMetric(row.AUPRO))
	var scorers []*anomnet.NearestScorer
	if base, ok := m.Scorer().(*anomnet.NearestScorer); ok {
		scorers = sweep.scorers(*base)
	}
	for _, sc := range scorers {
		m.SetScorer(sc)
		row, err := score(fmt.Sprintf("sigma %g, power %g, baseline %g", sc.Sigma, sc.Power, sc.Baseline))
		if err != nil {
			return err
		}
		res.Sweep = append(res.Sweep, scorerRow{Sigma: sc.Sigma, Power: sc.Power, Baseline: sc.Baseline, Metrics: row})
		fmt.Fprintf(stdout, "%s: sigma %g, power %g, baseline %g: I-AUROC %s, P-AUROC %s, AUPRO %s\n", cat.Name, sc.Sigma, sc.Power, sc.Baseline,
			fmtMetric(row.IAUROC), fmtMetric(row.PAUROC), fmtMetric(row.AUPRO))
	}
	if *jsonOut != "" {
		return writeFile(*jsonOut, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		})
	}
	return nil
}

// validation is what validate measures.
type validation struct {
	Category string  `json:"category"`
	Fit      int     `json:"fit_images"`
	HeldBack int     `json:"held_back"`
	Copies   int     `json:"copies"`
	Defects  string  `json:"defects"`
	Paint    string  `json:"paint"`
	FitSec   float64 `json:"fit_s"`
	// Metrics are eval's over the held-back images and their copies.
	Metrics evalRow `json:"metrics"`
	// Sweep has the same figures under the scorers of -sweep-sigma,
	// -sweep-power and -sweep-baseline, from the same fit.
	Sweep []scorerRow `json:"sweep,omitempty"`
}

// scorerRow is one scorer of validate's sweep and its figures.
type scorerRow struct {
	Sigma    float64 `json:"sigma"`
	Power    float64 `json:"power"`
	Baseline float64 `json:"baseline,omitempty"`
	Metrics  evalRow `json:"metrics"`
}

// scorerSweep holds validate's -sweep-* lists; an empty list keeps the
// fitted model's own value.
type scorerSweep struct {
	sigmas, powers, baselines []float64
}

// parseSweep reads the comma-separated -sweep-sigma, -sweep-power and
// -sweep-baseline lists (each empty, or non-negative numbers).
func parseSweep(sigmas, powers, baselines string) (scorerSweep, error) {
	list := func(name, s string) ([]float64, error) {
		if s == "" {
			return nil, nil
		}
		var out []float64
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) {
				return nil, usageError{msg: fmt.Sprintf("-%s: %q is not a non-negative number", name, f)}
			}
			out = append(out, v)
		}
		return out, nil
	}
	var sw scorerSweep
	var err error
	if sw.sigmas, err = list("sweep-sigma", sigmas); err != nil {
		return sw, err
	}
	if sw.powers, err = list("sweep-power", powers); err != nil {
		return sw, err
	}
	sw.baselines, err = list("sweep-baseline", baselines)
	return sw, err
}

// scorers returns a copy of base (the fitted model's scorer) for every
// combination of the lists, none when all are empty.
func (sw scorerSweep) scorers(base anomnet.NearestScorer) []*anomnet.NearestScorer {
	if sw.sigmas == nil && sw.powers == nil && sw.baselines == nil {
		return nil
	}
	or := func(l []float64, own float64) []float64 {
		if l == nil {
			return []float64{own}
		}
		return l
	}
	var out []*anomnet.NearestScorer
	for _, s := range or(sw.sigmas, base.Sigma) {
		for _, p := range or(sw.powers, base.Power) {
			for _, b := range or(sw.baselines, base.Baseline) {
				sc := base
				sc.Sigma, sc.Power, sc.Baseline = s, p, b
				out = append(out, &sc)
			}
		}
	}
	return out
}

// holdOut splits n images into the ones to fit on and a share held back,
// by a seeded shuffle (the same for the same seed and n).
func holdOut(n int, share float64, seed uint64) (fit, held []int) {
	order := rand.New(rand.NewPCG(seed, 0x686f6c64)).Perm(n)
	k := int(share*float64(n) + 0.5)
	return order[k:], order[:k]
}

// The kinds of synthetic defect of -defects.
const (
	defectsPhotometric = "photometric"
	defectsStructural  = "structural"
	defectsLarge       = "large"
	defectsLogical     = "logical"
	defectsBoth        = "both"
	defectsAll         = "all"
)

// corrupter paints one synthetic defect; copy is the number of the
// defective copy of an image (from 0).
type corrupter func(img image.Image, copy int, rng *rand.Rand) (*image.RGBA, *image.Gray)

// corrupters are the -defects choices. "both" alternates photometric and
// structural by copy, so that each held-back image gets either kind; "all"
// takes the three kinds in turn.
var corrupters = map[string]corrupter{
	defectsPhotometric: func(img image.Image, _ int, rng *rand.Rand) (*image.RGBA, *image.Gray) {
		return dataset.Corrupt(img, rng)
	},
	defectsStructural: func(img image.Image, _ int, rng *rand.Rand) (*image.RGBA, *image.Gray) {
		return dataset.CorruptStructural(img, rng)
	},
	defectsLarge: func(img image.Image, _ int, rng *rand.Rand) (*image.RGBA, *image.Gray) {
		return dataset.CorruptLarge(img, rng)
	},
	defectsLogical: func(img image.Image, _ int, rng *rand.Rand) (*image.RGBA, *image.Gray) {
		return dataset.CorruptLogical(img, rng)
	},
	defectsBoth: func(img image.Image, copy int, rng *rand.Rand) (*image.RGBA, *image.Gray) {
		if copy%2 == 0 {
			return dataset.Corrupt(img, rng)
		}
		return dataset.CorruptStructural(img, rng)
	},
	defectsAll: func(img image.Image, copy int, rng *rand.Rand) (*image.RGBA, *image.Gray) {
		switch copy % 3 {
		case 0:
			return dataset.Corrupt(img, rng)
		case 1:
			return dataset.CorruptStructural(img, rng)
		}
		return dataset.CorruptLarge(img, rng)
	},
}

// The choices of validate -paint.
const (
	paintInput    = "input"
	paintOriginal = "original"
)

// corruptedSet returns the held-back images as normal items, then copies
// defective copies of each with their masks (painted by corrupt), and the
// images to predict. With original set, each defect is painted on the
// held-back image as its file holds it, and the image and the mask are
// then preprocessed as original says (the same defect, whatever the
// input); otherwise it is painted on the preprocessed image.
func corruptedSet(items []dataset.Item, held []int, copies int, seed uint64, corrupt corrupter,
	original func(k int) (image.Image, dataset.Preprocess, error)) ([]dataset.Item, []image.Image, error) {
	rng := rand.New(rand.NewPCG(seed, 0x636f7272))
	var out []dataset.Item
	var imgs []image.Image
	for _, k := range held {
		it := items[k]
		it.Mask = nil
		out = append(out, it)
		imgs = append(imgs, anomnet.Prepared{RGBA: it.Image})
	}
	for c := range copies {
		for _, k := range held {
			var src image.Image = items[k].Image
			var pre dataset.Preprocess
			if original != nil {
				var err error
				if src, pre, err = original(k); err != nil {
					return nil, nil, err
				}
			}
			img, mask := corrupt(src, c, rng)
			it := dataset.Item{Sample: dataset.Sample{Path: fmt.Sprintf("%s#defect%d", items[k].Path, c+1), Defect: "synthetic", Anomalous: true},
				Image: img}
			if original != nil {
				it.Image, it.Mask = pre.Image(img), pre.Mask(mask, 127)
			} else {
				it.Mask = make([]bool, len(mask.Pix))
				for i, v := range mask.Pix {
					it.Mask[i] = v > 0
				}
			}
			out = append(out, it)
			imgs = append(imgs, anomnet.Prepared{RGBA: it.Image})
		}
	}
	return out, imgs, nil
}
