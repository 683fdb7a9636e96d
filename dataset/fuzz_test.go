package dataset

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/org/anomnet/internal/testutil"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// fuzzMaxPixels is the decoding cap of FuzzOpen: 256x256.
const fuzzMaxPixels = 1 << 16

// tinyImages encodes an 8x6 gradient as PNG, JPEG, BMP and TIFF, and adds
// a GIF, a format Open refuses.
func tinyImages(f *testing.F) map[string][]byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 6))
	for y := range 6 {
		for x := range 8 {
			img.Set(x, y, color.RGBA{uint8(30 * x), uint8(40 * y), 128, 255})
		}
	}
	out := map[string][]byte{}
	for name, enc := range map[string]func(*bytes.Buffer) error{
		"png":  func(b *bytes.Buffer) error { return png.Encode(b, img) },
		"jpeg": func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) },
		"bmp":  func(b *bytes.Buffer) error { return bmp.Encode(b, img) },
		"tiff": func(b *bytes.Buffer) error { return tiff.Encode(b, img, &tiff.Options{Compression: tiff.Deflate}) },
	} {
		var b bytes.Buffer
		if err := enc(&b); err != nil {
			f.Fatal(err)
		}
		out[name] = b.Bytes()
	}
	// A 1x1 GIF, written out: importing image/gif would register a decoder
	// that the production binary does not have.
	out["gif"] = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
	return out
}

// FuzzOpen decodes arbitrary bytes through OpenLimit. It must return an
// image within the cap or an error, never panic, and allocate no more than
// the cap and the file justify (a header may claim any size).
func FuzzOpen(f *testing.F) {
	for _, b := range tinyImages(f) {
		f.Add(b)
		f.Add(b[:len(b)*2/3])
		flipped := bytes.Clone(b)
		flipped[len(flipped)/2] ^= 0x55
		f.Add(flipped)
	}
	f.Add(testutil.PNGHeader(1<<30, 1<<30))
	f.Add(testutil.PNGHeader(1<<16, 1<<16))
	f.Add(testutil.PNGHeader(255, 257)) // just over the cap
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.img")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// Decoded pixels take at most 8 bytes each; decoders keep a few
		// buffers of the image's size and of the file's. x/image/tiff reads
		// a stream in 10 MB chunks (at most to the file's end), once for
		// the header and once to decode: a constant, not a forged size.
		testutil.AllocBound(t, 24<<20+32*fuzzMaxPixels+64*uint64(len(b)), func() {
			img, err := OpenLimit(path, fuzzMaxPixels)
			if err != nil {
				if img != nil || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q does not name the file, or comes with an image", err)
				}
				return
			}
			if r := img.Bounds(); r.Empty() || r.Dx()*r.Dy() > fuzzMaxPixels {
				t.Fatalf("image of %v accepted under a cap of %d pixels", r, fuzzMaxPixels)
			}
		})
	})
}

// FuzzVisA parses arbitrary split files with the VisA layout: a root
// holding split_csv/1cls.csv and the few files the seeds name.
func FuzzVisA(f *testing.F) {
	const head = "object,split,label,image,mask\n"
	good := head +
		"candle,train,normal,Data/Images/Normal/000.JPG,\n" +
		"candle,test,normal,Data/Images/Normal/001.JPG,\n" +
		"candle,test,anomaly,Data/Images/Anomaly/000.JPG,Data/Masks/Anomaly/000.png\n"
	f.Add([]byte(good))
	f.Add([]byte("\ufeffCategory,Split,Label,Image\ncandle,train,normal,Data/Images/Normal/000.JPG\ncandle,test,bad,Data/Images/Anomaly/000.JPG\n"))
	f.Add([]byte(good[:len(good)-20]))
	f.Add([]byte(head + "candle,train,anomaly,Data/Images/Anomaly/000.JPG,\n"))
	f.Add([]byte(head + "candle,valid,normal,Data/Images/Normal/000.JPG,\n"))
	f.Add([]byte(head + "candle,test,normal,\"Data/Images/Normal/000.JPG\n"))
	f.Add([]byte(head + "candle,test,normal,../../../etc/passwd,\n"))
	f.Add([]byte(head + "candle\n,,,,,,,,,\n\"\"\"\n"))
	f.Add([]byte("object\n"))
	root := f.TempDir()
	for _, p := range []string{"Data/Images/Normal/000.JPG", "Data/Images/Normal/001.JPG", "Data/Images/Anomaly/000.JPG", "Data/Masks/Anomaly/000.png"} {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o600); err != nil {
			f.Fatal(err)
		}
	}
	csvPath := filepath.Join(root, "split_csv", "1cls.csv")
	if err := os.MkdirAll(filepath.Dir(csvPath), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(csvPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		testutil.AllocBound(t, 4<<20+64*uint64(len(b)), func() {
			c, err := VisA(root, "candle", "")
			if err != nil {
				if c != nil {
					t.Fatal("a category and an error")
				}
				return
			}
			if len(c.Train) == 0 || len(c.Test) == 0 {
				t.Fatalf("accepted a category with %d training and %d test images", len(c.Train), len(c.Test))
			}
			for _, s := range c.Train {
				if s.Anomalous {
					t.Fatalf("anomalous training image %s", s.Path)
				}
			}
		})
	})
}
