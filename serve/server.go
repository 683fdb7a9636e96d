package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "image/jpeg" // the decoders a request's image may need
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
)

// Model is a fitted model as the server serves it, with what identifies it
// in answers, the page and the metrics.
type Model struct {
	*anomnet.Model
	// ID identifies the model's contents: by convention the first 12 hex
	// digits of its file's SHA-256 checksum (FileID).
	ID string
	// Name is what the page shows: by convention the file's base name.
	Name string
	// Path is the file it was loaded from ("" if none).
	Path string
	// Loaded is when it was loaded.
	Loaded time.Time
}

// Options configures a Server; zero fields take the defaults named.
type Options struct {
	// MaxBodyBytes caps a request's body (default 32 MiB): 413 beyond.
	MaxBodyBytes int64
	// MaxPixels caps an image's width times height, read from its header
	// before any pixel is decoded (default: the model's Config.MaxPixels):
	// 413 beyond.
	MaxPixels int
	// Queue is how many images may wait to be scored (default 64): a
	// request that finds it full gets 503 with Retry-After.
	Queue int
	// Timeout is each request's deadline, waiting included (default 30 s):
	// 504 past it.
	Timeout time.Duration
	// MaxBatch is the most images scored in one PredictBatch (default the
	// model's Config.BackboneBatch).
	MaxBatch int
	// BatchWait is how long the worker waits for more images once it has
	// one, before it scores a batch smaller than MaxBatch (default 0: it
	// takes whatever is waiting, so that a lone request waits for nobody;
	// under load, batches fill while the one before computes).
	BatchWait time.Duration
	// History is how many results /v1/recent keeps (default 24).
	History int
	// Token, when set, must come as "Authorization: Bearer TOKEN" on every
	// endpoint but /healthz, /readyz and the page.
	Token string
	// Log receives one line per request and per model change (default:
	// none).
	Log *slog.Logger
}

