package dataset

import (
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
)

// Defaults of SynthOptions: small enough for a demo that trains in minutes
// on two CPU cores; 256 is the preprocessing's resize, so images are not
// resampled before the 224 crop.
const (
	SynthDefaultSize       = 256
	SynthDefaultTrain      = 60
	SynthDefaultTestGood   = 20
	SynthDefaultTestDefect = 40
)

// synthMinSize keeps the weave's thread period (9 pixels at 256) well
// above the pixel size.
const synthMinSize = 128

// Base-image indices of the test split start here, far above any training
// count, so that changing Train never changes a test image.
const (
	synthTestGoodBase   = 1 << 20
	synthTestDefectBase = 2 << 20
)

// synthVersion names the generator in the stamp file; bump it whenever a
// change alters the images, so stale directories are not taken as current.
const synthVersion = 1

// synthStamp is the file, inside each finished category directory, that
// records the generator and options that made it.
const synthStamp = ".anomnet-synth"

// SynthOptions configures the built-in synthetic dataset. A zero field
// takes its default; negative counts are errors.
type SynthOptions struct {
	// Seed selects the dataset: the same options always give the same
	// images (byte for byte on one platform). Zero is a valid seed.
	Seed uint64
	// Size is the side of the square images in pixels (default 256,
	// minimum 128). Textures and defects scale with it.
	Size int
	// Train is the number of normal training images per category
	// (default 60).
	Train int
	// TestGood is the number of normal test images per category
	// (default 20).
	TestGood int
	// TestDefect is the number of defective test images per category
	// (default 40), split as evenly as possible among the category's
	// defect types, earlier types taking the remainder.
	TestDefect int
	// Categories lists the categories to make (default: all of
	// SynthCategories, in that order).
	Categories []string
}

// withDefaults fills zero fields and validates the rest.
func (o SynthOptions) withDefaults() (SynthOptions, error) {
	if o.Size == 0 {
		o.Size = SynthDefaultSize
	}
	if o.Train == 0 {
		o.Train = SynthDefaultTrain
	}
	if o.TestGood == 0 {
		o.TestGood = SynthDefaultTestGood
	}
	if o.TestDefect == 0 {
		o.TestDefect = SynthDefaultTestDefect
	}
	if o.Size < synthMinSize {
		return o, fmt.Errorf("anomnet/dataset: synthetic image size %d is below the minimum %d", o.Size, synthMinSize)
	}
	if o.Train < 0 || o.TestGood < 0 || o.TestDefect < 0 {
		return o, fmt.Errorf("anomnet/dataset: negative synthetic image count (train %d, test good %d, test defect %d)", o.Train, o.TestGood, o.TestDefect)
	}
	if len(o.Categories) == 0 {
		o.Categories = SynthCategories()
	} else {
		o.Categories = slices.Clone(o.Categories)
	}
	for i, c := range o.Categories {
		if synthCategoryByName(c) == nil {
			return o, fmt.Errorf("anomnet/dataset: unknown synthetic category %q (have %v)", c, SynthCategories())
		}
		if slices.Contains(o.Categories[:i], c) {
			return o, fmt.Errorf("anomnet/dataset: synthetic category %q listed twice", c)
		}
	}
	return o, nil
}

// SynthCategories returns the names of the synthetic categories: "weave"
// (a colour twill fabric), "grain" (gray wood grain) and "washer" (a
// metal washer on a textured mat).
func SynthCategories() []string {
	names := make([]string, len(synthCategories))
	for i, c := range synthCategories {
		names[i] = c.name
	}
	return names
}

// SynthDefects returns the defect types of a synthetic category, in the
// order WriteSynthetic splits the defective test images among them.
func SynthDefects(category string) ([]string, error) {
	c := synthCategoryByName(category)
	if c == nil {
		return nil, fmt.Errorf("anomnet/dataset: unknown synthetic category %q (have %v)", category, SynthCategories())
	}
	return slices.Clone(c.defects), nil
}

