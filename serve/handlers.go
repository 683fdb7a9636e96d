package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/org/anomnet"
)

//go:embed page/index.html
var page []byte

// maxThumbPixels bounds the images history keeps for thumbnails: beyond
// it (a tiled model's large inputs) a result has none.
const maxThumbPixels = 1 << 22

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	m := s.metrics
	s.mux.HandleFunc("POST /v1/predict", m.instrument("predict", s.auth(s.handlePredict)))
	s.mux.HandleFunc("/v1/predict", m.instrument("predict", s.auth(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		fail(w, http.StatusMethodNotAllowed, "use POST with the image as the body")
	})))
	s.mux.HandleFunc("GET /v1/model", m.instrument("model", s.auth(s.handleModel)))
	s.mux.HandleFunc("GET /v1/recent", m.instrument("recent", s.auth(s.handleRecent)))
	s.mux.HandleFunc("GET /v1/recent/{file}", m.instrument("thumbnail", s.auth(s.handleThumb)))
	s.mux.HandleFunc("GET /healthz", m.instrument("healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.mux.HandleFunc("GET /readyz", m.instrument("readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.Ready() {
			fail(w, http.StatusServiceUnavailable, "the model is loading or warming up")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "model": s.Model().ID})
	}))
	metricsHandler := m.handler()
	s.mux.HandleFunc("GET /metrics", m.instrument("metrics", s.auth(metricsHandler.ServeHTTP)))
	s.mux.HandleFunc("GET /{$}", m.instrument("page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(page)
	}))
}

// auth refuses a request without the bearer token, where one is set.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.opts.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.opts.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			s.metrics.rejected.WithLabelValues("unauthorized").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="anomnet"`)
			fail(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h(w, r)
	}
}

// Prediction is the answer of POST /v1/predict.
type Prediction struct {
	// Score is the image's anomaly score, in the model's raw units.
	Score float64 `json:"score"`
	// NormalizedScore is Score on the normal images' scale: 0 at their
	// lowest pixel score, 1 at their highest (Calibration.Normalize).
	NormalizedScore float64 `json:"normalized_score"`
	// Anomalous is Score > the image threshold; Decision says the same as
	// "pass" or "fail".
	Anomalous bool   `json:"anomalous"`
	Decision  string `json:"decision"`
	// AnomalousPixels is the share of the map's pixels above the pixel
	// threshold.
	AnomalousPixels float64    `json:"anomalous_pixels"`
	Thresholds      Thresholds `json:"thresholds"`
	Model           ModelRef   `json:"model"`
	// Image is the size of the image sent; Map that of the anomaly map
	// (the model's input).
	Image Size `json:"image"`
	Map   Size `json:"map"`
	// Timing in milliseconds: decoding and preparing the image, waiting in
	// the queue, its batch's PredictBatch, and the whole request.
	Timing Timing `json:"timing_ms"`
	// Batch is how many images shared the PredictBatch.
	Batch int `json:"batch"`
	// Seq numbers the result in /v1/recent.
	Seq int64 `json:"seq"`
	// HeatmapPNG and OverlayPNG, with ?map=png: the anomaly map on the
	// model's colour scale, and blended over the model's input, as
	// base64-encoded PNGs the size of Map.
	HeatmapPNG string `json:"heatmap_png,omitempty"`
	OverlayPNG string `json:"overlay_png,omitempty"`
}

// Thresholds are the model's decision thresholds.
type Thresholds struct {
	Image float64 `json:"image"`
	Pixel float64 `json:"pixel"`
	// FalseAlarms is the false-alarm rate they were set for (0: set
	// otherwise).
	FalseAlarms float64 `json:"false_alarms"`
}

// ModelRef names the model that scored an image.
type ModelRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Size is a width and a height in pixels.
type Size struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Timing is a request's time in milliseconds, by step.
type Timing struct {
	Decode  float64 `json:"decode"`
	Queue   float64 `json:"queue"`
	Predict float64 `json:"predict"`
	Render  float64 `json:"render,omitempty"`
	Total   float64 `json:"total"`
}