func (o Options) withDefaults(m Model) Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = m.Config().MaxPixels
		if o.MaxPixels <= 0 {
			o.MaxPixels = dataset.DefaultMaxPixels
		}
	}
	if o.Queue <= 0 {
		o.Queue = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = max(1, m.Config().BackboneBatch)
	}
	if o.History <= 0 {
		o.History = 24
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Server is the inspection service. Create it with New, put Handler (or
// the Server itself) behind an http.Server, call Warm before traffic, and
// Close after the http.Server's Shutdown.
type Server struct {
	opts    Options
	model   atomic.Pointer[Model]
	ready   atomic.Bool
	queue   chan *job
	waiting atomic.Int64 // images queued, not yet taken by the worker
	metrics *metrics
	recent  *history
	mux     *http.ServeMux
	stop    chan struct{}
	done    chan struct{}
	close   sync.Once
	reload  sync.Mutex // one ReloadFile at a time
	// hold, when set (tests only), is waited on before each batch.
	hold atomic.Pointer[chan struct{}]
}

// New returns a Server for m (fitted) and starts its worker.
func New(m Model, opts Options) (*Server, error) {
	if err := checkFitted(m); err != nil {
		return nil, err
	}
	opts = opts.withDefaults(m)
	s := &Server{
		opts:   opts,
		queue:  make(chan *job, opts.Queue),
		recent: newHistory(opts.History),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.metrics = newMetrics(s)
	s.model.Store(&m)
	s.metrics.setModel(m)
	s.routes()
	go s.run()
	return s, nil
}

// checkFitted refuses a missing model or one that cannot predict.
func checkFitted(m Model) error {
	if m.Model == nil {
		return errors.New("serve: no model")
	}
	if m.Centroids() == nil {
		return fmt.Errorf("serve: model %s: %w", m.Name, anomnet.ErrNotFitted)
	}
	return nil
}

// Model returns the model being served.
func (s *Server) Model() Model { return *s.model.Load() }

// Swap serves m from now on: requests already being scored finish on the
// model they started with. Warm m first (WarmModel) so that its first
// requests do not pay for it.
func (s *Server) Swap(m Model) error {
	if err := checkFitted(m); err != nil {
		return err
	}
	old := s.model.Swap(&m)
	s.metrics.setModel(m)
	s.opts.Log.Info("model swapped", "id", m.ID, "name", m.Name, "old_id", old.ID)
	return nil
}

// Open loads the model file at path for backbone bb, named by its base
// name and identified by its checksum (FileID).
func Open(path string, bb anomnet.Backbone) (Model, error) {
	id, err := FileID(path)
	if err != nil {
		return Model{}, err
	}
	m, err := anomnet.LoadFile(path, bb)
	if err != nil {
		return Model{}, err
	}
	// The checksum read before the load is the loaded file's, unless the
	// file was replaced meanwhile: read it again to be sure.
	if again, err := FileID(path); err != nil || again != id {
		return Model{}, fmt.Errorf("%s changed while it was loaded; try again", path)
	}
	return Model{Model: m, ID: id, Name: filepath.Base(path), Path: path, Loaded: time.Now().UTC()}, nil
}

// FileID returns the first 12 hex digits of the SHA-256 checksum that ends
// a model file (anomnet.Model.Save): it identifies the file's contents
// without reading all of it.
func FileID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if fi.Size() < sha256.Size {
		return "", fmt.Errorf("%s: %w (%d bytes)", path, anomnet.ErrCorrupt, fi.Size())
	}
	sum := make([]byte, sha256.Size)
	if _, err := f.ReadAt(sum, fi.Size()-sha256.Size); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(sum)[:12], nil
}

// ReloadFile loads the model file at path for bb, warms it and serves it
// (Swap). On any error the model served stays as it was.
func (s *Server) ReloadFile(ctx context.Context, path string, bb anomnet.Backbone) (Model, error) {
	return s.Reload(ctx, func() (Model, error) { return Open(path, bb) })
}

// Reload serves the model that open returns, once warmed (one reload at a
// time). On any error the model served stays as it was, and the error is
// returned with it.
func (s *Server) Reload(ctx context.Context, open func() (Model, error)) (Model, error) {
	s.reload.Lock()
	defer s.reload.Unlock()
	m, err := open()
	if err == nil {
		err = WarmModel(ctx, m)
	}
	if err == nil {
		err = s.Swap(m)
	}
	if err != nil {
		s.opts.Log.Error("reload refused; the old model keeps serving", "err", err, "id", s.Model().ID)
		return s.Model(), err
	}
	return m, nil
}

// Warm scores one blank image with the served model, so that the first
// request does not pay for the first pass's allocations, and then reports
// ready (/readyz).
func (s *Server) Warm(ctx context.Context) error {
	if err := WarmModel(ctx, s.Model()); err != nil {
		return err
	}
	s.ready.Store(true)
	return nil
}

// WarmModel scores one mid-grey image of the model's input size (its crop,
// frame or tile) with m.
func WarmModel(ctx context.Context, m Model) error {
	w, h := m.Config().InputSize()
	img := image.NewUniform(color.Gray{128})
	_, err := m.PredictBatch(ctx, []image.Image{subImage{img, image.Rect(0, 0, w, h)}})
	if err != nil {
		return fmt.Errorf("serve: warming model %s: %w", m.Name, err)
	}
	return nil
}

// subImage is an image.Uniform cut to bounds.
type subImage struct {
	*image.Uniform
	r image.Rectangle
}

func (s subImage) Bounds() image.Rectangle { return s.r }

// Ready reports whether Warm has run.
func (s *Server) Ready() bool { return s.ready.Load() }

// Close stops the worker: images still waiting get 503. Call it after the
// http.Server's Shutdown has drained the requests in flight.
func (s *Server) Close() {
	s.close.Do(func() { close(s.stop) })
	<-s.done
}

// ServeHTTP serves the API and the page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// job is one image on its way through the queue.
type job struct {
	ctx context.Context
	// img is the image as decoded, prepared the image preprocessed for
	// the model for (nil: none), which the worker takes when that model
	// is still the one served.
	img      image.Image
	prepared image.Image
	forModel *Model
	queued   time.Time
	done     chan outcome // buffered: the worker never blocks on it
}

// outcome is a job's result, with the model that scored it and the image
// it scored (prepared, or as decoded).
type outcome struct {
	res     anomnet.Result
	err     error
	model   *Model
	img     image.Image
	batch   int           // images in its batch
	wait    time.Duration // in the queue
	predict time.Duration // its batch's PredictBatch
}

// errQueueFull and errClosed are submit's refusals.
var (
	errQueueFull = errors.New("the queue is full")
	errClosed    = errors.New("the server is shutting down")
)

// submit queues img (and its preparation for model forModel, if not nil)
// and waits for its outcome or ctx's end.
func (s *Server) submit(ctx context.Context, img, prepared image.Image, forModel *Model) (outcome, error) {
	j := &job{ctx: ctx, img: img, prepared: prepared, forModel: forModel, queued: time.Now(), done: make(chan outcome, 1)}
	select {
	case <-s.stop:
		return outcome{}, errClosed
	default:
	}
	s.waiting.Add(1) // before the worker can take it and count it out
	select {
	case s.queue <- j:
	default:
		s.waiting.Add(-1)
		return outcome{}, errQueueFull
	}
	select {
	case o := <-j.done:
		return o, o.err
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	}
}

// run is the worker: it takes every image waiting, up to MaxBatch, scores
// them in one PredictBatch, and answers each.
func (s *Server) run() {
	defer close(s.done)
	batch := make([]*job, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case <-s.stop:
			s.drain()
			return
		case j := <-s.queue:
			batch = append(batch, s.took(j))
		}
		if s.opts.BatchWait > 0 {
			t := time.NewTimer(s.opts.BatchWait)
		wait:
			for len(batch) < s.opts.MaxBatch {
				select {
				case j := <-s.queue:
					batch = append(batch, s.took(j))
				case <-t.C:
					break wait
				}
			}
			t.Stop()
		}
	more:
		for len(batch) < s.opts.MaxBatch {
			select {
			case j := <-s.queue:
				batch = append(batch, s.took(j))
			default:
				break more
			}
		}
		if h := s.hold.Load(); h != nil {
			<-*h
		}
		s.score(batch)
	}
}

// took counts j out of the queue.
func (s *Server) took(j *job) *job {
	s.waiting.Add(-1)
	return j
}

// drain answers every image still queued with errClosed.
func (s *Server) drain() {
	for {
		select {
		case j := <-s.queue:
			s.took(j).done <- outcome{err: errClosed}
		default:
			return
		}
	}
}

// score predicts a batch, leaving out the jobs whose requests are gone.
// Should the batch fail, each image is scored alone, so that one bad image
// fails only its own request.
func (s *Server) score(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if j.ctx.Err() != nil {
			j.done <- outcome{err: j.ctx.Err()}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	m := s.model.Load()
	imgs := make([]image.Image, len(live))
	for i, j := range live {
		imgs[i] = j.img
		if j.prepared != nil && j.forModel == m {
			imgs[i] = j.prepared // else prepared for a model swapped out since
		}
	}
	s.metrics.inflight.Set(float64(len(live)))
	defer s.metrics.inflight.Set(0)
	t0 := time.Now()
	res, err := m.PredictBatch(context.Background(), imgs)
	took := time.Since(t0)
	s.metrics.batch(len(live), took)
	if err != nil && len(live) > 1 {
		for _, j := range live {
			s.score([]*job{j})
		}
		return
	}
	for i, j := range live {
		o := outcome{err: err, model: m, img: imgs[i], batch: len(live), wait: t0.Sub(j.queued), predict: took}
		if err == nil {
			o.res = res[i]
		}
		j.done <- o
	}
}
