// Package contrastive implements AnomNet's stage-2 centroid-based
// contrastive loss (METHOD.md section 4, CCL): given sampled feature vectors
// and their pseudo-labels (the index of the nearest frozen centroid), it
// computes the positive term, which pulls vectors of the same label
// together, and the negative hinge, which pushes vectors of different labels
// below a cosine-similarity margin, together with their gradient.
//
// The positive term has a closed form through per-label sums of the
// normalised vectors and costs O(M D); the negative hinge needs every
// pairwise similarity, O(M^2 D), and runs through the Device's
// NegativeHinge op without forming the M x M matrix. Sample draws the M
// rows of a batch that take part.
package contrastive