// errorBody is every error's JSON.
type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
	defer cancel()
	wantMap := false
	switch v := r.URL.Query().Get("map"); v {
	case "":
	case "png":
		wantMap = true
	default:
		fail(w, http.StatusBadRequest, fmt.Sprintf("map=%q: the only map format is png", v))
		return
	}
	data, code, err := s.readImage(w, r)
	if err != nil {
		s.refuse(w, code, err)
		return
	}
	img, size, code, err := s.decode(data)
	if err != nil {
		s.refuse(w, code, err)
		return
	}
	// Resized here, beside the worker's scoring, not in its batch.
	m := s.model.Load()
	var prepared image.Image
	if cfg := m.Config(); cfg.Input != anomnet.InputTile {
		prepared = anomnet.Prepared{RGBA: cfg.Preprocess().Image(img)}
	}
	decoded := time.Now()
	o, err := s.submit(ctx, img, prepared, m)
	switch {
	case errors.Is(err, errQueueFull):
		s.metrics.rejected.WithLabelValues("queue_full").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(s.retryAfter()))
		fail(w, http.StatusServiceUnavailable, fmt.Sprintf("busy: %d images are waiting; retry later", s.opts.Queue))
		return
	case errors.Is(err, errClosed):
		s.metrics.rejected.WithLabelValues("shutting_down").Inc()
		w.Header().Set("Retry-After", "5")
		fail(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	case errors.Is(err, context.DeadlineExceeded):
		s.metrics.rejected.WithLabelValues("timeout").Inc()
		fail(w, http.StatusGatewayTimeout, fmt.Sprintf("not scored within the request timeout of %s", s.opts.Timeout))
		return
	case errors.Is(err, context.Canceled):
		return // the client has gone
	case err != nil:
		s.opts.Log.Error("predict failed", "err", err)
		fail(w, http.StatusInternalServerError, "scoring failed: "+err.Error())
		return
	}
	res, model := o.res, o.model
	if math.IsNaN(res.Score) || math.IsInf(res.Score, 0) {
		fail(w, http.StatusInternalServerError, fmt.Sprintf("the image's score is %v: the model produced non-finite features", res.Score))
		return
	}
	cal := model.Calibration()
	p := Prediction{
		Score: res.Score, NormalizedScore: finite(cal.Normalize(res.Score)), Anomalous: res.Anomalous, Decision: "pass",
		Thresholds: Thresholds{Image: cal.ImageThreshold, Pixel: cal.PixelThreshold, FalseAlarms: cal.FalseAlarms},
		Model:      ModelRef{ID: model.ID, Name: model.Name},
		Image:      size, Map: Size{res.Width, res.Height}, Batch: o.batch,
	}
	if res.Anomalous {
		p.Decision = "fail"
	}
	n := 0
	for _, on := range res.Mask {
		if on {
			n++
		}
	}
	p.AnomalousPixels = float64(n) / float64(max(1, len(res.Mask)))
	done := time.Now()
	if wantMap {
		if p.HeatmapPNG, p.OverlayPNG, err = renderMaps(model, o.img, res); err != nil {
			fail(w, http.StatusInternalServerError, "drawing the maps failed: "+err.Error())
			return
		}
	}
	keep := o.img
	if b := keep.Bounds(); b.Dx()*b.Dy() > maxThumbPixels {
		keep = nil
	}
	e := s.recent.add(model, keep, res, p.NormalizedScore)
	p.Seq = e.Seq
	s.metrics.images.WithLabelValues(p.Decision).Inc()
	// Milliseconds to two decimals.
	ms2 := func(d time.Duration) float64 { return math.Round(ms(d)*100) / 100 }
	p.Timing = Timing{Decode: ms2(decoded.Sub(t0)), Queue: ms2(o.wait), Predict: ms2(o.predict), Total: ms2(time.Since(t0))}
	if wantMap {
		p.Timing.Render = ms2(time.Since(done))
	}
	writeJSON(w, http.StatusOK, p)
	s.opts.Log.Info("predict", "score", res.Score, "decision", p.Decision, "model", model.ID, "ms", p.Timing.Total, "batch", o.batch)
}

// finite replaces a NaN or infinite value, which JSON cannot carry, by 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// retryAfter estimates, in whole seconds (at least 1), how long the queue
// takes to drain.
func (s *Server) retryAfter() int {
	per := 0.1 // seconds per image, before any batch has been timed
	if r := s.metrics.rate(); r > 0 {
		per = 1 / r
	}
	return max(1, int(math.Ceil(per*float64(s.waiting.Load()))))
}

// refuse answers an unusable request and counts it by status.
func (s *Server) refuse(w http.ResponseWriter, code int, err error) {
	reason := map[int]string{
		http.StatusRequestEntityTooLarge: "too_large", http.StatusUnsupportedMediaType: "wrong_type",
	}[code]
	if reason == "" {
		reason = "bad_image"
	}
	s.metrics.rejected.WithLabelValues(reason).Inc()
	fail(w, code, err.Error())
}

