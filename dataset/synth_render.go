package dataset

import (
	"image"
	"math"
	"math/rand/v2"
)

// The synthetic images are drawn in float RGB in [0, 1] in four steps:
// the clean material (texture or object), the defect composited over it
// through a coverage map, a global illumination (gain, gradient, slow
// shading) and sensor noise. Illumination and noise come after the defect
// so that a defect is lit like its surroundings and the defect-free twin
// differs from the defective image only where the defect is drawn. All
// lengths are given for a 256-pixel image and scaled by s = size/256.

// synthCategory is one category of the synthetic set.
type synthCategory struct {
	name    string
	gray    bool     // written as gray PNGs; the render has equal channels
	defects []string // in the order WriteSynthetic splits the test images
	// render draws one image: rb drives the normal base image, rd the
	// defect (unused for "good").
	render func(size int, rb, rd *rand.Rand, defect string) (*image.RGBA, *image.Gray)
}

var synthCategories = []*synthCategory{
	{name: "weave", defects: []string{"scratch", "hole", "stain"}, render: renderWeave},
	{name: "grain", gray: true, defects: []string{"scratch", "hole", "stain"}, render: renderGrain},
	{name: "washer", defects: []string{"scratch", "stain", "missing"}, render: renderWasher},
}

func synthCategoryByName(name string) *synthCategory {
	for _, c := range synthCategories {
		if c.name == name {
			return c
		}
	}
	return nil
}

// synthCanvas is a square float RGB image, three values per pixel.
type synthCanvas struct {
	n   int
	pix []float64
}

func newSynthCanvas(n int) *synthCanvas { return &synthCanvas{n: n, pix: make([]float64, 3*n*n)} }

func (c *synthCanvas) rgb(i int) (r, g, b float64) { return c.pix[3*i], c.pix[3*i+1], c.pix[3*i+2] }

func (c *synthCanvas) set(i int, r, g, b float64) { c.pix[3*i], c.pix[3*i+1], c.pix[3*i+2] = r, g, b }

// blend moves pixel i towards (r, g, b) by a.
func (c *synthCanvas) blend(i int, a, r, g, b float64) {
	p := c.pix[3*i : 3*i+3]
	p[0] += a * (r - p[0])
	p[1] += a * (g - p[1])
	p[2] += a * (b - p[2])
}

// synthCoverage is a defect's shape: alpha in [0, 1] per pixel, 0.5 on the
// shape's boundary, non-zero only inside box.
type synthCoverage struct {
	n     int
	box   image.Rectangle
	alpha []float64
}

func newSynthCoverage(n int, box image.Rectangle) *synthCoverage {
	return &synthCoverage{n: n, box: box.Intersect(image.Rect(0, 0, n, n)), alpha: make([]float64, n*n)}
}

// mask marks the pixels whose centre the shape covers (alpha >= 0.5),
// further limited by keep when keep is not nil.
func (cv *synthCoverage) mask(keep func(i int) bool) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, cv.n, cv.n))
	for i, a := range cv.alpha {
		if a >= 0.5 && (keep == nil || keep(i)) {
			m.Pix[i] = 255
		}
	}
	return m
}

func synthClamp01(v float64) float64 { return min(1, max(0, v)) }

func synthSmoothstep(e0, e1, x float64) float64 {
	t := synthClamp01((x - e0) / (e1 - e0))
	return t * t * (3 - 2*t)
}

func synthUniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// synthHash is an integer hash of a lattice point, the source of the value
// noise; it keeps the noise a pure function of position and seed.
func synthHash(x, y int32, seed uint32) uint32 {
	h := uint32(x)*0x8da6b343 ^ uint32(y)*0xd8163841 ^ seed*0xcb1ab31f
	h ^= h >> 15
	h *= 0x2c1b3c6d
	h ^= h >> 12
	h *= 0x297a2d39
	h ^= h >> 15
	return h
}

// synthHashUnit maps a lattice point to [0, 1).
func synthHashUnit(x, y int32, seed uint32) float64 {
	return float64(synthHash(x, y, seed)>>8) / (1 << 24)
}

