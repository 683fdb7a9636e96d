package dataset

import (
	"context"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureVisA writes a two-object VisA tree (JPEG images, PNG masks with
// class index 1 rather than 255) and its split file, and returns root.
func fixtureVisA(t *testing.T) string {
	root := t.TempDir()
	for _, obj := range []string{"candle", "pcb1"} {
		for _, n := range []string{"0000", "0001", "0002"} {
			fixtureWrite(t, filepath.Join(root, obj, "Data", "Images", "Normal", n+".JPG"), fixtureGray(40, 30))
		}
		fixtureWrite(t, filepath.Join(root, obj, "Data", "Images", "Anomaly", "000.JPG"), fixtureGray(40, 30))
		m := image.NewGray(image.Rect(0, 0, 40, 30))
		m.SetGray(20, 15, color.Gray{Y: 1}) // VisA masks hold class indices
		fixtureWrite(t, filepath.Join(root, obj, "Data", "Masks", "Anomaly", "000.png"), m)
	}
	csv := "object,split,label,image,mask\n"
	for _, obj := range []string{"candle", "pcb1"} {
		csv += obj + ",train,normal," + obj + "/Data/Images/Normal/0001.JPG,\n" +
			obj + ",train,normal," + obj + "/Data/Images/Normal/0000.JPG,\n" +
			obj + ",test,anomaly," + obj + "/Data/Images/Anomaly/000.JPG," + obj + "/Data/Masks/Anomaly/000.png\n" +
			obj + ",test,normal," + obj + "/Data/Images/Normal/0002.JPG,\n"
	}
	fixtureTouch(t, filepath.Join(root, "split_csv", "1cls.csv"), csv)
	return root
}

func TestVisA(t *testing.T) {
	root := fixtureVisA(t)
	c, err := VisA(root, "pcb1", "")
	require.NoError(t, err)
	assert.True(t, c.HasMasks)
	assert.Equal(t, "pcb1", c.Name)
	img := func(p string) string { return filepath.Join(root, "pcb1", "Data", filepath.FromSlash(p)) }
	assert.Equal(t, []Sample{
		{Path: img("Images/Normal/0001.JPG"), Defect: Good},
		{Path: img("Images/Normal/0000.JPG"), Defect: Good},
	}, c.Train)
	assert.Equal(t, []Sample{
		{Path: img("Images/Anomaly/000.JPG"), Defect: "anomaly", Anomalous: true, MaskPath: img("Masks/Anomaly/000.png")},
		{Path: img("Images/Normal/0002.JPG"), Defect: Good},
	}, c.Test)

	// The mask's class index 1 is anomalous under VisA's threshold.
	items, err := (&Loader{Pre: Preprocess{Resize: 40, Crop: 40}}).Load(context.Background(), c.Test)
	require.NoError(t, err)
	var marked []int
	for i, v := range items[0].Mask {
		if v {
			marked = append(marked, i)
		}
	}
	// Row 15 of 30 lands on row 20 of 40: floor((2*20+1)*30/80) = 15.
	assert.Equal(t, []int{20*40 + 20}, marked)
	assert.Nil(t, items[1].Mask)
}

func TestVisAErrors(t *testing.T) {
	cases := []struct {
		name string
		csv  string // replaces the split file; "" keeps it
		edit func(t *testing.T, root string)
		want []string // each must be in the message (ROOT is replaced)
	}{
		{name: "missing image", edit: func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, "candle", "Data", "Images", "Normal", "0000.JPG")))
		}, want: []string{"1cls.csv:3", filepath.Join("candle", "Data", "Images", "Normal", "0000.JPG")}},
		{name: "missing mask file", edit: func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(root, "candle", "Data", "Masks", "Anomaly", "000.png")))
		}, want: []string{"1cls.csv:4", filepath.Join("Masks", "Anomaly", "000.png")}},
		{name: "unknown object", csv: "object,split,label,image,mask\n", want: []string{"1cls.csv", `no row for category "candle"`}},
		{name: "no mask column entry", csv: "object,split,label,image,mask\n" +
			"candle,train,normal,candle/Data/Images/Normal/0000.JPG,\n" +
			"candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png\n" +
			"candle,test,anomaly,candle/Data/Images/Normal/0001.JPG,\n",
			want: []string{"1cls.csv:4", "has no mask", filepath.Join("Normal", "0001.JPG")}},
		{name: "bad split", csv: "object,split,label,image,mask\n" +
			"candle,val,normal,candle/Data/Images/Normal/0000.JPG,\n", want: []string{"1cls.csv:2", `split "val"`}},
		{name: "anomaly in train", csv: "object,split,label,image,mask\n" +
			"candle,train,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png\n",
			want: []string{"1cls.csv:2", "training split"}},
		{name: "no test rows", csv: "object,split,label,image,mask\n" +
			"candle,train,normal,candle/Data/Images/Normal/0000.JPG,\n", want: []string{"1cls.csv", "no test images"}},
		{name: "header", csv: "obj,split,label,image\n", want: []string{"1cls.csv", `no "object" column`}},
		{name: "absolute image path", csv: "object,split,label,image,mask\n" +
			"candle,test,normal,/etc/passwd,\n", want: []string{"1cls.csv:2", `path "/etc/passwd" leaves the dataset root`}},
		{name: "image path out of the root", csv: "object,split,label,image,mask\n" +
			"candle,train,normal,../../candle/Data/Images/Normal/0000.JPG,\n", want: []string{"1cls.csv:2", `path "../../candle/Data/Images/Normal/0000.JPG" leaves the dataset root`}},
		{name: "mask path out of the root", csv: "object,split,label,image,mask\n" +
			"candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/../../x.png\n", want: []string{"1cls.csv:2", `path "candle/../../x.png" leaves`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := fixtureVisA(t)
			if tc.csv != "" {
				fixtureTouch(t, filepath.Join(root, "split_csv", "1cls.csv"), tc.csv)
			}
			if tc.edit != nil {
				tc.edit(t, root)
			}
			_, err := VisA(root, "candle", "")
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "anomnet/dataset: "), err.Error())
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := VisA(t.TempDir(), "candle", "")
	require.ErrorContains(t, err, "1cls.csv")
}

func TestVisAWithoutMasks(t *testing.T) {
	root := fixtureVisA(t)
	csv := "category,split,label,image,mask\n" +
		"candle,train,good,candle/Data/Images/Normal/0000.JPG,\n" +
		"candle,test,wax,candle/Data/Images/Anomaly/000.JPG,\n"
	path := filepath.Join(root, "manifest.csv")
	fixtureTouch(t, path, csv)
	c, err := VisA(root, "candle", path)
	require.NoError(t, err)
	assert.False(t, c.HasMasks)
	assert.Equal(t, "wax", c.Test[0].Defect)
	assert.True(t, c.Test[0].Anomalous)
}