// SynthImage renders one synthetic image and its ground-truth mask without
// touching disk. index (>= 0) selects the normal base image; defect is
// "good" or one of SynthDefects(category). The same category, index and
// options with defect "good" give the defect-free twin of a defective
// image: identical outside the defect.
//
// The mask is 255 exactly where the defect's shape covers the pixel centre
// and 0 elsewhere (all 0 for "good"). Shapes are drawn with an antialiased
// (for holes and stains, soft) edge, so pixels just outside the mask may
// change by less than half the defect's contrast.
//
// WriteSynthetic uses indices 0..Train-1 for training images and indices
// from 1<<20 (normal) and 2<<20 (defective) for the test split.
func SynthImage(category string, index int, defect string, opts SynthOptions) (*image.RGBA, *image.Gray, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	c := synthCategoryByName(category)
	if c == nil {
		return nil, nil, fmt.Errorf("anomnet/dataset: unknown synthetic category %q (have %v)", category, SynthCategories())
	}
	if defect != "good" && !slices.Contains(c.defects, defect) {
		return nil, nil, fmt.Errorf("anomnet/dataset: synthetic category %q has no defect %q (have %v)", category, defect, c.defects)
	}
	if index < 0 {
		return nil, nil, fmt.Errorf("anomnet/dataset: negative synthetic image index %d", index)
	}
	img, mask := c.render(o.Size, synthRand(o.Seed, category, index, "base"), synthRand(o.Seed, category, index, "defect/"+defect), defect)
	return img, mask, nil
}

// synthRand returns the generator of one purpose of one image: a PCG
// stream keyed by the seed and a hash of the image's identity, so images
// are independent of each other and of the order they are made in.
func synthRand(seed uint64, category string, index int, purpose string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(category))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(index)))
	h.Write([]byte{0})
	h.Write([]byte(purpose))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// synthItem is one image of the layout: where it goes and what it shows.
type synthItem struct {
	dir, stem string // dir relative to the category directory
	index     int
	defect    string
}

// synthPlan lists the images of one category in the MVTec AD layout.
func synthPlan(c *synthCategory, o SynthOptions) []synthItem {
	var items []synthItem
	for i := range o.Train {
		items = append(items, synthItem{dir: "train/good", stem: fmt.Sprintf("%03d", i), index: i, defect: "good"})
	}
	for i := range o.TestGood {
		items = append(items, synthItem{dir: "test/good", stem: fmt.Sprintf("%03d", i), index: synthTestGoodBase + i, defect: "good"})
	}
	j := 0
	for d, defect := range c.defects {
		n := o.TestDefect / len(c.defects)
		if d < o.TestDefect%len(c.defects) {
			n++
		}
		for i := range n {
			items = append(items, synthItem{dir: "test/" + defect, stem: fmt.Sprintf("%03d", i), index: synthTestDefectBase + j, defect: defect})
			j++
		}
	}
	return items
}

// stampText describes the generator and options that made a category.
func (o SynthOptions) stampText(category string) string {
	return fmt.Sprintf("anomnet synthetic v%d category=%s seed=%d size=%d train=%d testgood=%d testdefect=%d\n",
		synthVersion, category, o.Seed, o.Size, o.Train, o.TestGood, o.TestDefect)
}

