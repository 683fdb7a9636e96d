package serve

import (
	"bytes"
	"image"
	"image/png"
	"strconv"
	"sync"
	"time"

	"golang.org/x/image/draw"

	"github.com/org/anomnet"
)

// thumbSide is the longer side of a result's thumbnail on the page.
const thumbSide = 160

// history keeps the last results for the page. It holds each result's
// image and map and draws its thumbnail only when the page asks for it,
// so that scoring pays nothing for the page.
type history struct {
	mu    sync.Mutex
	items []*entry // oldest first
	size  int
	seq   int64
}

// Recent is one result as GET /v1/recent lists it.
type Recent struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Score     float64   `json:"score"`
	Norm      float64   `json:"normalized_score"`
	Anomalous bool      `json:"anomalous"`
	ModelID   string    `json:"model_id"`
	Map       Size      `json:"map"`
	// Thumbnail is the URL of its overlay's thumbnail ("" if none is
	// kept).
	Thumbnail string `json:"thumbnail"`
}

// entry is one scored image.
type entry struct {
	Recent
	model *Model
	img   image.Image // nil: no thumbnail
	res   anomnet.Result
	once  sync.Once
	png   []byte
	err   error
}

func newHistory(size int) *history { return &history{size: size} }

// add records a result (img nil: without a thumbnail) and returns its
// entry.
func (h *history) add(m *Model, img image.Image, r anomnet.Result, norm float64) *entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e := &entry{Recent: Recent{Seq: h.seq, Time: time.Now().UTC(), Score: r.Score, Norm: norm, Anomalous: r.Anomalous,
		ModelID: m.ID, Map: Size{r.Width, r.Height}}, model: m, img: img, res: r}
	if img != nil {
		e.Thumbnail = "/v1/recent/" + strconv.FormatInt(e.Seq, 10) + ".png"
	} else {
		e.res = anomnet.Result{}
	}
	if len(h.items) == h.size {
		copy(h.items, h.items[1:])
		h.items = h.items[:h.size-1]
	}
	h.items = append(h.items, e)
	return e
}

// list returns the results, newest first.
func (h *history) list() []Recent {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Recent, len(h.items))
	for i, e := range h.items {
		out[len(h.items)-1-i] = e.Recent
	}
	return out
}

// find returns the entry numbered seq, nil when it is gone.
func (h *history) find(seq int64) *entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.items {
		if e.Seq == seq {
			return e
		}
	}
	return nil
}

// thumbnail returns the entry's overlay, its longer side thumbSide, as a
// PNG (drawn once).
func (e *entry) thumbnail() ([]byte, error) {
	e.once.Do(func() {
		ov, err := e.model.Overlay(e.img, e.res)
		if err != nil {
			e.err = err
			return
		}
		b := ov.Bounds()
		w, h := thumbSide, thumbSide*b.Dy()/max(1, b.Dx())
		if b.Dy() > b.Dx() {
			w, h = thumbSide*b.Dx()/max(1, b.Dy()), thumbSide
		}
		small := image.NewRGBA(image.Rect(0, 0, max(1, w), max(1, h)))
		draw.ApproxBiLinear.Scale(small, small.Bounds(), ov, b, draw.Src, nil)
		var buf bytes.Buffer
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		e.err = enc.Encode(&buf, small)
		e.png = buf.Bytes()
		e.img, e.res = nil, anomnet.Result{} // the thumbnail is all it needs now
	})
	return e.png, e.err
}
