// Package cuda is the GPU Device: hand-written CUDA kernels for
// convolution, the pairwise similarity matrix and nearest-centroid search,
// linked through cgo when built with the cuda build tag. It is the only
// package that uses cgo. (Filled by the cuda issue.)
package cuda
