package anomnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// settledGoroutines waits up to two seconds for the goroutine count to fall
// to at most want (goroutines that were told to stop need a moment to
// return) and returns the last count.
func settledGoroutines(want int) int {
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(2 * time.Second); n > want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// stableGoroutines is the goroutine count once it has held for 50 ms.
func stableGoroutines() int {
	n := runtime.NumGoroutine()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			break
		}
		n = m
	}
	return n
}

// goroutineStacks is every goroutine's stack, for a failure message.
func goroutineStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// TestFitCancelMidway cancels Fit at each stage (from the progress callback)
// and after several delays (from another goroutine). Fit must return
// context.Canceled promptly, leave no goroutine behind, and leave a model
// that was fitted before exactly as it was.
func TestFitCancelMidway(t *testing.T) {
	s := makeSynth(21, 16, 2, 0)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	m := fitTiny(t, cfg, s)
	before, err := m.Predict(s.test[0])
	require.NoError(t, err)

	type point struct {
		name  string
		stage Stage         // cancel on the first progress report of this stage
		after time.Duration // or this long after Fit starts
	}
	points := []point{{"features", "features", 0}, {"init", "init", 0}, {"stage1", "stage1", 0},
		{"stage2", "stage2", 0}, {"calibrate", "calibrate", 0}}
	for _, d := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		points = append(points, point{name: fmt.Sprintf("after %v", d), after: d})
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			base := stableGoroutines()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cancelled atomic.Int64 // UnixNano of the cancel
			stop := func() {
				if cancelled.CompareAndSwap(0, time.Now().UnixNano()) {
					cancel()
				}
			}
			c := cfg
			c.Epochs1, c.Epochs2 = 50, 50 // long enough to be interrupted
			c.Progress = func(pr Progress) {
				if pr.Stage == p.stage {
					stop()
				}
			}
			if p.stage == StageCalibrate || p.stage == Stage2 {
				c.Epochs1 = 1
			}
			if p.stage == StageCalibrate {
				c.Epochs2 = 1
			}
			if p.stage == "" {
				time.AfterFunc(p.after, stop)
			}
			// Refit the fitted model: a cancelled Fit must not touch it.
			m.cfg.Progress, m.cfg.Epochs1, m.cfg.Epochs2 = c.Progress, c.Epochs1, c.Epochs2
			err := m.Fit(ctx, s.train)
			returned := time.Now()
			m.cfg.Progress, m.cfg.Epochs1, m.cfg.Epochs2 = nil, cfg.Epochs1, cfg.Epochs2
			require.ErrorIs(t, err, context.Canceled)
			at := cancelled.Load()
			require.NotZero(t, at)
			// Prompt: one training step or one batch of features after the
			// cancel (milliseconds here; the bound allows for -race and a
			// loaded machine).
			require.Less(t, returned.Sub(time.Unix(0, at)), 3*time.Second, "Fit returned late after the cancel")
			if n := settledGoroutines(base); n > base {
				t.Fatalf("%d goroutines after the cancelled Fit, %d before:\n%s", n, base, goroutineStacks())
			}
			after, err := m.Predict(s.test[0])
			require.NoError(t, err)
			require.Equal(t, before.Score, after.Score, "a cancelled Fit changed the fitted model")
			require.True(t, slices.Equal(before.Map, after.Map), "a cancelled Fit changed the fitted model")
		})
	}
}

