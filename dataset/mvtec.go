package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Good is the defect name of normal images (MVTec AD's "good" folders).
const Good = "good"

// MVTecMaskThreshold is the gray level above which a pixel of an MVTec AD
// mask is anomalous. The masks hold 0 and 255; 127 also takes masks
// that were resampled with interpolation the way their makers intended.
const MVTecMaskThreshold = 127

// Sample is one image of a dataset and its ground truth.
type Sample struct {
	// Path is the image file.
	Path string
	// Defect is the defect type (the test sub-folder), Good for normal
	// images.
	Defect string
	// Anomalous is the image-level label: true for every defect type.
	Anomalous bool
	// MaskPath is the ground-truth mask, "" for normal images and for
	// datasets without masks.
	MaskPath string
	// MaskThreshold: a mask pixel is anomalous when its gray level
	// (0..255) exceeds it; MVTecMaskThreshold for the MVTec AD layout, 0
	// for VisA, whose masks hold small class indices.
	MaskThreshold uint8
}

// Category is one object or texture class of a dataset: its training
// images (all normal) and its test images.
type Category struct {
	// Root is the folder that holds the category (the dataset root).
	Root string
	// Name is the category's name, its folder under Root for MVTec AD.
	Name string
	// Train holds the normal training images.
	Train []Sample
	// Test holds the test images, normal and anomalous.
	Test []Sample
	// HasMasks tells whether the anomalous test images have
	// pixel-level ground truth; without it only image-level metrics
	// apply.
	HasMasks bool
}

// Defects returns the category's defect types in order of first
// appearance in Test, Good excluded.
func (c *Category) Defects() []string {
	var out []string
	for _, s := range c.Test {
		if s.Anomalous && !slices.Contains(out, s.Defect) {
			out = append(out, s.Defect)
		}
	}
	return out
}

// MVTec lists the category name under root in the MVTec AD layout:
//
//	root/name/train/good/*.png
//	root/name/test/<defect>/*.png              (test/good for normal images)
//	root/name/ground_truth/<defect>/<stem>_mask.png
//
// Images may be PNG, JPEG, BMP or TIFF (.png .jpg .jpeg .bmp .tif .tiff,
// any case); hidden files (".name") and other files are ignored. Files
// are sorted by name and defects by folder name, so the result does not
// depend on the file system. Nothing is decoded.
//
// A category without a ground_truth folder has HasMasks false and
// image-level labels only. With one, every anomalous image must have its
// mask (a mask may use any of the image extensions; .png is preferred);
// a missing mask is an error that names the image and the expected mask.
// An empty train/good, a test folder without images or an empty defect
// folder is an error naming the folder.
func MVTec(root, name string) (*Category, error) {
	dir := filepath.Join(root, name)
	if err := requireDir(dir, "category folder"); err != nil {
		return nil, err
	}
	c := &Category{Root: root, Name: name}

	trainDir := filepath.Join(dir, "train", Good)
	if err := requireDir(trainDir, "training folder (an MVTec AD category needs train/good)"); err != nil {
		return nil, err
	}
	train, err := listImages(trainDir)
	if err != nil {
		return nil, err
	}
	if len(train) == 0 {
		return nil, fmt.Errorf("anomnet/dataset: %s: no training images (train/good holds no %s file)", trainDir, extList())
	}
	for _, p := range train {
		c.Train = append(c.Train, Sample{Path: p, Defect: Good, MaskThreshold: MVTecMaskThreshold})
	}

	testDir := filepath.Join(dir, "test")
	if err := requireDir(testDir, "test folder"); err != nil {
		return nil, err
	}
	defects, err := listDirs(testDir)
	if err != nil {
		return nil, err
	}
	if len(defects) == 0 {
		return nil, fmt.Errorf("anomnet/dataset: %s: no test images (no test/<defect> folder)", testDir)
	}

	gtDir := filepath.Join(dir, "ground_truth")
	switch fi, err := os.Stat(gtDir); {
	case err == nil && fi.IsDir():
		c.HasMasks = true
	case err == nil:
		return nil, fmt.Errorf("anomnet/dataset: %s: not a folder", gtDir)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}

	for _, defect := range defects {
		ddir := filepath.Join(testDir, defect)
		imgs, err := listImages(ddir)
		if err != nil {
			return nil, err
		}
		if len(imgs) == 0 {
			return nil, fmt.Errorf("anomnet/dataset: %s: empty defect folder (no %s file)", ddir, extList())
		}
		anomalous := defect != Good
		var masks map[string]string
		if anomalous && c.HasMasks {
			if masks, err = listMasks(filepath.Join(gtDir, defect)); err != nil {
				return nil, err
			}
		}
		for _, p := range imgs {
			s := Sample{Path: p, Defect: defect, Anomalous: anomalous, MaskThreshold: MVTecMaskThreshold}
			if anomalous && c.HasMasks {
				stem := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
				m, ok := masks[stem]
				if !ok {
					return nil, fmt.Errorf("anomnet/dataset: %s: defect image without a mask: expected %s",
						p, filepath.Join(gtDir, defect, stem+"_mask.png"))
				}
				s.MaskPath = m
			}
			c.Test = append(c.Test, s)
		}
	}
	return c, nil
}

// Categories returns the names of the folders under root that look like
// MVTec AD categories (they hold train/good), sorted. A root without any
// is an error naming it.
func Categories(root string) ([]string, error) {
	if err := requireDir(root, "dataset folder"); err != nil {
		return nil, err
	}
	dirs, err := listDirs(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(root, d, "train", Good)); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("anomnet/dataset: %s: no MVTec AD category (no sub-folder holds train/good)", root)
	}
	return out, nil
}

