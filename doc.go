// Package anomnet detects and localizes anomalies in industrial images,
// trained on photos of good parts only. It implements the AnomNet method
// (Gao, Wang, Tu and Shen, J. Imaging 2025): a frozen ImageNet-pretrained
// CNN backbone, a CoordConv feature adapter, K centroids trained in two
// stages (attraction, separation and entropy losses, then centroid-based
// contrastive learning), and nearest-centroid scoring into heatmaps.
//
// This package is the hub that joins the others, which do not import each
// other: an image goes from dataset's preprocessing through the Backbone
// and the Adapter to the Scorer, which measures the adapted features
// against the CentroidSet; metrics scores the results. The Model holds
// each stage through its interface, so that a program can plug in its
// own. The numerical work behind every stage goes through one Device: a
// pure-Go CPU implementation that always builds, or the CUDA one of
// package cuda when the program is built with the cuda tag.
//
//	bb, err := backbone.LoadResNet50(ctx, backbone.FetchOptions{})
//	m, err := anomnet.New(bb, anomnet.DefaultConfig())
//	err = m.Fit(ctx, goodImages)      // normal parts only
//	err = m.SaveFile("part.anm")
//	r, err := m.Predict(img)          // r.Score, r.Anomalous, r.Map, r.Mask
//
// Fit computes the backbone features of each training image once (cached
// in memory up to Config.CacheBytes, then in a temporary file), seeds the
// centroids, runs the training stages that Config.Plans lists, and sets
// the thresholds for a false-alarm rate from the training images, each
// scored without the centroids taken from it. DefaultConfig holds the
// library's defaults, chosen by a validation protocol on normal images
// (docs/RESULTS.md), PaperConfig METHOD.md's settings, and Config the
// ablations of its section 4 as switches. A saved model records its backbone's fingerprint and a
// checksum; Load refuses another backbone and a damaged file. Predict is
// safe for concurrent use.
package anomnet