// synthValueNoise is smooth lattice noise in [-1, 1] with unit feature size.
func synthValueNoise(x, y float64, seed uint32) float64 {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	sx, sy := fx*fx*(3-2*fx), fy*fy*(3-2*fy)
	ix, iy := int32(x0), int32(y0)
	a := synthHashUnit(ix, iy, seed)
	b := synthHashUnit(ix+1, iy, seed)
	c := synthHashUnit(ix, iy+1, seed)
	d := synthHashUnit(ix+1, iy+1, seed)
	top := a + sx*(b-a)
	bot := c + sx*(d-c)
	return 2*(top+sy*(bot-top)) - 1
}

// synthFBM sums octaves of value noise, each half the size and amplitude of the
// one before; the result stays roughly in [-1, 1].
func synthFBM(x, y float64, octaves int, seed uint32) float64 {
	sum, amp, norm := 0.0, 1.0, 0.0
	for o := range octaves {
		sum += amp * synthValueNoise(x, y, seed+uint32(o)*0x9e3779b9)
		norm += amp
		amp *= 0.5
		// Not exactly 2, so the octaves' lattices do not line up.
		x, y = x*2.03+17.1, y*2.03+5.3
	}
	return sum / norm
}

// synthFinish is the global illumination and sensor noise of one image.
type synthFinish struct {
	gain, gx, gy float64 // brightness and a linear gradient across the image
	slow         float64 // amplitude of slow shading
	slowSeed     uint32
	noise        float64 // amplitude of per-pixel noise
	noiseSeed    uint32
}

func sampleSynthFinish(r *rand.Rand, gain, grad, slow, noise float64) synthFinish {
	return synthFinish{
		gain: 1 + synthUniform(r, -gain, gain), gx: synthUniform(r, -grad, grad), gy: synthUniform(r, -grad, grad),
		slow: slow, slowSeed: r.Uint32(), noise: noise, noiseSeed: r.Uint32(),
	}
}

// apply lights the canvas and quantises it to 8 bits; gray canvases get
// the same noise in every channel so they stay gray.
func (f synthFinish) apply(c *synthCanvas, s float64) *image.RGBA {
	n := c.n
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			i := y*n + x
			u, v := (float64(x)+0.5)/float64(n)-0.5, (float64(y)+0.5)/float64(n)-0.5
			light := f.gain * (1 + f.gx*u + f.gy*v + f.slow*synthFBM(float64(x)/(s*90), float64(y)/(s*90), 2, f.slowSeed))
			// Triangular noise from two hashes: cheap, and bounded.
			e := f.noise * (synthHashUnit(int32(x), int32(y), f.noiseSeed) + synthHashUnit(int32(x), int32(y), f.noiseSeed^0x5bd1e995) - 1)
			r, g, b := c.rgb(i)
			p := img.Pix[4*i : 4*i+4]
			p[0] = synthQuantise(r*light + e)
			p[1] = synthQuantise(g*light + e)
			p[2] = synthQuantise(b*light + e)
			p[3] = 255
		}
	}
	return img
}

func synthQuantise(v float64) uint8 { return uint8(math.Round(255 * synthClamp01(v))) }

// synthCurve is a quadratic Bézier stroke with a tapered width: a scratch.
type synthCurve struct {
	pts   [][2]float64
	halfw []float64
}

// newSynthCurve makes a curve of length about l centred on (cx, cy), at angle
// a, bowed sideways by bend times its length, of maximum width w.
func newSynthCurve(cx, cy, l, a, bend, w float64) synthCurve {
	dx, dy := math.Cos(a), math.Sin(a)
	p0 := [2]float64{cx - dx*l/2, cy - dy*l/2}
	p2 := [2]float64{cx + dx*l/2, cy + dy*l/2}
	p1 := [2]float64{cx - dy*bend*l, cy + dx*bend*l}
	m := max(8, int(l/2))
	var c synthCurve
	for k := 0; k <= m; k++ {
		t := float64(k) / float64(m)
		u := 1 - t
		c.pts = append(c.pts, [2]float64{
			u*u*p0[0] + 2*u*t*p1[0] + t*t*p2[0],
			u*u*p0[1] + 2*u*t*p1[1] + t*t*p2[1],
		})
		// Scratches thin out towards their ends, but never below 0.6
		// pixels, so the mask stays one connected line.
		c.halfw = append(c.halfw, max(0.6, w/2*(0.45+0.55*math.Sqrt(math.Sin(math.Pi*t)))))
	}
	return c
}

