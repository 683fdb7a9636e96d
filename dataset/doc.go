// Package dataset reads anomaly-detection image sets and prepares them for a
// backbone: the MVTec AD folder layout (MVTec) and VisA's split file
// (VisA), METHOD.md's preprocessing for images and, by nearest neighbour,
// masks (Preprocess), a parallel Loader with a decoding cap and a bounded
// pixel cache, and a built-in synthetic set of textures and objects with
// exact defect masks (SynthImage, WriteSynthetic) for demos and tests.
package dataset
