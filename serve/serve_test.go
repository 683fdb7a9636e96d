package serve_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/internal/testutil"
	"github.com/org/anomnet/serve"
)

// fixture is what the tests share: the backbone (slow to load), two
// small models fitted on synthetic textures and saved, and test images.
type fixture struct {
	bb           anomnet.Backbone
	pathA, pathB string
	pathC        string // another input size: a 48 x 48 crop
	pathT        string // the tiled input, 64 x 64 tiles
	good, bad    []byte // PNGs: a normal image and a defective one
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

// needFixture returns the shared fixture; without the ResNet-50 weights
// the test is skipped (failed under CI=true).
func needFixture(t *testing.T) fixture {
	t.Helper()
	if _, err := backbone.CachedResNet50(backbone.FetchOptions{}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the weights are missing: %v", err)
		}
		t.Skipf("needs the ResNet-50 weights (anomnet weights fetch): %v", err)
	}
	fixOnce.Do(func() { fix, fixErr = makeFixture() })
	require.NoError(t, fixErr)
	return fix
}

func makeFixture() (fixture, error) {
	var f fixture
	bb, err := backbone.LoadResNet50(context.Background(), backbone.FetchOptions{})
	if err != nil {
		return f, err
	}
	f.bb = bb
	dir, err := os.MkdirTemp("", "anomnet-serve-test-")
	if err != nil {
		return f, err
	}
	opts := dataset.SynthOptions{Size: 128}
	var train []image.Image
	for i := range 8 {
		img, _, err := dataset.SynthImage("weave", i, "good", opts)
		if err != nil {
			return f, err
		}
		train = append(train, img)
	}
	for i, seed := range []uint64{1, 2, 3, 4} {
		cfg := anomnet.DefaultConfig()
		cfg.Input, cfg.Resize, cfg.Crop, cfg.Seed = anomnet.InputCrop, 72, 64, seed
		cfg.K = 64 + 32*i
		switch i {
		case 2:
			cfg.Resize, cfg.Crop = 56, 48
		case 3:
			cfg.Input, cfg.TileSize, cfg.K = anomnet.InputTile, 64, 64
		}
		m, err := anomnet.New(bb, cfg)
		if err != nil {
			return f, err
		}
		if err := m.Fit(context.Background(), train); err != nil {
			return f, err
		}
		path := filepath.Join(dir, fmt.Sprintf("model%c.anm", 'A'+i))
		if err := m.SaveFile(path); err != nil {
			return f, err
		}
		*[]*string{&f.pathA, &f.pathB, &f.pathC, &f.pathT}[i] = path
	}
	enc := func(defect string) ([]byte, error) {
		img, _, err := dataset.SynthImage("weave", 1<<20, defect, opts)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		err = png.Encode(&buf, img)
		return buf.Bytes(), err
	}
	if f.good, err = enc("good"); err != nil {
		return f, err
	}
	f.bad, err = enc("hole")
	return f, err
}

