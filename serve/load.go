package serve

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// LoadResult is what Load measured.
type LoadResult struct {
	Clients  int
	Elapsed  time.Duration
	Requests int
	// OK counts the 200 answers, Busy the 503s (the queue full or the
	// server shutting down: refusals by design), Failed everything else,
	// transport errors included; Errors keeps the first few of those.
	OK, Busy, Failed int
	Errors           []string
	// P50, P99 and Max are the latencies of the 200 answers.
	P50, P99, Max time.Duration
	// PerSecond is the 200 answers per second.
	PerSecond float64
}

// String is the result on one line.
func (r LoadResult) String() string {
	return fmt.Sprintf("%d clients for %.1f s: %d requests, %d ok (%.2f images/s), %d busy (503), %d failed; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		r.Clients, r.Elapsed.Seconds(), r.Requests, r.OK, r.PerSecond, r.Busy, r.Failed,
		ms(r.P50), ms(r.P99), ms(r.Max))
}

func ms(d time.Duration) float64 { return d.Seconds() * 1e3 }

// Load posts images to url (a server's /v1/predict) from clients
// goroutines, each sending the next of bodies (raw image bytes of type
// contentType; "": each body's type as http.DetectContentType tells it)
// as soon as its last answer came, for d or until ctx ends, and returns
// what it measured. Every request that started is waited for. A nil client
// keeps a connection open per client.
func Load(ctx context.Context, client *http.Client, url string, bodies [][]byte, contentType string, clients int, d time.Duration) LoadResult {
	if client == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: max(2, clients)}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	res := LoadResult{Clients: clients}
	if len(bodies) == 0 || clients < 1 {
		return res
	}
	var mu sync.Mutex
	var lat []time.Duration
	end := time.Now().Add(d)
	t0 := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; time.Now().Before(end) && ctx.Err() == nil; i += clients {
				body := bodies[i%len(bodies)]
				start := time.Now()
				code, err := post(ctx, client, url, body, contentType)
				took := time.Since(start)
				mu.Lock()
				res.Requests++
				switch {
				case err != nil && ctx.Err() != nil:
					res.Requests-- // stopped by the caller, not a failure
				case err != nil:
					res.Failed++
					if len(res.Errors) < 5 {
						res.Errors = append(res.Errors, err.Error())
					}
				case code == http.StatusOK:
					res.OK++
					lat = append(lat, took)
				case code == http.StatusServiceUnavailable:
					res.Busy++
				default:
					res.Failed++
					if len(res.Errors) < 5 {
						res.Errors = append(res.Errors, fmt.Sprintf("status %d", code))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(t0)
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.P50, res.P99, res.Max = lat[(n-1)/2], lat[min(n-1, n*99/100)], lat[n-1]
	}
	res.PerSecond = float64(res.OK) / res.Elapsed.Seconds()
	return res
}

// post sends one image and reads the whole answer.
func post(ctx context.Context, client *http.Client, url string, body []byte, contentType string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if contentType == "" {
		contentType = http.DetectContentType(body)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
