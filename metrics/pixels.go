package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Pixels accumulates the pixel-level results of a test set, one anomaly
// map and ground-truth mask at a time, for pixel AUROC and AUPRO.
//
// Up to MaxExact pixels it keeps every score (8 bytes a pixel) and the
// results are exact. Past that it folds everything into a histogram of
// scores binned at a relative width of 2^-15 (about 3e-5), so that memory
// stays bounded whatever the test set's size; scores within one bin then
// count as tied, which moves the results by far less than 1e-4 for
// continuous scores.
//
// The zero value is ready to use (MaxExact 0 means DefaultMaxExact).
type Pixels struct {
	// MaxExact is the number of pixels kept exactly before switching to
	// the histogram.
	MaxExact int

	exact   []pixel
	hist    map[uint32]*bin
	ok      uint64 // normal pixels
	anom    uint64 // anomalous pixels
	regions int    // ground-truth regions (8-connected) over all masks
}

// DefaultMaxExact is the exact-mode limit of a zero Pixels: 2^25 pixels
// (256 MiB), about 670 maps of 224x224.
const DefaultMaxExact = 1 << 25

// pixel is one pixel in exact mode: its score as an order-preserving key,
// and the size of its ground-truth region (0 for a normal pixel).
type pixel struct {
	key  uint32
	size int32
}

// bin is one histogram bin: normal and anomalous pixel counts and the sum
// of the anomalous pixels' region weights.
type bin struct {
	ok, anom uint64
	w        float64
}

// histShift drops the low mantissa bits that the histogram does not keep.
const histShift = 8

// orderKey maps a float32 to a uint32 that sorts in the same order, -0
// and +0 being one value (a tie), as they compare equal.
func orderKey(f float32) uint32 {
	if f == 0 {
		f = 0
	}
	b := math.Float32bits(f)
	if b>>31 == 1 {
		return ^b
	}
	return b | 1<<31
}

// Add adds one anomaly map (scores, row-major, width columns) and its
// ground-truth mask (true for anomalous; nil for an image with no anomaly).
func (p *Pixels) Add(scores []float32, mask []bool, width int) error {
	if width <= 0 || len(scores)%width != 0 {
		return fmt.Errorf("anomnet/metrics: %d scores do not make rows of width %d", len(scores), width)
	}
	if mask != nil && len(mask) != len(scores) {
		return fmt.Errorf("anomnet/metrics: mask of %d pixels for a map of %d", len(mask), len(scores))
	}
	for i, s := range scores {
		if math.IsNaN(float64(s)) {
			return fmt.Errorf("anomnet/metrics: score %d of the map is NaN", i)
		}
	}
	var regionOf []int32
	var sizes []int
	if mask != nil {
		regionOf, sizes = Regions(mask, width)
		p.regions += len(sizes)
	}
	limit := p.MaxExact
	if limit <= 0 {
		limit = DefaultMaxExact
	}
	if p.hist == nil && len(p.exact)+len(scores) > limit {
		p.toHistogram()
	}
	for i, s := range scores {
		var size int32
		if regionOf != nil && regionOf[i] >= 0 {
			size = int32(sizes[regionOf[i]])
			p.anom++
		} else {
			p.ok++
		}
		if p.hist == nil {
			p.exact = append(p.exact, pixel{orderKey(s), size})
			continue
		}
		p.histAdd(orderKey(s)>>histShift, size)
	}
	return nil
}

// histAdd counts a pixel (size 0 for a normal one) into its bin.
func (p *Pixels) histAdd(k uint32, size int32) {
	b := p.hist[k]
	if b == nil {
		b = &bin{}
		p.hist[k] = b
	}
	b.add(size)
}

// add counts a pixel of a region of the given size (0: normal) into b.
func (b *bin) add(size int32) {
	if size == 0 {
		b.ok++
		return
	}
	b.anom++
	b.w += 1 / float64(size)
}