// start serves model path with opts on a loopback test server.
func start(t *testing.T, f fixture, path string, opts serve.Options) (*serve.Server, *httptest.Server) {
	t.Helper()
	m, err := serve.Open(path, f.bb)
	require.NoError(t, err)
	s, err := serve.New(m, opts)
	require.NoError(t, err)
	require.NoError(t, s.Warm(context.Background()))
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

// call sends a request and returns the status, the headers and the body.
func call(t *testing.T, method, url, contentType string, body io.Reader, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func predictOK(t *testing.T, url string, img []byte) serve.Prediction {
	t.Helper()
	code, _, b := call(t, "POST", url+"/v1/predict", "image/png", bytes.NewReader(img))
	require.Equal(t, http.StatusOK, code, "%s", b)
	var p serve.Prediction
	require.NoError(t, json.Unmarshal(b, &p))
	return p
}

// TestPredict checks POST /v1/predict's answer against Model.Predict on
// the same image, raw and as a multipart file, with and without the maps.
func TestPredict(t *testing.T) {
	f := needFixture(t)
	s, ts := start(t, f, f.pathA, serve.Options{})
	m := s.Model()
	for _, tc := range []struct {
		name string
		data []byte
	}{{"good", f.good}, {"hole", f.bad}} {
		img, err := png.Decode(bytes.NewReader(tc.data))
		require.NoError(t, err)
		want, err := m.Predict(img)
		require.NoError(t, err)
		cal := m.Calibration()

		p := predictOK(t, ts.URL, tc.data)
		require.InDelta(t, want.Score, p.Score, 1e-6*max(1, want.Score), tc.name)
		require.Equal(t, want.Anomalous, p.Anomalous, tc.name)
		require.Equal(t, map[bool]string{false: "pass", true: "fail"}[want.Anomalous], p.Decision)
		require.Equal(t, p.Score > cal.ImageThreshold, p.Anomalous)
		require.InDelta(t, cal.Normalize(want.Score), p.NormalizedScore, 1e-6)
		require.Equal(t, cal.ImageThreshold, p.Thresholds.Image)
		require.Equal(t, cal.PixelThreshold, p.Thresholds.Pixel)
		require.Equal(t, m.ID, p.Model.ID)
		require.Equal(t, serve.Size{Width: 128, Height: 128}, p.Image)
		require.Equal(t, serve.Size{Width: 64, Height: 64}, p.Map)
		require.Positive(t, p.Timing.Total)
		require.Empty(t, p.HeatmapPNG, "maps only when asked for")

		// As a multipart file, with the maps.
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		require.NoError(t, mw.WriteField("note", "a field before the file"))
		fw, err := mw.CreateFormFile("image", tc.name+".png")
		require.NoError(t, err)
		fw.Write(tc.data)
		require.NoError(t, mw.Close())
		code, _, b := call(t, "POST", ts.URL+"/v1/predict?map=png", mw.FormDataContentType(), &body)
		require.Equal(t, http.StatusOK, code, "%s", b)
		var q serve.Prediction
		require.NoError(t, json.Unmarshal(b, &q))
		require.Equal(t, p.Score, q.Score)
		for _, enc := range []string{q.HeatmapPNG, q.OverlayPNG} {
			raw, err := base64.StdEncoding.DecodeString(enc)
			require.NoError(t, err)
			pic, err := png.Decode(bytes.NewReader(raw))
			require.NoError(t, err)
			require.Equal(t, image.Rect(0, 0, 64, 64), pic.Bounds())
		}
		wantHeat, err := m.Heatmap(want)
		require.NoError(t, err)
		raw, _ := base64.StdEncoding.DecodeString(q.HeatmapPNG)
		heat, _ := png.Decode(bytes.NewReader(raw))
		require.Equal(t, wantHeat.At(10, 20), heat.At(10, 20))
	}
	// As curl --data-binary sends it, without a Content-Type of its own.
	code, _, b := call(t, "POST", ts.URL+"/v1/predict", "application/x-www-form-urlencoded", bytes.NewReader(f.good))
	require.Equal(t, http.StatusOK, code, "%s", b)

	// The defect scores above the normal image.
	require.Greater(t, predictOK(t, ts.URL, f.bad).Score, predictOK(t, ts.URL, f.good).Score)

	// The results are listed newest first, with thumbnails.
	code, _, b = call(t, "GET", ts.URL+"/v1/recent", "", nil)
	require.Equal(t, http.StatusOK, code)
	var recent struct{ Results []serve.Recent }
	require.NoError(t, json.Unmarshal(b, &recent))
	require.Len(t, recent.Results, 7)
	require.Greater(t, recent.Results[0].Seq, recent.Results[1].Seq)
	code, hdr, b := call(t, "GET", ts.URL+recent.Results[0].Thumbnail, "", nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Equal(t, "image/png", hdr.Get("Content-Type"))
	thumb, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, 160, thumb.Bounds().Dx())
	code, _, _ = call(t, "GET", ts.URL+"/v1/recent/999.png", "", nil)
	require.Equal(t, http.StatusNotFound, code)
}

// TestModelAndHealth checks /v1/model, /healthz, /readyz (not ready
// before Warm) and the page.
func TestModelAndHealth(t *testing.T) {
	f := needFixture(t)
	m, err := serve.Open(f.pathA, f.bb)
	require.NoError(t, err)
	s, err := serve.New(m, serve.Options{})
	require.NoError(t, err)
	defer s.Close()
	ts := httptest.NewServer(s)
	defer ts.Close()

	code, _, _ := call(t, "GET", ts.URL+"/healthz", "", nil)
	require.Equal(t, http.StatusOK, code)
	code, _, b := call(t, "GET", ts.URL+"/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	require.NoError(t, s.Warm(context.Background()))
	code, _, _ = call(t, "GET", ts.URL+"/readyz", "", nil)
	require.Equal(t, http.StatusOK, code)

	code, _, b = call(t, "GET", ts.URL+"/v1/model", "", nil)
	require.Equal(t, http.StatusOK, code)
	var info serve.ModelInfo
	require.NoError(t, json.Unmarshal(b, &info))
	id, err := serve.FileID(f.pathA)
	require.NoError(t, err)
	require.Len(t, id, 12)
	require.Equal(t, id, info.ID)
	require.Equal(t, "modelA.anm", info.Name)
	require.NotNil(t, info.Fitted)
	require.WithinDuration(t, time.Now(), *info.Fitted, time.Hour)
	require.Equal(t, f.bb.Name(), info.Backbone)
	require.Equal(t, f.bb.Fingerprint(), info.Fingerprint)
	require.Equal(t, 64, info.K)
	require.Equal(t, m.Calibration().ImageThreshold, info.Thresholds.Image)
	var cfg anomnet.Config
	require.NoError(t, json.Unmarshal(info.Config, &cfg))
	require.Equal(t, 64, cfg.Crop)

	code, hdr, b := call(t, "GET", ts.URL+"/", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, hdr.Get("Content-Type"), "text/html")
	page := string(b)
	require.Contains(t, page, `id="file"`)
	// No outside asset: nothing is fetched from another host.
	for _, attr := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "@import", "url(http"} {
		require.NotContains(t, page, attr)
	}
	code, _, _ = call(t, "GET", ts.URL+"/nothing-here", "", nil)
	require.Equal(t, http.StatusNotFound, code)
}

// TestBadRequests sends every kind of bad request: each gets a clear 4xx
// naming what is wrong, and the server goes on serving.
func TestBadRequests(t *testing.T) {
	f := needFixture(t)
	s, ts := start(t, f, f.pathA, serve.Options{MaxBodyBytes: 1 << 20})
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("note", "no file here")
	mw.Close()
	for _, tc := range []struct {
		name, method, ct, query string
		body                    []byte
		code                    int
		says                    string
	}{
		{"truncated", "POST", "image/png", "", f.good[:len(f.good)/2], 400, "cannot decode the png image"},
		{"not an image", "POST", "image/png", "", []byte("hello, this is text"), 400, "not an image"},
		{"wrong type", "POST", "text/plain", "", f.good, 415, "text/plain is not an image"},
		{"bad type", "POST", "image/png; =x", "", f.good, 415, "Content-Type"},
		{"oversized body", "POST", "image/png", "", bytes.Repeat([]byte{1}, 2<<20), 413, "larger than the limit of 1048576 bytes"},
		{"huge header", "POST", "image/png", "", testutil.PNGHeader(20000, 20000), 413, "20000 x 20000 pixels, over the limit"},
		{"empty", "POST", "image/png", "", nil, 400, "empty image"},
		{"empty, no type", "POST", "", "", nil, 400, "empty image"},
		{"form without a file", "POST", mw.FormDataContentType(), "", form.Bytes(), 400, "no file"},
		{"wrong method", "GET", "", "", nil, 405, "use POST"},
		{"map format", "POST", "image/png", "?map=jpeg", f.good, 400, "the only map format is png"},
	} {
		code, _, b := call(t, tc.method, ts.URL+"/v1/predict"+tc.query, tc.ct, bytes.NewReader(tc.body))
		require.Equal(t, tc.code, code, "%s: %s", tc.name, b)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal(b, &e), "%s: %s", tc.name, b)
		require.Contains(t, e.Error, tc.says, tc.name)
		// And the server goes on.
		predictOK(t, ts.URL, f.good)
	}
	// A truncated body (the client gives up half way) does not stop it.
	req, _ := http.NewRequest("POST", ts.URL+"/v1/predict", io.MultiReader(bytes.NewReader(f.good[:100]), errReader{}))
	req.ContentLength = int64(len(f.good))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	predictOK(t, ts.URL, f.good)
	_ = s
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestQueueAndTimeout holds the worker so that the queue fills: the
// request past it gets 503 with Retry-After, one past its deadline 504,
// and once the worker goes on the queued ones are answered.
func TestQueueAndTimeout(t *testing.T) {
	f := needFixture(t)
	s, ts := start(t, f, f.pathA, serve.Options{Queue: 2, MaxBatch: 1, Timeout: 5 * time.Second})
	release := s.Hold()
	codes := make(chan int, 3)
	send := func() {
		code, _, _ := call(t, "POST", ts.URL+"/v1/predict", "image/png", bytes.NewReader(f.good))
		codes <- code
	}
	go send() // taken by the worker, which then waits
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 0.0, metric(t, ts.URL, "anomnet_queue_depth"))
	go send()
	go send() // the queue's two places
	waitFor(t, func() bool { return metric(t, ts.URL, "anomnet_queue_depth") == 2 })
	code, hdr, b := call(t, "POST", ts.URL+"/v1/predict", "image/png", bytes.NewReader(f.good))
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	require.NotEmpty(t, hdr.Get("Retry-After"))
	require.Contains(t, string(b), "busy")
	release()
	for range 3 {
		require.Equal(t, http.StatusOK, <-codes)
	}

	s2, ts2 := start(t, f, f.pathA, serve.Options{Timeout: 300 * time.Millisecond})
	t0 := time.Now()
	rel := s2.Hold()
	code, _, b = call(t, "POST", ts2.URL+"/v1/predict", "image/png", bytes.NewReader(f.good))
	require.Equal(t, http.StatusGatewayTimeout, code, "%s", b)
	require.Contains(t, string(b), "timeout")
	require.Less(t, time.Since(t0), 3*time.Second)
	rel()
	predictOK(t, ts2.URL, f.good)
}

// metric returns the value of the unlabelled series name on /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	code, _, b := call(t, "GET", url+"/metrics", "", nil)
	require.Equal(t, http.StatusOK, code)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var x float64
			_, err := fmt.Sscan(v, &x)
			require.NoError(t, err, line)
			return x
		}
	}
	t.Fatalf("no series %s on /metrics", name)
	return 0
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out waiting")
}

