package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitText polls buf for a match of re for up to 60 s and returns it.
func waitText(t *testing.T, buf *syncBuffer, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if m := rx.FindStringSubmatch(buf.String()); m != nil {
			return m
		}
	}
	t.Fatalf("no %q in the output:\n%s", re, buf.String())
	return nil
}

// TestServe runs the serve command: it answers with the token only,
// refuses a corrupt file on SIGHUP and keeps serving, reloads a new one
// on the next SIGHUP, and on SIGTERM drains and exits 0.
func TestServe(t *testing.T) {
	needWeights(t)
	shareBackbone(t)
	root := t.TempDir()
	cat := makeCategory(t, root)
	model, other := filepath.Join(root, "m.anm"), filepath.Join(root, "other.anm")
	for i, out := range []string{model, other} {
		code, _, errOut := runCLI(t, "fit", "-o", out, "-input", "crop", "-k", []string{"8", "4"}[i], cat)
		require.Equal(t, 0, code, errOut)
	}
	tokenFile := filepath.Join(root, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("tok-123\n"), 0o600))

	var stderr syncBuffer
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"serve", "-addr", "127.0.0.1:0", "-token-file", tokenFile, model}, &stdout, &stderr)
	}()
	addr := waitText(t, &stderr, `on http://([0-9.:]+)/`)[1]
	url := "http://" + addr
	img, err := os.ReadFile(filepath.Join(cat, "test/crack/000.png"))
	require.NoError(t, err)
	post := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", url+"/v1/predict", bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/png")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	code, body := post("tok-123")
	require.Equal(t, http.StatusOK, code, "%v", body)
	require.Contains(t, body, "score")
	id := body["model"].(map[string]any)["id"].(string)
	code, _ = post("")
	require.Equal(t, http.StatusUnauthorized, code)
	resp, err := http.Get(url + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A corrupt file is refused; the model keeps serving.
	good, err := os.ReadFile(model)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(model, good[:len(good)/2], 0o644))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitText(t, &stderr, `reload refused, model `+id+` keeps serving`)
	code, body = post("tok-123")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, id, body["model"].(map[string]any)["id"])

	// A new file is taken.
	require.NoError(t, os.Rename(other, model))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	newID := waitText(t, &stderr, `now serving id ([0-9a-f]+)`)[1]
	require.NotEqual(t, id, newID)
	code, body = post("tok-123")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, newID, body["model"].(map[string]any)["id"])

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	require.Contains(t, stderr.String(), "shutting down")
}

// TestServeBadInput: the failures before any work, each naming its cause.
func TestServeBadInput(t *testing.T) {
	forbidBackbone(t)
	root := t.TempDir()
	empty := filepath.Join(root, "empty-token")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	model := filepath.Join(root, "m.anm")
	require.NoError(t, os.WriteFile(model, []byte("x"), 0o644))
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"serve", filepath.Join(root, "missing.anm")}, 1, "missing.anm"},
		{[]string{"serve", "-false-alarms", "2", model}, 2, "-false-alarms"},
		{[]string{"serve", "-queue", "0", model}, 2, "-queue"},
		{[]string{"serve", "-token-file", empty, model}, 1, "one token"},
		{[]string{"serve", "-token-file", filepath.Join(root, "nope"), model}, 1, "nope"},
		{[]string{"serve", "-addr", "256.1.1.1:99999", model}, 1, "cannot listen on 256.1.1.1:99999"},
		{[]string{"serve"}, 2, "MODEL"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errOut)
		require.True(t, strings.Contains(errOut, tc.says), "%v: %q does not say %q", tc.args, errOut, tc.says)
	}
}