// coverage rasterises the stroke with a one-pixel antialiased edge:
// alpha = 0.5 exactly where the distance to the spine equals the half
// width.
func (c synthCurve) coverage(n int) *synthCoverage {
	minx, miny, maxx, maxy := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range c.pts {
		minx, maxx = min(minx, p[0]), max(maxx, p[0])
		miny, maxy = min(miny, p[1]), max(maxy, p[1])
	}
	cv := newSynthCoverage(n, image.Rect(int(minx)-4, int(miny)-4, int(maxx)+5, int(maxy)+5))
	for y := cv.box.Min.Y; y < cv.box.Max.Y; y++ {
		for x := cv.box.Min.X; x < cv.box.Max.X; x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			best := math.Inf(1)
			for k := 0; k+1 < len(c.pts); k++ {
				ax, ay := c.pts[k][0], c.pts[k][1]
				bx, by := c.pts[k+1][0]-ax, c.pts[k+1][1]-ay
				t := synthClamp01(((px-ax)*bx + (py-ay)*by) / (bx*bx + by*by))
				d := math.Hypot(px-ax-t*bx, py-ay-t*by) - (c.halfw[k] + t*(c.halfw[k+1]-c.halfw[k]))
				best = min(best, d)
			}
			cv.alpha[y*n+x] = synthClamp01(0.5 - best)
		}
	}
	return cv
}

// synthBlob is an irregular closed region: a circle whose radius is modulated
// by a few harmonics of the angle.
type synthBlob struct {
	cx, cy, r float64
	amp, ph   []float64
}

// newSynthBlob makes a blob of mean radius r with harmonics 2..k of total
// relative amplitude at most rough.
func newSynthBlob(rd *rand.Rand, cx, cy, r float64, k int, rough float64) synthBlob {
	b := synthBlob{cx: cx, cy: cy, r: max(2.5, r)} // visible at the smallest size
	for h := 2; h <= k; h++ {
		b.amp = append(b.amp, rough*rd.Float64()/float64(k-1))
		b.ph = append(b.ph, synthUniform(rd, 0, 2*math.Pi))
	}
	return b
}

func (b synthBlob) radius(theta float64) float64 {
	f := 1.0
	for h := range b.amp {
		f += b.amp[h] * math.Cos(float64(h+2)*theta+b.ph[h])
	}
	return b.r * f
}

// coverage rasterises the blob with an edge ramp of width soft pixels:
// alpha = 0.5 exactly on the boundary.
func (b synthBlob) coverage(n int, soft float64) *synthCoverage {
	reach := b.r*1.6 + soft + 2
	cv := newSynthCoverage(n, image.Rect(int(b.cx-reach), int(b.cy-reach), int(b.cx+reach)+1, int(b.cy+reach)+1))
	for y := cv.box.Min.Y; y < cv.box.Max.Y; y++ {
		for x := cv.box.Min.X; x < cv.box.Max.X; x++ {
			dx, dy := float64(x)+0.5-b.cx, float64(y)+0.5-b.cy
			d := math.Hypot(dx, dy)
			cv.alpha[y*n+x] = synthClamp01((b.radius(math.Atan2(dy, dx))-d)/soft + 0.5)
		}
	}
	return cv
}

// inside is the signed depth of a point inside the blob's boundary.
func (b synthBlob) inside(x, y float64) float64 {
	dx, dy := x-b.cx, y-b.cy
	return b.radius(math.Atan2(dy, dx)) - math.Hypot(dx, dy)
}

