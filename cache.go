package anomnet

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// featureCache keeps the backbone maps of the training images, one record
// of the same length per image (every tap's map, flattened, one after the
// other): in memory up to a byte budget, and the records beyond it in a
// temporary file that Close removes. The backbone is frozen, so each image
// goes through it once for all epochs.
type featureCache struct {
	record int // float32s per image
	budget int64
	mem    [][]float32 // nil entries are in the file
	file   *os.File
	dir    string
	buf    []byte
}

func newFeatureCache(record int, budget int64, dir string) *featureCache {
	return &featureCache{record: record, budget: budget, dir: dir}
}

// Len returns the number of records.
func (c *featureCache) Len() int { return len(c.mem) }

// Spilled returns the number of records held in the file.
func (c *featureCache) Spilled() int {
	n := 0
	for _, r := range c.mem {
		if r == nil {
			n++
		}
	}
	return n
}

// Append adds the next record (a copy of rec).
func (c *featureCache) Append(rec []float32) error {
	if len(rec) != c.record {
		panic(fmt.Sprintf("anomnet: feature record of %d values, want %d", len(rec), c.record))
	}
	held := int64(len(c.mem)-c.Spilled()) * int64(c.record) * 4
	if held+int64(c.record)*4 <= c.budget {
		c.mem = append(c.mem, append([]float32(nil), rec...))
		return nil
	}
	if c.file == nil {
		f, err := os.CreateTemp(c.dir, "anomnet-features-*.bin")
		if err != nil {
			return fmt.Errorf("anomnet: feature cache over its %d-byte budget: %w", c.budget, err)
		}
		c.file = f
	}
	c.buf = c.buf[:0]
	for _, v := range rec {
		c.buf = binary.LittleEndian.AppendUint32(c.buf, math.Float32bits(v))
	}
	off := int64(len(c.mem)) * int64(c.record) * 4
	if _, err := c.file.WriteAt(c.buf, off); err != nil {
		return fmt.Errorf("anomnet: feature cache: %w", err)
	}
	c.mem = append(c.mem, nil)
	return nil
}

// Get copies record i into dst.
func (c *featureCache) Get(i int, dst []float32) error {
	if r := c.mem[i]; r != nil {
		copy(dst, r)
		return nil
	}
	n := c.record * 4
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	if _, err := c.file.ReadAt(c.buf, int64(i)*int64(n)); err != nil {
		return fmt.Errorf("anomnet: feature cache %s: %w", c.file.Name(), err)
	}
	for k := range dst[:c.record] {
		dst[k] = math.Float32frombits(binary.LittleEndian.Uint32(c.buf[4*k:]))
	}
	return nil
}

// Close drops the records and removes the file.
func (c *featureCache) Close() error {
	c.mem = nil
	if c.file == nil {
		return nil
	}
	name := c.file.Name()
	err := c.file.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	c.file = nil
	return err
}
