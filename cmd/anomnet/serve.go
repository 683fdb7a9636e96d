package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/org/anomnet/serve"
)

// serveCmd runs the inspection service until SIGTERM or an interrupt;
// SIGHUP reloads the model file.
func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "MODEL",
		"Serves MODEL over HTTP: POST an image to /v1/predict and get its score and verdict as JSON\n"+
			"(?map=png adds the heatmap and overlay); /v1/model describes the model, /metrics is for\n"+
			"Prometheus, /healthz and /readyz for the orchestrator, and / is a page for the operator.\n"+
			"Concurrent requests share batches. SIGHUP reloads MODEL from its file (a bad file is refused\n"+
			"and the old model keeps serving); SIGTERM or an interrupt drains the requests in flight and\n"+
			"stops. It prints one line when it is ready, then one line per request.")
	addr := fs.String("addr", "127.0.0.1:8080", "the address to listen on, host:port (127.0.0.1: this machine only; :8080 for every interface)")
	tokenFile := fs.String("token-file", "", "a file holding a bearer token that every endpoint but /healthz, /readyz and the page then requires")
	maxBody := fs.Int64("max-body", 32<<20, "the largest request body, in bytes (413 beyond)")
	maxPixels := fs.Int("max-pixels", 0, "the largest image, width x height, read from its header (413 beyond; 0: the model's cap)")
	queue := fs.Int("queue", 64, "images that may wait to be scored (503 with Retry-After beyond)")
	timeout := fs.Duration("timeout", 30*time.Second, "each request's deadline, waiting included (504 beyond)")
	batch := fs.Int("batch", 0, "the most images scored at once (0: the model's backbone batch)")
	batchWait := fs.Duration("batch-wait", 0, "how long a lone image waits for others to share its batch (0: none)")
	history := fs.Int("history", 24, "results that /v1/recent and the page's strip keep")
	drain := fs.Duration("drain", 30*time.Second, "on SIGTERM, how long the requests in flight may take to finish")
	rate := fs.rateFlag()
	quiet := fs.Bool("quiet", false, "no line per request")
	cache := fs.cacheFlag()
	pos, err := fs.parse(args, 1, stdout)
	if err != nil {
		return err
	}
	if err := checkRate("serve", *rate); err != nil {
		return err
	}
	if *queue < 1 || *history < 1 || *maxBody < 1 || *timeout <= 0 || *batch < 0 || *maxPixels < 0 {
		return usageError{msg: "serve: -queue, -history, -max-body and -timeout must be positive, -batch and -max-pixels at least 0"}
	}
	modelPath := pos[0]
	if _, err := os.Stat(modelPath); err != nil {
		return err
	}
	token := ""
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return err
		}
		if token = strings.TrimSpace(string(b)); token == "" || strings.ContainsAny(token, " \t\r\n") {
			return fmt.Errorf("%s: the token file must hold one token, without spaces", *tokenFile)
		}
	}
	// Listening comes first: a taken port fails before the model loads.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *addr, err)
	}
	defer ln.Close()
	bb, err := loadBackbone(ctx, *cache, stderr)
	if err != nil {
		return err
	}
	open := func(path string) (serve.Model, error) {
		m, err := serve.Open(path, bb)
		if err == nil && *rate > 0 {
			if _, err = m.SetFalseAlarmRate(*rate); err != nil {
				err = fmt.Errorf("%s: %w", path, err)
			}
		}
		return m, err
	}
	m, err := open(modelPath)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if *quiet {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := serve.New(m, serve.Options{
		MaxBodyBytes: *maxBody, MaxPixels: *maxPixels, Queue: *queue, Timeout: *timeout,
		MaxBatch: *batch, BatchWait: *batchWait, History: *history, Token: token, Log: logger,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	// A body must arrive within the request's deadline; an answer may take
	// that long and then some to write.
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: *timeout,
		WriteTimeout: *timeout + 30*time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if err := s.Warm(ctx); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	cal := m.Calibration()
	fmt.Fprintf(stderr, "serving %s (id %s, image threshold %.4g) on http://%s/ ; POST images to /v1/predict\n",
		m.Name, m.ID, cal.ImageThreshold, ln.Addr())
	reloads := make(chan struct{}, 1)
	for {
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
			return shutdown(srv, s, *drain, stderr)
		case sig := <-sigs:
			if sig == syscall.SIGTERM {
				return shutdown(srv, s, *drain, stderr)
			}
			select {
			case reloads <- struct{}{}: // one reload at a time; a SIGHUP during one is folded into it
				go func() {
					defer func() { <-reloads }()
					nm, err := s.Reload(ctx, func() (serve.Model, error) { return open(modelPath) })
					if err != nil {
						fmt.Fprintf(stderr, "reload refused, model %s keeps serving: %v\n", nm.ID, err)
						return
					}
					fmt.Fprintf(stderr, "reloaded %s: now serving id %s\n", modelPath, nm.ID)
				}()
			default:
			}
		}
	}
}

// shutdown stops accepting requests, lets those in flight finish within
// drain, then stops the scoring worker.
func shutdown(srv *http.Server, s *serve.Server, drain time.Duration, stderr io.Writer) error {
	fmt.Fprintln(stderr, "shutting down: draining the requests in flight")
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := srv.Shutdown(ctx)
	s.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("requests still in flight after -drain %s were cut off", drain)
	}
	return err
}
