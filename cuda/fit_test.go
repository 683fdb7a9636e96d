//go:build cuda

package cuda

import (
	"bytes"
	"context"
	"image"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
	"github.com/org/anomnet/internal/tensor"
	"github.com/org/anomnet/internal/tinynet"
)

// TestFitDeterministic fits the same small model twice on the Device, both
// training stages included (the attraction's and the contrastive loss's
// ScatterAddRows, the adapter's ResizeBilinearBackward), and requires the
// two model files to be the same byte for byte. On the emulation the
// second fit runs every kernel's blocks and threads in reverse order
// (ANC_EMU_ORDER=reverse): a kernel whose sums depend on the order of its
// atomics gives another model.
func TestFitDeterministic(t *testing.T) {
	d := open(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	opts := dataset.SynthOptions{Size: 128}
	var imgs []image.Image
	for i := range 8 {
		img, _, err := dataset.SynthImage("weave", i, dataset.Good, opts)
		require.NoError(t, err)
		imgs = append(imgs, img)
	}
	cfg := anomnet.DefaultConfig()
	cfg.Taps = []string{"stage2", "stage3"}
	cfg.Input, cfg.Resize, cfg.Crop = anomnet.InputCrop, 72, 64
	cfg.K, cfg.TrainK, cfg.Init = 16, 16, anomnet.InitMean
	cfg.Epochs1, cfg.Epochs2, cfg.BatchSize, cfg.Sample = 2, 1, 4, 64
	cfg.Seed = 3
	saved := tensor.Default()
	anomnet.UseDevice(d)
	defer anomnet.UseDevice(saved)
	var files [2][]byte
	for i, order := range []string{"", "reverse"} {
		t.Setenv("ANC_EMU_ORDER", order)
		m, err := anomnet.New(tinynet.New(5), cfg)
		require.NoError(t, err)
		require.NoError(t, m.Fit(context.Background(), imgs))
		var buf bytes.Buffer
		require.NoError(t, m.Save(&buf))
		files[i] = buf.Bytes()
	}
	require.True(t, bytes.Equal(files[0], files[1]), "two fits on %s gave different models", d.Name())
}
