package dataset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Training lists the normal training images at path, for fitting: an
// MVTec AD category's train/good when path holds one (its test and
// ground_truth folders are not needed), otherwise every image file under
// the folder path, recursively, as a factory's camera folder of good parts
// would hold them. Hidden files and folders (".name") are skipped, files
// are sorted by path, and nothing is decoded. The Category has only Train
// (Name is the folder's name). A folder without images is an error that
// names it.
func Training(path string) (*Category, error) {
	if err := requireDir(path, "folder of training images"); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}
	c := &Category{Root: filepath.Dir(abs), Name: filepath.Base(abs)}
	trainDir := filepath.Join(path, "train", Good)
	var paths []string
	if fi, err := os.Stat(trainDir); err == nil && fi.IsDir() {
		if paths, err = listImages(trainDir); err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("anomnet/dataset: %s: no training images (train/good holds no %s file)", trainDir, extList())
		}
	} else {
		if paths, err = walkImages(path); err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("anomnet/dataset: %s: no training images (no %s file in the folder or below it)", path, extList())
		}
	}
	for _, p := range paths {
		c.Train = append(c.Train, Sample{Path: p, Defect: Good, MaskThreshold: MVTecMaskThreshold})
	}
	return c, nil
}

// walkImages returns the image files under dir, recursively, sorted by
// path; hidden entries are skipped, symbolic links to files followed.
func walkImages(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && d.Name()[0] == '.' {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isImageName(d.Name()) {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return nil // a dangling link is not an image
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("anomnet/dataset: %s: %w", pe.Path, pe.Err)
		}
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}
	return out, nil // WalkDir visits in lexical order
}
