package backbone

import (
	"fmt"
	"image"
	"image/color"

	"github.com/org/anomnet/internal/tensor"
)

// Input turns images of one size into the network's input batch
// (N x 3 x H x W host tensor), normalised as the network expects.
// Grayscale images give three equal channels; alpha is ignored.
func (n *Net) Input(imgs ...image.Image) (*tensor.Tensor, error) {
	return n.norm.Input(imgs...)
}

// Input turns images of one size into a normalised N x 3 x H x W batch.
func (nm Normalization) Input(imgs ...image.Image) (*tensor.Tensor, error) {
	if len(imgs) == 0 {
		return nil, fmt.Errorf("anomnet/backbone: Input without images")
	}
	b0 := imgs[0].Bounds()
	h, w := b0.Dy(), b0.Dx()
	x := tensor.New(len(imgs), 3, h, w)
	data := x.Float32s()
	// Per channel of the output: the source channel (0 R, 1 G, 2 B), the
	// scale applied to a [0, 1] value and the offset.
	var src [3]int
	var mul, add [3]float32
	for c := range 3 {
		src[c] = c
		if nm.BGR {
			src[c] = 2 - c
		}
		mul[c] = nm.Scale / 255 / nm.Std[c]
		add[c] = -nm.Mean[c] / nm.Std[c]
	}
	for i, img := range imgs {
		b := img.Bounds()
		if b.Dx() != w || b.Dy() != h {
			return nil, fmt.Errorf("anomnet/backbone: Input: image %d is %dx%d, image 0 is %dx%d", i, b.Dx(), b.Dy(), w, h)
		}
		plane := data[i*3*h*w : (i+1)*3*h*w]
		for y := range h {
			for xx := range w {
				var rgb [3]uint8
				if m, ok := img.(*image.RGBA); ok {
					p := m.PixOffset(b.Min.X+xx, b.Min.Y+y)
					rgb = [3]uint8{m.Pix[p], m.Pix[p+1], m.Pix[p+2]}
				} else {
					c := color.NRGBAModel.Convert(img.At(b.Min.X+xx, b.Min.Y+y)).(color.NRGBA)
					rgb = [3]uint8{c.R, c.G, c.B}
				}
				for c := range 3 {
					plane[(c*h+y)*w+xx] = float32(rgb[src[c]])*mul[c] + add[c]
				}
			}
		}
	}
	return x, nil
}
