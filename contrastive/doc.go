// Package contrastive implements AnomNet's stage-2 centroid-based
// contrastive loss: pseudo-labels from the nearest centroid, cosine
// similarities of sampled feature vectors, the positive term in closed form
// and the negative hinge over every pair, with the gradient. (Filled by the
// model issue.)
package contrastive
