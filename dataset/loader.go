package dataset

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"image"
	"runtime"
	"sync"
	"sync/atomic"
)

// Defaults of Loader's fields.
const (
	// DefaultCacheBytes holds about 2,500 preprocessed 224x224 images
	// with their masks.
	DefaultCacheBytes = 512 << 20
	// DefaultInFlightBytes bounds the memory of the images being decoded
	// at once; a single image larger than it is decoded alone.
	DefaultInFlightBytes = 1 << 30
)

// Item is a decoded, preprocessed sample.
type Item struct {
	Sample
	// Image is the preprocessed image, Crop x Crop, opaque.
	Image *image.RGBA
	// Mask holds Crop x Crop pixel labels, row-major, true for
	// anomalous. It is nil when the sample has no mask: a normal image
	// (every pixel normal) or a dataset without masks.
	Mask []bool
}

// Loader decodes and preprocesses samples in parallel and keeps the
// results in a bounded cache, so that later epochs do not decode again.
// A zero field takes its default. A Loader is safe for concurrent use;
// it must not be copied after its first Load. Its cache assumes that the
// files do not change while the Loader lives.
type Loader struct {
	// Pre is the preprocessing; the zero value means DefaultPreprocess.
	Pre Preprocess
	// Workers is the number of images decoded at once; <= 0 means
	// GOMAXPROCS.
	Workers int
	// MaxPixels caps the pixels of one image or mask, judged from the
	// header before decoding; <= 0 means DefaultMaxPixels.
	MaxPixels int
	// CacheBytes bounds the pixel cache (least recently used entries
	// go first); 0 means DefaultCacheBytes, < 0 turns the cache off.
	CacheBytes int64
	// InFlightBytes bounds the estimated memory of the images being
	// decoded at once, on top of Workers; <= 0 means
	// DefaultInFlightBytes.
	InFlightBytes int64
	// Progress, if not nil, is called from Load's goroutine with the
	// number of samples done and the total, first with done = 0.
	Progress func(done, total int)

	mu      sync.Mutex
	cache   *pixelCache
	decodes atomic.Int64 // images decoded, for tests of the cache
}