// toHistogram folds the exact pixels into the histogram and frees them.
func (p *Pixels) toHistogram() {
	p.hist = make(map[uint32]*bin)
	for _, px := range p.exact {
		p.histAdd(px.key>>histShift, px.size)
	}
	p.exact = nil
}

// Count returns the number of pixels added.
func (p *Pixels) Count() int { return int(p.ok + p.anom) }

// groups returns the pixels grouped by equal score (or bin), highest first.
func (p *Pixels) groups() []bin {
	var out []bin
	if p.hist != nil {
		keys := make([]uint32, 0, len(p.hist))
		for k := range p.hist {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i := len(keys) - 1; i >= 0; i-- {
			out = append(out, *p.hist[keys[i]])
		}
		return out
	}
	px := slices.Clone(p.exact)
	slices.SortFunc(px, func(a, b pixel) int { return cmp.Compare(b.key, a.key) })
	for i := 0; i < len(px); {
		var g bin
		k := px[i].key
		for ; i < len(px) && px[i].key == k; i++ {
			g.add(px[i].size)
		}
		out = append(out, g)
	}
	return out
}

// AUROC returns the pixel AUROC over every pixel added: normal pixels
// against anomalous ones, ties counted half, as scikit-learn does.
func (p *Pixels) AUROC() (float64, error) {
	if p.ok == 0 || p.anom == 0 {
		return 0, ErrOneClass
	}
	fpr, tpr := []float64{0}, []float64{0}
	var fp, tp uint64
	for _, g := range p.groups() {
		fp += g.ok
		tp += g.anom
		fpr = append(fpr, float64(fp)/float64(p.ok))
		tpr = append(tpr, float64(tp)/float64(p.anom))
	}
	return trapezoid(fpr, tpr, 1), nil
}

// AUPRO returns the area under the per-region-overlap curve up to a false
// positive rate of maxFPR, divided by maxFPR (MVTec AD uses 0.3): at each
// threshold, PRO is the mean over all ground-truth regions (8-connected
// components of every mask) of the fraction of the region's pixels scoring
// at or above it, and the FPR is the fraction of normal pixels that do.
func (p *Pixels) AUPRO(maxFPR float64) (float64, error) {
	if !(maxFPR > 0 && maxFPR <= 1) {
		return 0, fmt.Errorf("anomnet/metrics: AUPRO up to FPR %g, want (0, 1]", maxFPR)
	}
	if p.regions == 0 {
		return 0, errors.New("anomnet/metrics: AUPRO without any ground-truth region")
	}
	if p.ok == 0 {
		return 0, errors.New("anomnet/metrics: AUPRO without any normal pixel")
	}
	fpr, pro := []float64{0}, []float64{0}
	var fp uint64
	var w float64
	for _, g := range p.groups() {
		fp += g.ok
		w += g.w
		fpr = append(fpr, float64(fp)/float64(p.ok))
		pro = append(pro, w/float64(p.regions))
	}
	return trapezoid(fpr, pro, maxFPR) / maxFPR, nil
}

// Regions labels the 8-connected components of a mask (true pixels) of the
// given width: regionOf[i] is pixel i's component (-1 outside the mask) and
// sizes[c] the pixel count of component c.
func Regions(mask []bool, width int) (regionOf []int32, sizes []int) {
	regionOf = make([]int32, len(mask))
	for i := range regionOf {
		regionOf[i] = -1
	}
	height := len(mask) / width
	var stack []int
	for start, m := range mask {
		if !m || regionOf[start] >= 0 {
			continue
		}
		id := int32(len(sizes))
		size := 0
		regionOf[start] = id
		stack = append(stack[:0], start)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			size++
			y, x := i/width, i%width
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					ny, nx := y+dy, x+dx
					if ny < 0 || ny >= height || nx < 0 || nx >= width {
						continue
					}
					if j := ny*width + nx; mask[j] && regionOf[j] < 0 {
						regionOf[j] = id
						stack = append(stack, j)
					}
				}
			}
		}
		sizes = append(sizes, size)
	}
	return regionOf, sizes
}
