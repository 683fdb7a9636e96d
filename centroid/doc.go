// Package centroid holds the K centroids of AnomNet's feature space: their
// initialisation, the stage-1 losses (attraction, separation, entropy) with
// their gradients, and the nearest-centroid search that scores locations.
// (Filled by the model issue.)
package centroid
