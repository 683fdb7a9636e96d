// Package anomnet detects and localizes anomalies in industrial images,
// trained on photos of good parts only. It implements the AnomNet method
// (Gao, Wang, Tu and Shen, J. Imaging 2025): a frozen ImageNet-pretrained
// CNN backbone, a CoordConv feature adapter, K centroids trained in two
// stages (attraction, separation and entropy losses, then centroid-based
// contrastive learning), and nearest-centroid scoring into heatmaps.
//
// The pipeline's packages form one chain, and data flows one way along it:
// dataset, backbone, adapter, centroid (and contrastive for training), the
// scorer, metrics. The numerical work behind every stage goes through one
// Device: a pure-Go CPU implementation that always builds, or the CUDA one
// of package cuda when the program is built with the cuda tag.
//
// This package holds the user-facing Model and the four interfaces that
// separate the stages: Backbone, Adapter, CentroidSet and Scorer.
//
//	bb, err := backbone.LoadResNet50(ctx, backbone.FetchOptions{})
//	m, err := anomnet.New(bb, anomnet.DefaultConfig())
//	err = m.Fit(ctx, goodImages)      // normal parts only
//	err = m.SaveFile("part.anm")
//	r, err := m.Predict(img)          // r.Score, r.Anomalous, r.Map, r.Mask
//
// Fit computes the backbone features of each training image once (cached
// in memory up to Config.CacheBytes, then in a temporary file), initialises
// the centroids, runs stage 1 and stage 2 with Adam, and calibrates the
// score range and the thresholds on the training images. Config holds every
// setting with METHOD.md's defaults, and the ablations of its section 4 as
// switches. A saved model records its backbone's fingerprint and a
// checksum; Load refuses another backbone and a damaged file. Predict is
// safe for concurrent use.
package anomnet