// TestAuthAndMetrics: with a token, the API and /metrics need it, the
// health checks and the page do not; /metrics counts what happened.
func TestAuthAndMetrics(t *testing.T) {
	f := needFixture(t)
	_, ts := start(t, f, f.pathA, serve.Options{Token: "s3cret"})
	bearer := []string{"Authorization", "Bearer s3cret"}
	for _, path := range []string{"/v1/model", "/v1/recent", "/metrics"} {
		code, hdr, b := call(t, "GET", ts.URL+path, "", nil)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", path, b)
		require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
		code, _, _ = call(t, "GET", ts.URL+path, "", nil, "Authorization", "Bearer wrong")
		require.Equal(t, http.StatusUnauthorized, code, path)
		code, _, _ = call(t, "GET", ts.URL+path, "", nil, bearer...)
		require.Equal(t, http.StatusOK, code, path)
	}
	code, _, _ := call(t, "POST", ts.URL+"/v1/predict", "image/png", bytes.NewReader(f.good))
	require.Equal(t, http.StatusUnauthorized, code)
	for _, path := range []string{"/healthz", "/readyz", "/"} {
		code, _, _ := call(t, "GET", ts.URL+path, "", nil)
		require.Equal(t, http.StatusOK, code, path)
	}
	for range 3 {
		code, _, b := call(t, "POST", ts.URL+"/v1/predict", "image/png", bytes.NewReader(f.good), bearer...)
		require.Equal(t, http.StatusOK, code, "%s", b)
	}
	call(t, "POST", ts.URL+"/v1/predict", "text/plain", strings.NewReader("x"), bearer...)

	code, _, b := call(t, "GET", ts.URL+"/metrics", "", nil, bearer...)
	require.Equal(t, http.StatusOK, code)
	text := string(b)
	for _, want := range []string{
		`anomnet_http_requests_total{code="200",handler="predict"} 3`,
		`anomnet_http_requests_total{code="401",handler="predict"} 1`,
		`anomnet_http_requests_total{code="415",handler="predict"} 1`,
		`anomnet_http_request_duration_seconds_count{handler="predict"} 5`,
		`anomnet_images_total{decision=`,
		`anomnet_rejected_total{reason="unauthorized"}`,
		`anomnet_rejected_total{reason="wrong_type"} 1`,
		"anomnet_batch_images_count 3", // the requests' batches, not the warm-up
		"anomnet_queue_depth 0",
		"anomnet_images_per_second ",
		"anomnet_ready 1",
		`anomnet_model_info{id="`,
		"go_goroutines ",
	} {
		require.True(t, strings.Contains(text, want), "/metrics has no %q", want)
	}
}

