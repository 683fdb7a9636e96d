// Package centroid holds the K centroids of AnomNet's feature space: their
// initialisation, the stage-1 losses (attraction, separation, entropy) with
// their gradients, and the nearest-centroid search that scores locations
// (docs/METHOD.md, section 4).
//
// A Set is a K x D float32 tensor on a tensor.Device. Initialisation runs on
// the host: Stats and MeanDistance stream over the training feature rows to
// give the global mean, the mean per-dimension standard deviation (the
// jitter scale of InitMean) and the separation threshold delta; InitKMeansPP
// seeds from a host sample instead.
//
// The losses return their value in float64 and add weight times their
// gradient into the gradient tensors they are given, so that a trainer can
// sum several losses into one buffer. Attraction works on the N x D feature
// rows and does its bulk work through Device ops; Separation and Entropy
// only touch the K x D centroids and compute on the host in float64.
package centroid
