package anomnet

import (
	"context"

	"github.com/org/anomnet/centroid"
	"github.com/org/anomnet/internal/tensor"
)

// seedFarthest chooses k of the training feature vectors by greedy
// farthest-point selection on their projections z, starting from a random
// one, keeps their numbers in t.chosen and returns them (k x D, host;
// fewer rows when the vectors run out of distinct ones).
func (t *trainer) seedFarthest(ctx context.Context, z []float32, k int) (*Tensor, error) {
	pdim := min(t.ad.Dim(), centroid.ProjectionDim)
	n := len(z) / pdim
	chosen, err := centroid.FarthestPoint(z, pdim, k, t.rng.IntN(n), func(done int) {
		t.progress(Progress{Stage: StageSeed, Epoch: 1, Epochs: 1, Step: done, Steps: k})
	})
	if err != nil {
		return nil, err
	}
	t.chosen = chosen
	return t.gather(ctx, chosen)
}

// gather reads the feature vectors numbered vs (image * locations +
// location) through the adapter as it is now, from the cache (one pass
// over the images that hold any), and returns them as rows (len(vs) x D,
// host).
func (t *trainer) gather(ctx context.Context, vs []int) (*Tensor, error) {
	// Each vector's row in the result, by image.
	byImage := map[int][][2]int{}
	for r, v := range vs {
		byImage[v/t.locs] = append(byImage[v/t.locs], [2]int{v % t.locs, r})
	}
	dim := t.ad.Dim()
	c := make([]float32, len(vs)*dim)
	images := t.cache.Len()
	for lo := 0; lo < images; lo += t.cfg.BackboneBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var idx []int
		for i := lo; i < min(lo+t.cfg.BackboneBatch, images); i++ {
			if len(byImage[i]) > 0 {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			continue
		}
		host, _, err := t.adaptedRows(idx, nil)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			for _, lr := range byImage[i] {
				src := (j*t.locs + lr[0]) * dim
				copy(c[lr[1]*dim:(lr[1]+1)*dim], host[src:src+dim])
			}
		}
		putBuffer(host)
	}
	return tensor.FromFloat32s(c, len(vs), dim), nil
}

// refresh makes the seeded feature vectors, read again through the
// trained adapter, the centroids that score (InitKCenter), and frees the
// trained ones: they served training, and the coreset must sit where the
// adapter now puts the training features.
func (t *trainer) refresh(ctx context.Context) error {
	if t.chosen == nil || len(t.cfg.Plans()) == 0 {
		return nil
	}
	c, err := t.gather(ctx, t.chosen)
	if err != nil {
		return err
	}
	old := t.set
	t.set = centroid.NewSet(t.d.FromHost(c))
	if old != nil {
		t.d.Free(old.C)
	}
	return nil
}