// TestPredictLoad64 runs Predict from 64 goroutines for a bounded time (at
// least two rounds each, at most about two seconds) and compares every
// result with the sequential one. CI runs it with -race.
func TestPredictLoad64(t *testing.T) {
	s := makeSynth(22, 16, 4, 4)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	m := fitTiny(t, cfg, s)
	want := predictEach(t, m, s.test)
	base := stableGoroutines()
	deadline := time.Now().Add(2 * time.Second)
	var (
		wg    sync.WaitGroup
		calls atomic.Int64
		mu    sync.Mutex
		errs  []error
	)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 2 || time.Now().Before(deadline); k++ {
				i := (g + k) % len(s.test)
				r, err := m.Predict(s.test[i])
				calls.Add(1)
				if err == nil && (r.Score != want[i].Score || r.Anomalous != want[i].Anomalous || !slices.Equal(r.Map, want[i].Map)) {
					err = fmt.Errorf("goroutine %d, call %d, image %d: result differs from the sequential one", g, k, i)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d Predict calls from 64 goroutines", calls.Load())
	require.NoError(t, errors.Join(errs...))
	if n := settledGoroutines(base); n > base {
		t.Fatalf("%d goroutines after the load, %d before:\n%s", n, base, goroutineStacks())
	}
}

// TestSaveFileKilled kills a child process that saves two models in turn
// over one path, at several moments, with SIGKILL: the path must always
// hold one of the two complete models, never a mix or a truncated file.
// The child is this test binary, run with ANOMNET_SAVE_CHILD set.
func TestSaveFileKilled(t *testing.T) {
	if dir := os.Getenv("ANOMNET_SAVE_CHILD"); dir != "" {
		saveChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	// The children fit the same models and must save the same bytes: the
	// fit's recorded time is pinned (they inherit the environment).
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := t.TempDir()
	s := makeSynth(23, 8, 0, 0)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	var want [][]byte
	for i, seed := range []uint64{1, 2} {
		c := cfg
		c.Seed = seed
		m := fitTiny(t, c, s)
		path := filepath.Join(dir, fmt.Sprintf("%c.anm", 'a'+i))
		require.NoError(t, m.SaveFile(path))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		want = append(want, b)
	}
	require.False(t, bytes.Equal(want[0], want[1]))
	target := filepath.Join(dir, "model.anm")
	require.NoError(t, os.WriteFile(target, want[0], 0o644))
	for _, d := range []time.Duration{0, 1 * time.Millisecond, 3 * time.Millisecond, 7 * time.Millisecond,
		15 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSaveFileKilled$")
		cmd.Env = append(os.Environ(), "ANOMNET_SAVE_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// Wait until the child saves in its loop, then kill it.
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err, "child: %q", line)
		time.Sleep(d)
		require.NoError(t, cmd.Process.Kill())
		cmd.Wait()
		got, err := os.ReadFile(target)
		require.NoError(t, err)
		require.True(t, bytes.Equal(got, want[0]) || bytes.Equal(got, want[1]),
			"killed %v into the save loop: %s holds %d bytes, neither model", d, target, len(got))
		_, err = LoadFile(target, newTinyNet(3))
		require.NoError(t, err)
	}
	// A kill between CreateTemp and Rename leaves the temporary file; it
	// is never read, and its dot name keeps it out of directory listings.
	left, _ := filepath.Glob(filepath.Join(dir, ".model.anm.tmp*"))
	t.Logf("8 kills, %d temporary files left behind", len(left))
}

// saveChild loads the two models that TestSaveFileKilled saved in dir and
// saves them in turn over dir/model.anm until it is killed.
func saveChild(dir string) {
	var ms []*Model
	for _, name := range []string{"a.anm", "b.anm"} {
		m, err := LoadFile(filepath.Join(dir, name), newTinyNet(3))
		if err != nil {
			fmt.Println("load:", err)
			os.Exit(1)
		}
		ms = append(ms, m)
	}
	for i := 0; ; i++ {
		if err := ms[i%2].SaveFile(filepath.Join(dir, "model.anm")); err != nil {
			fmt.Println("save:", err)
			os.Exit(1)
		}
		if i == 0 {
			fmt.Println("saving")
		}
	}
}

// hugeImage claims to be w x h pixels without holding them: enough to show
// that Predict refuses it before any work proportional to its size.
type hugeImage struct{ w, h int }

func (hugeImage) ColorModel() color.Model   { return color.RGBAModel }
func (g hugeImage) Bounds() image.Rectangle { return image.Rect(0, 0, g.w, g.h) }
func (hugeImage) At(x, y int) color.Color   { return color.RGBA{uint8(x), uint8(y), 0, 255} }

// TestPredictPixelCap: a 20000x20000 image is refused by the pixel cap with
// an error that says so, in Predict and in Fit, and a lowered cap applies.
func TestPredictPixelCap(t *testing.T) {
	s := makeSynth(24, 8, 1, 0)
	cfg := testConfig()
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	m := fitTiny(t, cfg, s)
	_, err := m.Predict(hugeImage{20000, 20000})
	require.ErrorContains(t, err, "image 0 is 20000x20000 = 400000000 pixels, over the cap of 67108864 (Config.MaxPixels)")
	// The cap counts pixels, not sides: a long thin image of fewer pixels passes.
	_, err = m.Predict(hugeImage{100000, 8})
	require.NoError(t, err)

	c := cfg
	c.MaxPixels = 64 * 64
	small, err := New(newTinyNet(3), c)
	require.NoError(t, err)
	err = small.Fit(context.Background(), append(slices.Clone(s.train), hugeImage{65, 64}))
	require.ErrorContains(t, err, "image 8 is 65x64 = 4160 pixels, over the cap of 4096")
	c.MaxPixels = -1
	_, err = New(newTinyNet(3), c)
	require.ErrorContains(t, err, "pixel cap -1")
}

// TestFitSpillPeakRSS fits the same category twice in child processes,
// once with every backbone feature in memory and once with an 8 MiB
// feature-cache budget, and compares their peak resident sets (the
// kernel's figure, which /usr/bin/time -v prints too): spilling must save
// at least half of what the features over the budget would have taken.
// The features are about 50 MB, the images and everything else the same
// in both runs.
func TestFitSpillPeakRSS(t *testing.T) {
	if v := os.Getenv("ANOMNET_RSS_CHILD"); v != "" {
		rssChild(v)
		return
	}
	if testing.Short() {
		t.Skip("fits twice in child processes")
	}
	run := func(budget int64) (peakKiB int64, features int64, spilled string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFitSpillPeakRSS$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("ANOMNET_RSS_CHILD=%d", budget))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "child: %s", out)
		var recs, spill int
		_, err = fmt.Sscanf(string(out), "features %d bytes, %d records, %d spilled", &features, &recs, &spill)
		require.NoError(t, err, "child: %s", out)
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			t.Skip("no resource usage on this system")
		}
		return ru.Maxrss, features, fmt.Sprintf("%d of %d records", spill, recs)
	}
	const budget = 8 << 20
	inMem, features, spilledAll := run(1 << 40)
	spill, _, spilledSome := run(budget)
	t.Logf("features %.0f MB; peak RSS %.0f MB with all in memory (%s spilled), %.0f MB with a %d MiB budget (%s spilled)",
		float64(features)/1e6, float64(inMem)*1024/1e6, spilledAll, float64(spill)*1024/1e6, budget>>20, spilledSome)
	require.Greater(t, features, int64(4*budget), "the test's features are too small to show anything")
	saved := (inMem - spill) * 1024
	require.Greater(t, saved, (features-budget)/2,
		"spilling saved %d bytes of peak RSS; the features over the budget are %d bytes", saved, features-budget)
}