// requireDir checks that dir exists and is a folder; what says what the
// folder is for in the error.
func requireDir(dir, what string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("anomnet/dataset: %s: missing %s", dir, what)
	}
	if err != nil {
		return fmt.Errorf("anomnet/dataset: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("anomnet/dataset: %s: %s is not a folder", dir, what)
	}
	return nil
}

// listEntries returns the non-hidden entries of dir that are regular
// files (images) or folders (dirs), following symbolic links, sorted by
// name.
func listEntries(dir string, dirs bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !dirs && !isImageName(name) {
			continue
		}
		mode := e.Type()
		if mode&fs.ModeSymlink != 0 {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				continue // a dangling link is not an image
			}
			mode = fi.Mode().Type()
		}
		if (dirs && mode.IsDir()) || (!dirs && mode.IsRegular()) {
			out = append(out, name)
		}
	}
	slices.Sort(out) // ReadDir sorts already; the contract should not rest on it
	return out, nil
}

// listImages returns the paths of the image files in dir, sorted.
func listImages(dir string) ([]string, error) {
	names, err := listEntries(dir, false)
	if err != nil {
		return nil, err
	}
	for i, n := range names {
		names[i] = filepath.Join(dir, n)
	}
	return names, nil
}

// listDirs returns the names of the sub-folders of dir, sorted.
func listDirs(dir string) ([]string, error) {
	return listEntries(dir, true)
}

// listMasks maps image stems to the mask files of dir (stem_mask.ext),
// preferring .png where several extensions exist. A missing folder gives
// an empty map: the caller reports the first image without its mask.
func listMasks(dir string) (map[string]string, error) {
	masks := map[string]string{}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return masks, nil
	}
	paths, err := listImages(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		base := filepath.Base(p)
		ext := filepath.Ext(base)
		stem, ok := strings.CutSuffix(strings.TrimSuffix(base, ext), "_mask")
		if !ok {
			continue
		}
		if prev, dup := masks[stem]; dup && strings.EqualFold(filepath.Ext(prev), ".png") {
			continue
		}
		masks[stem] = p
	}
	return masks, nil
}

// extList names the accepted extensions for error messages.
func extList() string {
	return strings.Join(imageExts, "/")
}