// readImage returns the request's image bytes: the body, or with a
// multipart form its first file (or a field named image or file). It
// refuses other content types, an empty image and a body over the limit.
func (s *Server) readImage(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	tooLarge := func(err error) ([]byte, int, error) {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the body is larger than the limit of %d bytes", s.opts.MaxBodyBytes)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %v", err)
	}
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct != "" && err != nil {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: %v", ct, err)
	}
	var data []byte
	switch {
	case mt == "multipart/form-data":
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return nil, http.StatusBadRequest, errors.New("the multipart form has no file: send the image as a file part (named image or file)")
			}
			if err != nil {
				return tooLarge(err)
			}
			if part.FileName() == "" && part.FormName() != "image" && part.FormName() != "file" {
				part.Close()
				continue
			}
			data, err = io.ReadAll(part)
			part.Close()
			if err != nil {
				return tooLarge(err)
			}
			break
		}
	case ct == "" || strings.HasPrefix(mt, "image/") || mt == "application/octet-stream" ||
		mt == "application/x-www-form-urlencoded": // what curl --data-binary sends unless told
		if data, err = io.ReadAll(r.Body); err != nil {
			return tooLarge(err)
		}
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %s is not an image: send the image's bytes (image/png, image/jpeg, image/bmp, image/tiff, application/octet-stream) or a multipart form", mt)
	}
	if len(data) == 0 {
		return nil, http.StatusBadRequest, errors.New("empty image: send the image's bytes as the body, or as a multipart file")
	}
	return data, 0, nil
}

// decode reads the image's header, checks its size against the pixel cap,
// and decodes it.
func (s *Server) decode(data []byte) (image.Image, Size, int, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, Size{}, http.StatusBadRequest, fmt.Errorf("not an image anomnet reads (png, jpeg, bmp, tiff): %v", err)
	}
	size := Size{cfg.Width, cfg.Height}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, size, http.StatusBadRequest, fmt.Errorf("the %s image is %d x %d pixels", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(s.opts.MaxPixels) {
		return nil, size, http.StatusRequestEntityTooLarge, fmt.Errorf("the %s image is %d x %d pixels, over the limit of %d pixels", format, cfg.Width, cfg.Height, s.opts.MaxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, size, http.StatusBadRequest, fmt.Errorf("cannot decode the %s image: %v", format, err)
	}
	return img, size, 0, nil
}

// renderMaps draws res's heatmap and its overlay on img as base64 PNGs.
func renderMaps(m *Model, img image.Image, res anomnet.Result) (heat, over string, err error) {
	h, err := m.Heatmap(res)
	if err != nil {
		return "", "", err
	}
	o, err := m.Overlay(img, res)
	if err != nil {
		return "", "", err
	}
	enc := func(img image.Image) (string, error) {
		var buf bytes.Buffer
		e := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := e.Encode(&buf, img); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
	}
	if heat, err = enc(h); err != nil {
		return "", "", err
	}
	over, err = enc(o)
	return heat, over, err
}

// ModelInfo is the answer of GET /v1/model.
type ModelInfo struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Path        string          `json:"path,omitempty"`
	Loaded      time.Time       `json:"loaded"`
	Fitted      *time.Time      `json:"fitted"` // null for a file that does not record it
	Backbone    string          `json:"backbone"`
	Fingerprint string          `json:"fingerprint"`
	Input       string          `json:"input"`
	Map         Size            `json:"map"`
	K           int             `json:"k"`
	Thresholds  Thresholds      `json:"thresholds"`
	HeldOut     bool            `json:"held_out"`
	Normals     int             `json:"normal_images_kept"`
	Resolvable  float64         `json:"resolvable_false_alarm_rate"`
	Config      json.RawMessage `json:"config"`
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	m := s.Model()
	cfg, cal := m.Config(), m.Calibration()
	js, err := json.Marshal(cfg)
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	mw, mh := cfg.InputSize()
	info := ModelInfo{
		ID: m.ID, Name: m.Name, Path: m.Path, Loaded: m.Loaded, Backbone: m.Backbone().Name(), Fingerprint: m.Backbone().Fingerprint(),
		Input: cfg.Input, Map: Size{mw, mh}, K: m.Centroids().K(),
		Thresholds: Thresholds{Image: cal.ImageThreshold, Pixel: cal.PixelThreshold, FalseAlarms: cal.FalseAlarms},
		HeldOut:    cal.HeldOut, Normals: len(cal.Scores), Resolvable: finite(cal.ResolvableRate()), Config: js,
	}
	if t := m.FitTime(); !t.IsZero() {
		info.Fitted = &t
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleRecent(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"results": s.recent.list()})
}

func (s *Server) handleThumb(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	seq, err := strconv.ParseInt(strings.TrimSuffix(name, ".png"), 10, 64)
	if err != nil || !strings.HasSuffix(name, ".png") {
		fail(w, http.StatusNotFound, "no such thumbnail")
		return
	}
	e := s.recent.find(seq)
	if e == nil || e.Thumbnail == "" {
		fail(w, http.StatusNotFound, fmt.Sprintf("result %d is no longer kept, or has no thumbnail", seq))
		return
	}
	b, err := e.thumbnail()
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}
