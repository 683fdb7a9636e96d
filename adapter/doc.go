// Package adapter is AnomNet's trainable feature adapter: per tapped layer,
// CoordConv (two coordinate channels), a 1x1 convolution initialised as the
// identity, 3x3 average pooling, resampling to a common size and channel
// concatenation, with its backward pass for training. (Filled by the model
// issue.)
package adapter