// loadDuration is how long TestLoadAndReload drives the server:
// $ANOMNET_LOAD_SECONDS, else 30 s (3 s with -short).
func loadDuration(t *testing.T) time.Duration {
	if v := os.Getenv("ANOMNET_LOAD_SECONDS"); v != "" {
		s, err := time.ParseDuration(v + "s")
		require.NoError(t, err, "$ANOMNET_LOAD_SECONDS")
		return s
	}
	if testing.Short() {
		return 3 * time.Second
	}
	return 30 * time.Second
}

// TestLoadAndReload drives the server with 16 clients on loopback while
// the model is reloaded from its file every second, alternating between
// two models, and once from a corrupt file, which is refused: every
// request gets 200 or an intentional 503, none is lost.
func TestLoadAndReload(t *testing.T) {
	f := needFixture(t)
	s, ts := start(t, f, f.pathA, serve.Options{})
	bad := filepath.Join(t.TempDir(), "corrupt.anm")
	data, err := os.ReadFile(f.pathB)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff // the checksum no longer matches
	require.NoError(t, os.WriteFile(bad, data, 0o644))
	idA, idB := s.Model().ID, ""

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var swaps, refused int
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		paths := []string{f.pathB, f.pathA}
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			if i == 2 {
				before := s.Model().ID
				_, err := s.ReloadFile(ctx, bad, f.bb)
				if err != nil && s.Model().ID == before {
					refused++
				}
				continue
			}
			m, err := s.ReloadFile(ctx, paths[i%2], f.bb)
			if err == nil {
				swaps++
				if m.ID != idA {
					idB = m.ID
				}
			}
		}
	}()
	res := serve.Load(context.Background(), nil, ts.URL+"/v1/predict", [][]byte{f.good, f.bad}, "image/png", 16, loadDuration(t))
	cancel()
	<-reloaded
	t.Log(res)
	require.Zero(t, res.Failed, "failed requests: %v", res.Errors)
	require.Equal(t, res.Requests, res.OK+res.Busy)
	require.Positive(t, res.OK)
	require.Positive(t, swaps, "no reload happened")
	require.Equal(t, 1, refused, "the corrupt file must be refused, the old model kept")
	require.NotEmpty(t, idB)
	require.NotEqual(t, idA, idB)
	// Still serving, on one of the two models.
	p := predictOK(t, ts.URL, f.good)
	require.Contains(t, []string{idA, idB}, p.Model.ID)
}