// Load returns the samples decoded and preprocessed, in their order.
// Image and mask are preprocessed with Pre; a mask must have its image's
// size. The first error stops the remaining work and is returned; it
// names the file. The returned items are the caller's to modify.
func (l *Loader) Load(ctx context.Context, samples []Sample) ([]Item, error) {
	pre := l.Pre.resolved()
	workers := l.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(samples)))
	budget := l.InFlightBytes
	if budget <= 0 {
		budget = DefaultInFlightBytes
	}
	cache := l.pixelCache()

	n := len(samples)
	out := make([]Item, n)
	if l.Progress != nil {
		l.Progress(0, n)
	}
	if n == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("anomnet/dataset: loading stopped: %w", err)
		}
		return out, nil
	}

	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	mem := newMemBudget(budget)
	jobs := make(chan int)
	errs := make(chan error)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				var err error
				if err = ctx.Err(); err == nil {
					out[i], err = l.loadOne(ctx, pre, samples[i], cache, mem)
				}
				select {
				case errs <- err:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range samples {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	var first error
	for done := 0; done < n && first == nil; {
		select {
		case err := <-errs:
			if err != nil {
				first = err
				continue
			}
			done++
			if l.Progress != nil {
				l.Progress(done, n)
			}
		case <-ctx.Done():
			first = ctx.Err()
		}
	}
	cancel()
	wg.Wait()
	if first != nil {
		// Workers see a cancelled context only after first is set,
		// unless the caller's context ended.
		if err := parent.Err(); err != nil && errors.Is(first, err) {
			return nil, fmt.Errorf("anomnet/dataset: loading stopped: %w", first)
		}
		return nil, first
	}
	return out, nil
}

// pixelCache returns the Loader's cache sized to CacheBytes, or nil.
func (l *Loader) pixelCache() *pixelCache {
	capacity := l.CacheBytes
	if capacity == 0 {
		capacity = DefaultCacheBytes
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if capacity < 0 {
		l.cache = nil
		return nil
	}
	if l.cache == nil {
		l.cache = newPixelCache()
	}
	l.cache.setCapacity(capacity)
	return l.cache
}

// loadOne decodes and preprocesses one sample, through the cache.
func (l *Loader) loadOne(ctx context.Context, pre Preprocess, s Sample, cache *pixelCache, mem *memBudget) (Item, error) {
	key := cacheKey{path: s.Path, mask: s.MaskPath, threshold: s.MaskThreshold, pre: pre}
	if it, ok := cache.get(key); ok {
		it.Sample = s
		return it, nil
	}
	img, err := openHeader(s.Path, l.MaxPixels)
	if err != nil {
		return Item{}, err
	}
	defer img.Close()
	need := img.decodedBytes()
	var mask *header
	if s.MaskPath != "" {
		if mask, err = openHeader(s.MaskPath, l.MaxPixels); err != nil {
			return Item{}, err
		}
		defer mask.Close()
		if mask.cfg.Width != img.cfg.Width || mask.cfg.Height != img.cfg.Height {
			return Item{}, fmt.Errorf("anomnet/dataset: mask %s is %dx%d but its image %s is %dx%d",
				s.MaskPath, mask.cfg.Width, mask.cfg.Height, s.Path, img.cfg.Width, img.cfg.Height)
		}
		need += mask.decodedBytes()
	}
	// The full-size resize and the crop that ResizeCrop allocates, or the
	// frame.
	if pre.Native {
		need += int64(img.cfg.Width*img.cfg.Height) * 4
	} else if w, h := pre.Size(); pre.Width > 0 {
		need += int64(w*h) * 4
	} else {
		need += int64(pre.Resize*pre.Resize+pre.Crop*pre.Crop) * 4
	}
	need, err = mem.acquire(ctx, need)
	if err != nil {
		return Item{}, err
	}
	defer mem.release(need)

	src, err := img.decode()
	if err != nil {
		return Item{}, err
	}
	it := Item{Sample: s, Image: pre.Image(src)}
	if mask != nil {
		m, err := mask.decode()
		if err != nil {
			return Item{}, err
		}
		it.Mask = pre.Mask(m, s.MaskThreshold)
	}
	l.decodes.Add(1)
	cache.put(key, it)
	return it, nil
}

// memBudget is a weighted semaphore over bytes.
type memBudget struct {
	mu    sync.Mutex
	total int64
	free  int64
	freed chan struct{} // closed and replaced at each release
}

func newMemBudget(total int64) *memBudget {
	return &memBudget{total: total, free: total, freed: make(chan struct{})}
}

// acquire waits until n bytes (at most the whole budget) are free and
// takes them, returning the amount taken for release.
func (m *memBudget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, m.total)
	for {
		m.mu.Lock()
		if m.free >= n {
			m.free -= n
			m.mu.Unlock()
			return n, nil
		}
		ch := m.freed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (m *memBudget) release(n int64) {
	m.mu.Lock()
	m.free += n
	close(m.freed)
	m.freed = make(chan struct{})
	m.mu.Unlock()
}

// cacheKey names a preprocessed sample: the same files under the same
// preprocessing give the same pixels.
type cacheKey struct {
	path, mask string
	threshold  uint8
	pre        Preprocess
}

// pixelCache is a least-recently-used map of preprocessed items bounded
// in bytes, safe for concurrent use. A nil *pixelCache caches nothing.
// It stores copies and hands out copies, so callers may modify what
// they get.
type pixelCache struct {
	mu       sync.Mutex
	capacity int64
	size     int64
	order    *list.List // of *cacheEntry, most recently used first
	entries  map[cacheKey]*list.Element
}

type cacheEntry struct {
	key  cacheKey
	item Item
	size int64
}

func newPixelCache() *pixelCache {
	return &pixelCache{order: list.New(), entries: map[cacheKey]*list.Element{}}
}

func (c *pixelCache) setCapacity(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.capacity = n
	c.evict()
}

// evict drops least recently used entries until the cache fits.
func (c *pixelCache) evict() {
	for c.size > c.capacity {
		e := c.order.Back()
		ent := e.Value.(*cacheEntry)
		c.order.Remove(e)
		delete(c.entries, ent.key)
		c.size -= ent.size
	}
}

func (c *pixelCache) get(k cacheKey) (Item, bool) {
	if c == nil {
		return Item{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return Item{}, false
	}
	c.order.MoveToFront(e)
	return cloneItem(e.Value.(*cacheEntry).item), true
}

func (c *pixelCache) put(k cacheKey, it Item) {
	if c == nil {
		return
	}
	// Pixels, labels and a rough allowance for the bookkeeping.
	size := int64(len(it.Image.Pix)+len(it.Mask)+len(k.path)+len(k.mask)) + 256
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.capacity {
		return
	}
	if e, ok := c.entries[k]; ok { // another worker decoded it meanwhile
		c.order.MoveToFront(e)
		return
	}
	ent := &cacheEntry{key: k, item: cloneItem(it), size: size}
	c.entries[k] = c.order.PushFront(ent)
	c.size += size
	c.evict()
}

// cloneItem copies an item's pixels and labels.
func cloneItem(it Item) Item {
	img := *it.Image
	img.Pix = append([]uint8(nil), it.Image.Pix...)
	it.Image = &img
	if it.Mask != nil {
		it.Mask = append([]bool(nil), it.Mask...)
	}
	return it
}
