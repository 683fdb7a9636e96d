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
// This package holds the Backbone interface (and the Tensor and Device names
// that programs outside the module use); the user-facing Model (Fit,
// Predict, Save, Load) and the interfaces Adapter, CentroidSet and Scorer
// arrive with the issues that build those stages.
package anomnet
