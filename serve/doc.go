// Package serve is anomnet's inspection service: an http.Handler that
// scores the images a production line sends, with a web page for the
// operator, on net/http alone.
//
// The API:
//
//	POST /v1/predict      the image as the body (image/png, image/jpeg, ...), or as a multipart file;
//	                      JSON: score, normalised score, decision, thresholds, model, timing.
//	                      ?map=png adds the heatmap and the overlay as base64 PNGs.
//	GET  /v1/model        the model: id, file, fit date, backbone and fingerprint, thresholds, config
//	GET  /v1/recent       the last results, newest first; /v1/recent/SEQ.png an overlay's thumbnail
//	GET  /healthz         200 while the process runs
//	GET  /readyz          200 once a model is loaded and warmed, 503 before
//	GET  /metrics         Prometheus text format
//	GET  /                the operator's page (embedded: no outside asset)
//
// Images wait in a bounded queue (full: 503 with Retry-After) and are
// scored by one worker that takes every image waiting at once, up to a
// batch, so that concurrent requests share the backbone's batches. Each
// request has a deadline (504 past it), a body limit (413) and a pixel
// cap read from the image's header before it is decoded (413). Swap
// replaces the model atomically; requests in flight finish on the model
// they started with. With Options.Token set, every endpoint but the
// health checks and the page itself needs "Authorization: Bearer TOKEN"
// (the page asks for the token when the API refuses it).
//
// The command `anomnet serve MODEL` runs it; Load drives it with
// concurrent clients, for tests and `anomnet bench serve`.
package serve