// synthEmptyMask is the mask of a good image.
func synthEmptyMask(n int) *image.Gray { return image.NewGray(image.Rect(0, 0, n, n)) }

// renderWeave draws a colour 2/2 twill (denim-like): indigo warp and pale
// weft threads crossing in diagonal ribs, with per-image rotation, thread
// period, phase, colour and lighting, and per-thread shade and fuzz.
// Defects: a snagged pale thread (scratch), a hole showing the dark
// backing, and a yellow-brown stain.
func renderWeave(size int, rb, rd *rand.Rand, defect string) (*image.RGBA, *image.Gray) {
	n, s := size, float64(size)/256
	theta := synthUniform(rb, -4, 4) * math.Pi / 180
	period := s * synthUniform(rb, 8.6, 9.8)
	u0, v0 := synthUniform(rb, 0, 4*period), synthUniform(rb, 0, 4*period)
	warp := [3]float64{0.30 * synthUniform(rb, 0.95, 1.05), 0.40 * synthUniform(rb, 0.97, 1.03), 0.60 * synthUniform(rb, 0.97, 1.03)}
	weft := [3]float64{0.74 * synthUniform(rb, 0.96, 1.04), 0.74 * synthUniform(rb, 0.96, 1.04), 0.70 * synthUniform(rb, 0.96, 1.04)}
	threadSeed, fuzzSeed := rb.Uint32(), rb.Uint32()
	fin := sampleSynthFinish(rb, 0.1, 0.14, 0.06, 0.05)

	c := newSynthCanvas(n)
	cos, sin := math.Cos(theta), math.Sin(theta)
	half := float64(n) / 2
	for y := range n {
		for x := range n {
			fuzz := 1 + 0.07*synthFBM(float64(x)/(s*2.5), float64(y)/(s*2.5), 2, fuzzSeed)
			var acc [3]float64
			// 2x2 supersampling: the over/under switch is a hard edge.
			for _, o := range [4][2]float64{{0.25, 0.25}, {0.75, 0.25}, {0.25, 0.75}, {0.75, 0.75}} {
				dx, dy := float64(x)+o[0]-half, float64(y)+o[1]-half
				u := (cos*dx + sin*dy + u0) / period
				v := (-sin*dx + cos*dy + v0) / period
				i, j := math.Floor(u), math.Floor(v)
				fu, fv := u-i, v-j
				k := int(i+j) & 3
				var col [3]float64
				var along, across float64
				var id int32
				if k < 2 { // the warp thread of column i floats over two rows
					col, along, across, id = warp, (float64(k)+fv)/2, fu, int32(i)
				} else { // the weft thread of row j floats over two columns
					col, along, across, id = weft, (float64(k-2)+fu)/2, fv, int32(j)+1<<20
				}
				shade := (0.3 + 0.7*math.Sqrt(math.Sin(math.Pi*across))) * (0.72 + 0.28*math.Sin(math.Pi*along))
				shade *= 1 + 0.12*(synthHashUnit(id, 0, threadSeed)-0.5)
				for ch := range 3 {
					acc[ch] += col[ch] * shade
				}
			}
			c.set(y*n+x, acc[0]/4*fuzz, acc[1]/4*fuzz, acc[2]/4*fuzz)
		}
	}

	mask := synthEmptyMask(n)
	cx, cy := synthUniform(rd, 0.22, 0.78)*float64(n), synthUniform(rd, 0.22, 0.78)*float64(n)
	switch defect {
	case "scratch":
		cv := newSynthCurve(cx, cy, s*synthUniform(rd, 40, 90), synthUniform(rd, 0, math.Pi), synthUniform(rd, -0.3, 0.3), s*synthUniform(rd, 2, 3)).coverage(n)
		g := synthUniform(rd, 0.92, 1.08)
		synthCompose(c, cv, func(i int, r, gg, b float64) (float64, float64, float64) {
			return weft[0] * g, weft[1] * g, weft[2] * g
		})
		mask = cv.mask(nil)
	case "hole":
		cv := newSynthBlob(rd, cx, cy, s*synthUniform(rd, 5.5, 10), 6, 0.5).coverage(n, 2*s)
		synthCompose(c, cv, func(i int, r, g, b float64) (float64, float64, float64) {
			return 0.04 + 0.2*r, 0.04 + 0.2*g, 0.05 + 0.2*b
		})
		mask = cv.mask(nil)
	case "stain":
		bl := newSynthBlob(rd, cx, cy, s*synthUniform(rd, 13, 26), 5, 0.4)
		cv := bl.coverage(n, 5*s)
		strength, seed := synthUniform(rd, 0.7, 1), rd.Uint32()
		synthCompose(c, cv, func(i int, r, g, b float64) (float64, float64, float64) {
			// Uneven inside, like a dried liquid.
			f := strength * (0.8 + 0.2*synthFBM(float64(i%n)/(s*8), float64(i/n)/(s*8), 2, seed))
			return r * (1 - 0.08*f), g * (1 - 0.22*f), b * (1 - 0.5*f)
		})
		mask = cv.mask(nil)
	}
	return fin.apply(c, s), mask
}

