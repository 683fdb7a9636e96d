package serve

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, in a registry of its own
// (with the Go runtime's and the process's), so that two Servers in one
// process do not collide.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // by handler and status code
	latency   *prometheus.HistogramVec // by handler
	images    *prometheus.CounterVec   // scored, by decision
	rejected  *prometheus.CounterVec   // by reason
	batches   prometheus.Histogram     // images per batch
	predict   prometheus.Histogram     // seconds per batch
	inflight  prometheus.Gauge
	modelInfo *prometheus.GaugeVec

	mu   sync.Mutex
	done []stamp // recent batches, for images per second
}

// stamp is a batch's end and size.
type stamp struct {
	t time.Time
	n int
}

// rateWindow is the span over which images per second are measured.
const rateWindow = 10 * time.Second

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anomnet_http_requests_total", Help: "HTTP requests by handler and status code.",
	}, []string{"handler", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "anomnet_http_request_duration_seconds", Help: "HTTP request latency by handler, queueing included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"handler"})
	m.images = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anomnet_images_total", Help: "Images scored, by decision (pass or fail).",
	}, []string{"decision"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "anomnet_rejected_total", Help: "Requests refused, by reason.",
	}, []string{"reason"})
	m.batches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "anomnet_batch_images", Help: "Images per PredictBatch.", Buckets: prometheus.LinearBuckets(1, 1, 16),
	})
	m.predict = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "anomnet_predict_seconds", Help: "Seconds per PredictBatch.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "anomnet_images_scoring", Help: "Images in the batch being scored."})
	m.modelInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "anomnet_model_info", Help: "The model served (1), by id and name.",
	}, []string{"id", "name"})
	m.reg.MustRegister(m.requests, m.latency, m.images, m.rejected, m.batches, m.predict, m.inflight, m.modelInfo,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "anomnet_queue_depth", Help: "Images waiting to be scored."},
			func() float64 { return float64(s.waiting.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "anomnet_images_per_second", Help: "Images scored per second over the last 10 s."},
			m.rate),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "anomnet_ready", Help: "1 once the model is loaded and warmed."},
			func() float64 {
				if s.Ready() {
					return 1
				}
				return 0
			}),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setModel makes m the model of anomnet_model_info.
func (m *metrics) setModel(model Model) {
	m.modelInfo.Reset()
	m.modelInfo.WithLabelValues(model.ID, model.Name).Set(1)
}

// batch records a PredictBatch of n images that took d.
func (m *metrics) batch(n int, d time.Duration) {
	m.batches.Observe(float64(n))
	m.predict.Observe(d.Seconds())
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	m.done = append(m.done, stamp{now, n})
	m.trim(now)
}

// trim drops the batches older than rateWindow; m.mu is held.
func (m *metrics) trim(now time.Time) {
	i := 0
	for i < len(m.done) && now.Sub(m.done[i].t) > rateWindow {
		i++
	}
	m.done = append(m.done[:0], m.done[i:]...)
}

// rate is the images scored per second over the last rateWindow.
func (m *metrics) rate() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trim(time.Now())
	n := 0
	for _, b := range m.done {
		n += b.n
	}
	return float64(n) / rateWindow.Seconds()
}

// handler returns the /metrics handler.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument counts h's requests by status code and times them, as name.
func (m *metrics) instrument(name string, h http.HandlerFunc) http.HandlerFunc {
	lat := m.latency.WithLabelValues(name)
	return func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		lat.Observe(time.Since(t0).Seconds())
		m.requests.WithLabelValues(name, strconv.Itoa(sw.code)).Inc()
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
