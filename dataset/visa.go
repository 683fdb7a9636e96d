package dataset

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// VisAMaskThreshold is the gray level above which a pixel of a VisA mask
// is anomalous: VisA's masks hold small non-zero class indices, not 255.
const VisAMaskThreshold = 0

// VisA lists the category name of a VisA-style dataset from its split
// file, a CSV with a header naming the columns object, split, label,
// image and mask (in any order; other columns are ignored), as VisA's
// split_csv/1cls.csv does:
//
//	object,split,label,image,mask
//	candle,train,normal,candle/Data/Images/Normal/0836.JPG,
//	candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png
//
// image and mask are paths relative to root (or absolute). splitCSV ""
// means root/split_csv/1cls.csv. split is train or test. label normal (or
// good) marks a normal image; anomaly gives Defect "anomaly", and any
// other label is taken as the defect type, so that split files of the
// same form with per-defect labels (and "category" for "object", as in
// the shared data's manifest.csv) read too. Samples keep the file's
// order. Every listed file must exist; errors name the CSV file and line.
//
// HasMasks is true when the anomalous test rows carry masks; then every
// one must. Masks are read with VisAMaskThreshold.
func VisA(root, name, splitCSV string) (*Category, error) {
	if splitCSV == "" {
		splitCSV = filepath.Join(root, "split_csv", "1cls.csv")
	}
	f, err := os.Open(splitCSV)
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1 // checked below, with a message naming the line
	r.TrimLeadingSpace = true

	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("anomnet/dataset: %s: cannot read the header: %v", splitCSV, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["object"]; !ok {
		if i, ok := col["category"]; ok {
			col["object"] = i
		}
	}
	for _, need := range []string{"object", "split", "label", "image"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("anomnet/dataset: %s: the header has no %q column (want object,split,label,image,mask)", splitCSV, need)
		}
	}
	maskCol, haveMaskCol := col["mask"]

	c := &Category{Root: root, Name: name}
	var withMask, withoutMask int
	var firstWithout string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("anomnet/dataset: %s: %v", splitCSV, err)
		}
		line, _ := r.FieldPos(0)
		field := func(k string) string {
			if i := col[k]; i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if field("object") != name {
			continue
		}
		where := fmt.Sprintf("%s:%d", splitCSV, line)
		img := field("image")
		if img == "" {
			return nil, fmt.Errorf("anomnet/dataset: %s: no image path", where)
		}
		path, err := visaPath(root, img, where)
		if err != nil {
			return nil, err
		}
		s := Sample{Path: path, Defect: Good, MaskThreshold: VisAMaskThreshold}
		switch label := field("label"); strings.ToLower(label) {
		case "":
			return nil, fmt.Errorf("anomnet/dataset: %s: no label for %s", where, s.Path)
		case "normal", Good:
		default:
			s.Anomalous = true
			s.Defect = label
		}
		if err := requireFile(s.Path, where); err != nil {
			return nil, err
		}
		if s.Anomalous {
			m := ""
			if haveMaskCol && maskCol < len(rec) {
				m = strings.TrimSpace(rec[maskCol])
			}
			if m == "" {
				if withoutMask == 0 {
					firstWithout = fmt.Sprintf("%s: anomalous image %s has no mask", where, s.Path)
				}
				withoutMask++
			} else {
				if s.MaskPath, err = visaPath(root, m, where); err != nil {
					return nil, err
				}
				if err := requireFile(s.MaskPath, where); err != nil {
					return nil, err
				}
				withMask++
			}
		}
		switch split := strings.ToLower(field("split")); split {
		case "train":
			if s.Anomalous {
				return nil, fmt.Errorf("anomnet/dataset: %s: anomalous image %s in the training split", where, s.Path)
			}
			c.Train = append(c.Train, s)
		case "test":
			c.Test = append(c.Test, s)
		default:
			return nil, fmt.Errorf("anomnet/dataset: %s: split %q is neither train nor test", where, split)
		}
	}
	switch {
	case len(c.Train) == 0 && len(c.Test) == 0:
		return nil, fmt.Errorf("anomnet/dataset: %s: no row for category %q", splitCSV, name)
	case len(c.Train) == 0:
		return nil, fmt.Errorf("anomnet/dataset: %s: category %q has no training images", splitCSV, name)
	case len(c.Test) == 0:
		return nil, fmt.Errorf("anomnet/dataset: %s: category %q has no test images", splitCSV, name)
	case withMask > 0 && withoutMask > 0:
		return nil, fmt.Errorf("anomnet/dataset: %s (%d other anomalous images have masks)", firstWithout, withMask)
	}
	c.HasMasks = withMask > 0
	return c, nil
}

// visaPath resolves a path of the split file against root. It must be
// relative and stay inside root: a split file cannot point the loader at
// other files of the machine.
func visaPath(root, p, where string) (string, error) {
	local := filepath.FromSlash(p)
	if !filepath.IsLocal(local) {
		return "", fmt.Errorf("anomnet/dataset: %s: path %q leaves the dataset root %s (paths in the split file are relative to it)", where, p, root)
	}
	return filepath.Join(root, local), nil
}

// requireFile checks that a listed file exists and is not a folder.
func requireFile(path, where string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("anomnet/dataset: %s: %w", where, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("anomnet/dataset: %s: %s is a folder, not an image", where, path)
	}
	return nil
}