// synthCompose blends each covered pixel towards the defect's colour, given
// the pixel's index and clean colour, by the shape's coverage.
func synthCompose(c *synthCanvas, cv *synthCoverage, col func(i int, r, g, b float64) (float64, float64, float64)) {
	for y := cv.box.Min.Y; y < cv.box.Max.Y; y++ {
		for x := cv.box.Min.X; x < cv.box.Max.X; x++ {
			i := y*c.n + x
			if a := cv.alpha[i]; a > 0 {
				r, g, b := c.rgb(i)
				r, g, b = col(i, r, g, b)
				c.blend(i, a, r, g, b)
			}
		}
	}
}

// renderGrain draws gray wood grain: growth rings bent by a slow
// turbulent flow, with per-ring darkness, fibre streaks along the grain
// and per-image orientation, ring spacing and lighting. Defects: a pale
// scratch across the grain, a dark worm hole, and a darker water stain
// with a tide line.
func renderGrain(size int, rb, rd *rand.Rand, defect string) (*image.RGBA, *image.Gray) {
	n, s := size, float64(size)/256
	theta := synthUniform(rb, -6, 6) * math.Pi / 180
	spacing := s * synthUniform(rb, 10, 14)
	// The flow's slope across the grain stays below one, so rings bend
	// and converge but never close into islands.
	flow := s * synthUniform(rb, 14, 24)
	ox, oy := synthUniform(rb, 0, 1000), synthUniform(rb, 0, 1000)
	flowSeed, ringSeed, fibreSeed, toneSeed := rb.Uint32(), rb.Uint32(), rb.Uint32(), rb.Uint32()
	v0 := synthUniform(rb, 0, 1000)
	fin := sampleSynthFinish(rb, 0.1, 0.14, 0.06, 0.05)

	c := newSynthCanvas(n)
	cos, sin := math.Cos(theta), math.Sin(theta)
	half := float64(n) / 2
	for y := range n {
		for x := range n {
			dx, dy := float64(x)+0.5-half, float64(y)+0.5-half
			u := cos*dx + sin*dy // along the grain
			v := -sin*dx + cos*dy + v0
			w := v + flow*synthFBM(u/(s*150)+ox, v/(s*60)+oy, 2, flowSeed)
			phase := w / spacing
			ring := math.Floor(phase)
			f := phase - ring
			// Latewood: darkening through the ring, then a sharp return.
			late := synthSmoothstep(0.45, 0.9, f) * (1 - synthSmoothstep(0.93, 1, f))
			dark := 0.2 * (0.7 + 0.6*synthHashUnit(int32(ring), 0, ringSeed))
			fibre := 0.05 * synthFBM(u/(s*14), w/(s*0.9), 2, fibreSeed)
			// Broad lighter and darker zones across the grain.
			tone := 0.1 * synthFBM(u/(s*250), w/(s*35), 2, toneSeed)
			t := 0.66 - dark*late + fibre + tone
			c.set(y*n+x, t, t, t)
		}
	}

	mask := synthEmptyMask(n)
	cx, cy := synthUniform(rd, 0.22, 0.78)*float64(n), synthUniform(rd, 0.22, 0.78)*float64(n)
	switch defect {
	case "scratch":
		cv := newSynthCurve(cx, cy, s*synthUniform(rd, 40, 90), synthUniform(rd, 0, math.Pi), synthUniform(rd, -0.3, 0.3), s*synthUniform(rd, 1.6, 2.6)).coverage(n)
		lift := synthUniform(rd, 0.38, 0.46)
		synthCompose(c, cv, func(i int, r, g, b float64) (float64, float64, float64) {
			// Fresh wood: paler, with less of the ring pattern.
			t := 0.5*r + lift
			return t, t, t
		})
		mask = cv.mask(nil)
	case "hole":
		cv := newSynthBlob(rd, cx, cy, s*synthUniform(rd, 3, 6), 5, 0.4).coverage(n, 1.8*s)
		depth := synthUniform(rd, 0.24, 0.3)
		synthCompose(c, cv, func(i int, r, g, b float64) (float64, float64, float64) {
			t := depth + 0.1*r
			return t, t, t
		})
		mask = cv.mask(nil)
	case "stain":
		bl := newSynthBlob(rd, cx, cy, s*synthUniform(rd, 14, 28), 5, 0.45)
		cv := bl.coverage(n, 4*s)
		strength := synthUniform(rd, 0.12, 0.2)
		synthCompose(c, cv, func(i int, r, g, b float64) (float64, float64, float64) {
			// The tide line: darker just inside the edge.
			depth := bl.inside(float64(i%n)+0.5, float64(i/n)+0.5)
			k := strength * (1 + 0.8*math.Exp(-depth*depth/(8*s*s)))
			return r * (1 - k), g * (1 - k), b * (1 - k)
		})
		mask = cv.mask(nil)
	}
	return fin.apply(c, s), mask
}