// rssChild fits a model on 512 stripe images at 128x128 with the feature
// budget given in bytes, then prints the size of the features and how
// many records spilled (the spill file's size, seen from the progress
// callback during stage 1).
func rssChild(budget string) {
	fail := func(err error) {
		fmt.Println("child:", err)
		os.Exit(1)
	}
	var b int64
	if _, err := fmt.Sscan(budget, &b); err != nil {
		fail(err)
	}
	s := makeSynth(25, 512, 0, 0)
	cfg := testConfig()
	cfg.Resize, cfg.Crop = 128, 128
	cfg.Epochs1, cfg.Epochs2 = 1, 1
	// Mean seeding keeps nothing per feature vector besides the cache
	// (farthest-point seeding holds a projection of each).
	cfg.Init = InitMean
	cfg.CacheBytes = b
	dir, err := os.MkdirTemp("", "anomnet-rss-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	cfg.TempDir = dir
	var spillBytes int64
	cfg.Progress = func(p Progress) {
		if p.Stage == "stage1" && p.Step == 1 {
			files, _ := filepath.Glob(filepath.Join(dir, "anomnet-features-*"))
			for _, f := range files {
				// Allocated blocks, not the size: records go in at their
				// index's offset, after a hole for those held in memory.
				if fi, err := os.Stat(f); err == nil {
					if st, ok := fi.Sys().(*syscall.Stat_t); ok {
						spillBytes += st.Blocks * 512
					}
				}
			}
		}
	}
	m, err := New(newTinyNet(3), cfg)
	if err != nil {
		fail(err)
	}
	if err := m.Fit(context.Background(), s.train); err != nil {
		fail(err)
	}
	maps, _, err := m.backboneMaps(context.Background(), m.cfg, s.train[:1], 0)
	if err != nil {
		fail(err)
	}
	record := 0
	for _, t := range maps {
		record += 4 * t.Len()
	}
	fmt.Printf("features %d bytes, %d records, %d spilled\n", int64(record)*int64(len(s.train)), len(s.train), spillBytes/int64(record))
}