// TestDrain: a request in flight when the http.Server shuts down is still
// answered; after Close, a new image gets 503.
func TestDrain(t *testing.T) {
	f := needFixture(t)
	m, err := serve.Open(f.pathA, f.bb)
	require.NoError(t, err)
	s, err := serve.New(m, serve.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Warm(context.Background()))
	ts := httptest.NewUnstartedServer(s)
	ts.Start()
	release := s.Hold()
	got := make(chan int, 1)
	go func() {
		code, _, _ := call(t, "POST", ts.URL+"/v1/predict", "image/png", bytes.NewReader(f.good))
		got <- code
	}()
	time.Sleep(300 * time.Millisecond) // the request is with the worker
	shut := make(chan error, 1)
	go func() { shut <- ts.Config.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-shut:
		t.Fatal("Shutdown returned with a request in flight")
	default:
	}
	release()
	require.Equal(t, http.StatusOK, <-got)
	require.NoError(t, <-shut)
	s.Close()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/predict", bytes.NewReader(f.good)))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "shutting down")
}

// TestSwapWhileQueued: an image prepared for the model served when it
// came is scored by the one served when its batch runs, another input
// size included.
func TestSwapWhileQueued(t *testing.T) {
	f := needFixture(t)
	s, ts := start(t, f, f.pathA, serve.Options{})
	release := s.Hold()
	got := make(chan serve.Prediction, 1)
	go func() { got <- predictOK(t, ts.URL, f.bad) }()
	time.Sleep(300 * time.Millisecond)
	m, err := serve.Open(f.pathC, f.bb)
	require.NoError(t, err)
	require.NoError(t, s.Swap(m))
	release()
	p := <-got
	require.Equal(t, m.ID, p.Model.ID)
	require.Equal(t, serve.Size{Width: 48, Height: 48}, p.Map)
	img, err := png.Decode(bytes.NewReader(f.bad))
	require.NoError(t, err)
	want, err := m.Predict(img)
	require.NoError(t, err)
	require.InDelta(t, want.Score, p.Score, 1e-6*max(1, want.Score))
}

// TestTileModel serves a model of the tiled input: the image goes to it as
// decoded, the map has the image's own size, and the thumbnail is drawn.
func TestTileModel(t *testing.T) {
	f := needFixture(t)
	s, ts := start(t, f, f.pathT, serve.Options{})
	require.Equal(t, anomnet.InputTile, s.Model().Config().Input)
	code, _, b := call(t, "POST", ts.URL+"/v1/predict?map=png", "image/png", bytes.NewReader(f.bad))
	require.Equal(t, http.StatusOK, code, "%s", b)
	var p serve.Prediction
	require.NoError(t, json.Unmarshal(b, &p))
	require.Equal(t, serve.Size{Width: 128, Height: 128}, p.Map)
	img, err := png.Decode(bytes.NewReader(f.bad))
	require.NoError(t, err)
	want, err := s.Model().Predict(img)
	require.NoError(t, err)
	require.InDelta(t, want.Score, p.Score, 1e-6*max(1, want.Score))
	code, _, _ = call(t, "GET", ts.URL+"/v1/recent/1.png", "", nil)
	require.Equal(t, http.StatusOK, code)
}