// renderWasher draws a brushed metal washer on a slate mat: per-image
// position, size, light direction, brushing highlight and lighting, a soft
// cast shadow, rim bevels. Defects: a thin scratch on the face, a rust
// stain, and a chip broken off a rim (missing) showing the mat.
func renderWasher(size int, rb, rd *rand.Rand, defect string) (*image.RGBA, *image.Gray) {
	n, s := size, float64(size)/256
	ccx, ccy := float64(n)/2+s*synthUniform(rb, -14, 14), float64(n)/2+s*synthUniform(rb, -14, 14)
	outer := s * synthUniform(rb, 76, 84)
	inner := s * synthUniform(rb, 36, 42)
	light := synthUniform(rb, 0, 2*math.Pi)
	brush := synthUniform(rb, 0, math.Pi)
	metal := [3]float64{0.68 * synthUniform(rb, 0.975, 1.025), 0.68 * synthUniform(rb, 0.975, 1.025), 0.71 * synthUniform(rb, 0.975, 1.025)}
	mat := [3]float64{0.22 * synthUniform(rb, 0.93, 1.07), 0.25 * synthUniform(rb, 0.93, 1.07), 0.29 * synthUniform(rb, 0.93, 1.07)}
	matSeed, ringSeed := rb.Uint32(), rb.Uint32()
	fin := sampleSynthFinish(rb, 0.1, 0.14, 0.06, 0.05)
	shx, shy := -4*s*math.Cos(light), -4*s*math.Sin(light)

	// The mat and the metal are kept apart so that a missing part can show
	// the mat beneath the washer.
	bg, obj := newSynthCanvas(n), newSynthCanvas(n)
	cov := make([]float64, n*n)
	for y := range n {
		for x := range n {
			i := y*n + x
			px, py := float64(x)+0.5, float64(y)+0.5
			t := 1 + 0.09*synthFBM(px/(s*5), py/(s*5), 3, matSeed)
			// The shadow: the washer's disc shifted away from the light,
			// with a wide soft edge.
			sd := math.Hypot(px-ccx-shx, py-ccy-shy)
			shadow := 1 - 0.45*synthSmoothstep(-5*s, 5*s, outer-sd)*synthSmoothstep(-5*s, 5*s, sd-inner)
			bg.set(i, mat[0]*t*shadow, mat[1]*t*shadow, mat[2]*t*shadow)

			dx, dy := px-ccx, py-ccy
			d := math.Hypot(dx, dy)
			cov[i] = synthClamp01(outer-d+0.5) * synthClamp01(d-inner+0.5)
			if cov[i] == 0 {
				continue
			}
			a := math.Atan2(dy, dx)
			face := 0.78 + 0.1*math.Cos(a-light) + 0.12*math.Cos(2*(a-brush))
			// Fine concentric lathe marks.
			face += 0.035*math.Sin(2*math.Pi*d/(s*1.9)+3*synthFBM(a*6, d/(s*6), 2, ringSeed)) + 0.03*synthFBM(a*40, d/(s*3), 2, ringSeed+1)
			// Bevels catch the light on the side facing it.
			ob := synthSmoothstep(outer-4*s, outer-1*s, d)
			ib := 1 - synthSmoothstep(inner+1*s, inner+4*s, d)
			face += 0.25*ob*math.Cos(a-light) - 0.25*ib*math.Cos(a-light) - 0.08*(ob+ib)
			obj.set(i, metal[0]*face, metal[1]*face, metal[2]*face)
		}
	}

	mask := synthEmptyMask(n)
	onObject := func(i int) bool { return cov[i] >= 0.5 }
	// Defects sit on the face: a random angle, a radius in the band.
	a := synthUniform(rd, 0, 2*math.Pi)
	rad := inner + (outer-inner)*synthUniform(rd, 0.3, 0.7)
	cx, cy := ccx+rad*math.Cos(a), ccy+rad*math.Sin(a)
	switch defect {
	case "scratch":
		cv := newSynthCurve(cx, cy, s*synthUniform(rd, 20, 36), synthUniform(rd, 0, math.Pi), synthUniform(rd, -0.3, 0.3), s*synthUniform(rd, 1.4, 2.2)).coverage(n)
		k := synthUniform(rd, 0.6, 0.72) // darker groove
		if rd.IntN(2) == 0 {
			k = synthUniform(rd, 1.25, 1.35) // or a bright burr
		}
		synthCompose(obj, cv, func(i int, r, g, b float64) (float64, float64, float64) { return r * k, g * k, b * k })
		mask = cv.mask(onObject)
	case "stain":
		cv := newSynthBlob(rd, cx, cy, s*synthUniform(rd, 8, 15), 5, 0.45).coverage(n, 3*s)
		strength, seed := synthUniform(rd, 0.45, 0.7), rd.Uint32()
		synthCompose(obj, cv, func(i int, r, g, b float64) (float64, float64, float64) {
			f := strength * (0.75 + 0.25*synthFBM(float64(i%n)/(s*4), float64(i/n)/(s*4), 2, seed))
			return r * (1 - 0.05*f), g * (1 - 0.3*f), b * (1 - 0.55*f)
		})
		mask = cv.mask(onObject)
	case "missing":
		rim := outer
		if rd.IntN(3) == 0 {
			rim = inner
		}
		rad := rim + s*synthUniform(rd, -2, 3)
		if rim == inner {
			rad = rim - s*synthUniform(rd, -2, 3)
		}
		bl := newSynthBlob(rd, ccx+rad*math.Cos(a), ccy+rad*math.Sin(a), s*synthUniform(rd, 9, 15), 7, 0.6)
		cv := bl.coverage(n, 1)
		mask = cv.mask(onObject)
		for i, al := range cv.alpha {
			cov[i] *= 1 - al
		}
	}

	c := newSynthCanvas(n)
	for i := range cov {
		br, bgc, bb := bg.rgb(i)
		or, og, ob := obj.rgb(i)
		k := cov[i]
		c.set(i, br+k*(or-br), bgc+k*(og-bgc), bb+k*(ob-bb))
	}
	return fin.apply(c, s), mask
}