// WriteSynthetic writes the synthetic dataset in the MVTec AD layout:
// dir/CAT/train/good/000.png, dir/CAT/test/{good,DEFECT}/000.png and
// dir/CAT/ground_truth/DEFECT/000_mask.png (8-bit gray, 0 or 255, the
// image's size). Gray categories are written as gray PNGs.
//
// Each category is written into a temporary directory beside dir and
// renamed into place when complete, so an interrupted run never leaves a
// half-written category. A category directory that already holds the
// output of the same generator and options is kept as it is; any other
// existing one is an error, never overwritten.
//
// progress, if not nil, is called from the calling goroutine with the
// number of images done and the total (masks are not counted).
func WriteSynthetic(dir string, opts SynthOptions, progress func(done, total int)) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	total := len(o.Categories) * (o.Train + o.TestGood + o.TestDefect)
	done := 0
	report := func() {
		if progress != nil {
			progress(done, total)
		}
	}
	report()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("anomnet/dataset: %w", err)
	}
	var tmp string
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()
	for _, name := range o.Categories {
		c := synthCategoryByName(name)
		items := synthPlan(c, o)
		final := filepath.Join(dir, name)
		switch stamp, err := os.ReadFile(filepath.Join(final, synthStamp)); {
		case err == nil && string(stamp) == o.stampText(name):
			done += len(items)
			report()
			continue
		case err == nil:
			return fmt.Errorf("anomnet/dataset: %s holds a synthetic category made with other options (%s); remove it or choose another directory", final, synthTrimNewline(string(stamp)))
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("anomnet/dataset: %w", err)
		}
		if _, err := os.Lstat(final); err == nil {
			return fmt.Errorf("anomnet/dataset: %s exists and is not a synthetic category; remove it or choose another directory", final)
		}
		if tmp == "" {
			// Beside dir rather than inside it, so that a crash leaves no
			// stray directory among the categories.
			abs, err := filepath.Abs(dir)
			if err != nil {
				return fmt.Errorf("anomnet/dataset: %w", err)
			}
			if tmp, err = os.MkdirTemp(filepath.Dir(abs), ".anomnet-synth-*"); err != nil {
				return fmt.Errorf("anomnet/dataset: %w", err)
			}
		}
		work := filepath.Join(tmp, name)
		if err := writeSynthCategory(work, c, o, items, func() { done++; report() }); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, synthStamp), []byte(o.stampText(name)), 0o644); err != nil {
			return fmt.Errorf("anomnet/dataset: %w", err)
		}
		if err := os.Rename(work, final); err != nil {
			return fmt.Errorf("anomnet/dataset: %w", err)
		}
	}
	return nil
}

func synthTrimNewline(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		return s[:n-1]
	}
	return s
}

// writeSynthCategory renders and encodes a category's images on all CPUs;
// each image depends only on its own identity, so the order of work does
// not change the output. step runs on the calling goroutine once per
// image.
func writeSynthCategory(work string, c *synthCategory, o SynthOptions, items []synthItem, step func()) error {
	for _, it := range items {
		if err := os.MkdirAll(filepath.Join(work, it.dir), 0o755); err != nil {
			return fmt.Errorf("anomnet/dataset: %w", err)
		}
		if it.defect != "good" {
			if err := os.MkdirAll(filepath.Join(work, "ground_truth", it.defect), 0o755); err != nil {
				return fmt.Errorf("anomnet/dataset: %w", err)
			}
		}
	}
	jobs := make(chan synthItem)
	errs := make(chan error)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(items))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range jobs {
				select {
				case errs <- writeSynthItem(work, c, o, it):
				case <-quit:
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, it := range items {
			select {
			case jobs <- it:
			case <-quit:
				return
			}
		}
	}()
	var first error
	for range items {
		if err := <-errs; err != nil {
			first = err
			break
		}
		step()
	}
	close(quit)
	wg.Wait()
	return first
}

// writeSynthItem renders one image and writes it (and its mask).
func writeSynthItem(work string, c *synthCategory, o SynthOptions, it synthItem) error {
	img, mask := c.render(o.Size, synthRand(o.Seed, c.name, it.index, "base"), synthRand(o.Seed, c.name, it.index, "defect/"+it.defect), it.defect)
	var out image.Image = img
	if c.gray {
		out = synthToGray(img)
	}
	if err := writeSynthPNG(filepath.Join(work, it.dir, it.stem+".png"), out); err != nil {
		return err
	}
	if it.defect == "good" {
		return nil
	}
	return writeSynthPNG(filepath.Join(work, "ground_truth", it.defect, it.stem+"_mask.png"), mask)
}

// synthToGray keeps the red channel of an image whose channels are equal.
func synthToGray(img *image.RGBA) *image.Gray {
	g := image.NewGray(img.Rect)
	for i := range g.Pix {
		g.Pix[i] = img.Pix[4*i]
	}
	return g
}

func writeSynthPNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("anomnet/dataset: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("anomnet/dataset: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("anomnet/dataset: %w", err)
	}
	return nil
}
