// Package adapter is AnomNet's trainable feature adapter: per tapped layer,
// CoordConv (two coordinate channels), a 1x1 convolution initialised as the
// identity, 3x3 average pooling, resampling to a common size and channel
// concatenation, with its backward pass for training.
//
// For a tapped backbone map X_i (N x C_i x H_i x W_i) the adapter computes,
// as METHOD.md section 3 specifies,
//
//	X_i -> append x, y coordinates (C_i+2 channels)
//	    -> convolution to C_i channels with bias (1x1, or 3x3 with padding 1)
//	    -> 3x3 average pooling, stride 1, padding 1 (padding counted; optional)
//	    -> resample to H x W: adaptive average pooling where the map is
//	       larger than the target, bilinear interpolation where it is
//	       smaller in either axis, nothing where it is equal
//
// and concatenates the results along the channels into F (N x D x H x W),
// D = sum of C_i. A new Adapter is the identity on the features (each
// convolution passes its map through, ignoring the coordinates), so training
// starts from the pretrained features.
//
// Every operation runs through a tensor.Device and the parameters live on
// it, so the same code trains on the CPU and on a GPU. The backbone is
// frozen, so Backward computes the parameter gradients only, never a
// gradient with respect to the input maps.
package adapter
