#!/usr/bin/env python3
"""Generate backbone/testdata/torchvision/: fixtures for the torchvision
ResNet builder and its checkpoint readers (backbone/torchvision.go).

    /usr/bin/python3 scripts/torchvision_fixtures.py

Needs Debian's python3-torch (1.13) and python3-torchvision (0.14); no
network: every model is built with weights=None and a fixed seed, never
downloaded. Writes, all together about 1.3 MB:

  keys.json       for each of resnet18, resnet50 and wide_resnet50_2: "keys",
                  the state-dict keys and shapes (num_batches_tracked left
                  out) in state-dict order, for the builder's own key list
                  to match, and "convs", each convolution's kernel size,
                  stride and padding (where a bottleneck puts its stride).
  resnet18_stage1.pth
                  conv1, bn1 and layer1 of a randomly initialised resnet18
                  whose BatchNorms have random weights, biases and running
                  statistics (so that folding them is tested): torch.save of
                  that dict, zip format, float32.
  resnet50_stage1.safetensors
                  the same for resnet50, in safetensors written by hand. To
                  keep the files under 1.5 MB (two float32 checkpoints of
                  this size alone take 1.55 MB) and to test every dtype the
                  reader takes against torch's own rounding, its tensors are
                  of mixed types: conv1.weight F64, downsample convs BF16,
                  the other convs F16, BatchNorm tensors F32 and
                  num_batches_tracked I64. It replaces the separate F16
                  resnet18 file that would not fit.
  expected.json   for each of the two checkpoints, the float64 outputs (with
                  the weights as stored, BatchNorm unfolded, eval mode) of
                  relu(bn1(conv1(x))) ("conv1"), maxpool and layer1 for a
                  1x3x64x48 input defined by a formula the Go test computes
                  too: pixel (x, y) of channel c (RGB) is
                  (x*3 + y*5 + c*50) % 256, then /255, minus torchvision's
                  mean, divided by its std. Each map is summarised: shape,
                  per-channel means and every value of the first 4 channels.
  pth_dtypes.pth  small tensors of each float dtype, strided views of a
                  shared storage (an offset, a transpose), an int64 tensor
                  and a num_batches_tracked, with "module." prefixes, wrapped
                  in {"state_dict": ..., "epoch": 7}: the .pth reader's
                  cases, with values the Go test computes.
  whole_model.pth torch.save of a whole (tiny) nn.Module, not a state dict.
  legacy.pth      a state dict in torch's pre-1.6 (non-zip) format (it
                  changes from run to run: torch names its storage by
                  memory address).
"""
import collections
import json
import os
import struct

import numpy as np
import torch
import torchvision
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "backbone", "testdata", "torchvision")
ARCHS = {
    "resnet18": torchvision.models.resnet18,
    "resnet50": torchvision.models.resnet50,
    "wide_resnet50_2": torchvision.models.wide_resnet50_2,
}
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
HEIGHT, WIDTH = 64, 48
STAGE1 = ("conv1.", "bn1.", "layer1.")


def keys():
    out = {}
    for arch, ctor in ARCHS.items():
        torch.manual_seed(0)
        m = ctor(weights=None)
        convs = {}
        for name, mod in m.named_modules():
            if isinstance(mod, nn.Conv2d):
                assert mod.groups == 1 and mod.dilation == (1, 1) and mod.bias is None, name
                assert len(set(mod.kernel_size)) == len(set(mod.stride)) == len(set(mod.padding)) == 1, name
                convs[name] = [mod.kernel_size[0], mod.stride[0], mod.padding[0]]
        out[arch] = {
            "keys": [[k, list(v.shape)] for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")],
            "convs": convs,
        }
    return out


def randomised(arch, seed):
    """A model with random convolutions (torchvision's init) and random
    BatchNorm parameters and statistics, in eval mode."""
    torch.manual_seed(seed)
    m = ARCHS[arch](weights=None).eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(1000)
    return m


def stage1_dict(m):
    return collections.OrderedDict((k, v) for k, v in m.state_dict().items() if k.startswith(STAGE1))


def image():
    """The normalised input, 1 x 3 x H x W float64."""
    y, x, c = np.meshgrid(np.arange(HEIGHT), np.arange(WIDTH), np.arange(3), indexing="ij")
    v = ((x * 3 + y * 5 + c * 50) % 256).astype(np.float64) / 255
    v = (v - np.array(MEAN)) / np.array(STD)
    return torch.from_numpy(v.transpose(2, 0, 1).copy()).unsqueeze(0)


def outputs(m):
    """The stem's and layer1's outputs, float64, for the formula image."""
    m = m.double()
    with torch.no_grad():
        x = image()
        stem = m.relu(m.bn1(m.conv1(x)))
        pool = m.maxpool(stem)
        return {"conv1": stem, "maxpool": pool, "layer1": m.layer1(pool)}


def summary(t):
    t = t[0]
    return {"shape": list(t.shape), "mean": t.mean(dim=(1, 2)).tolist(), "first": t[:4].flatten().tolist()}


def fmt(obj):
    """Eight significant digits: the Go test compares at 1e-4 relative."""
    if isinstance(obj, float):
        return float("%.8g" % obj)
    if isinstance(obj, dict):
        return {k: fmt(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fmt(v) for v in obj]
    return obj


SAFETENSORS_DTYPES = {
    torch.float64: ("F64", "<f8"),
    torch.float32: ("F32", "<f4"),
    torch.float16: ("F16", "<f2"),
    torch.int64: ("I64", "<i8"),
}


def tensor_bytes(t):
    if t.dtype == torch.bfloat16:
        # numpy has no bfloat16: the upper half of each float32 (exact, since
        # t is already bfloat16).
        u32 = t.float().contiguous().numpy().view(np.uint32)
        return "BF16", (u32 >> 16).astype("<u2").tobytes()
    name, np_dtype = SAFETENSORS_DTYPES[t.dtype]
    return name, t.contiguous().numpy().astype(np_dtype).tobytes()


def write_safetensors(path, tensors):
    """The safetensors format: 8-byte little-endian header length, a JSON
    header of {name: {dtype, shape, data_offsets}}, then the data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        dtype, b = tensor_bytes(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # as the safetensors package does, for alignment
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def mixed_dtype(name):
    if name.endswith("num_batches_tracked"):
        return torch.int64
    if name == "conv1.weight":
        return torch.float64
    if "downsample.0" in name:
        return torch.bfloat16
    if ".conv" in name:
        return torch.float16
    return torch.float32


def main():
    os.makedirs(OUT, exist_ok=True)
    written = []

    def dump_json(name, obj):
        with open(os.path.join(OUT, name), "w") as f:
            json.dump(obj, f, separators=(",", ":"))
            f.write("\n")
        written.append(name)

    dump_json("keys.json", keys())

    expected = {"generator": "scripts/torchvision_fixtures.py", "torch": torch.__version__,
                "torchvision": torchvision.__version__, "height": HEIGHT, "width": WIDTH,
                "checkpoints": {}}

    m = randomised("resnet18", 1)
    torch.save(stage1_dict(m), os.path.join(OUT, "resnet18_stage1.pth"))
    written.append("resnet18_stage1.pth")
    expected["checkpoints"]["resnet18_stage1.pth"] = {
        "arch": "resnet18", "taps": {k: fmt(summary(v)) for k, v in outputs(m).items()}}

    m = randomised("resnet50", 2)
    sd = collections.OrderedDict((k, v.to(mixed_dtype(k))) for k, v in stage1_dict(m).items())
    write_safetensors(os.path.join(OUT, "resnet50_stage1.safetensors"), sd)
    written.append("resnet50_stage1.safetensors")
    # The reference runs on the weights as stored, rounded to their dtypes.
    m = m.double()
    m.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in sd.items()}, strict=False)
    expected["checkpoints"]["resnet50_stage1.safetensors"] = {
        "arch": "resnet50", "taps": {k: fmt(summary(v)) for k, v in outputs(m).items()}}

    dump_json("expected.json", expected)

    base = torch.arange(20, dtype=torch.float32).reshape(4, 5) / 4  # exact in every dtype
    sd = collections.OrderedDict([
        ("module.f32", base),
        ("module.f16", base.half()),
        ("module.bf16", base.bfloat16()),
        ("module.f64", base.double()),
        ("module.view", base[1:, 1:]),  # storage offset 6, strides (5, 1)
        ("module.t", base.t()),  # strides (1, 5)
        ("module.i64", torch.arange(3)),
        ("module.bn.num_batches_tracked", torch.tensor(3)),
    ])
    torch.save({"state_dict": sd, "epoch": 7}, os.path.join(OUT, "pth_dtypes.pth"))
    written.append("pth_dtypes.pth")

    torch.manual_seed(3)
    torch.save(nn.Sequential(nn.Conv2d(3, 2, 1)), os.path.join(OUT, "whole_model.pth"))
    written.append("whole_model.pth")
    torch.save(collections.OrderedDict([("w", base)]), os.path.join(OUT, "legacy.pth"),
               _use_new_zipfile_serialization=False)
    written.append("legacy.pth")

    total = 0
    for name in written:
        size = os.path.getsize(os.path.join(OUT, name))
        total += size
        print(f"{size:9d}  {os.path.relpath(os.path.join(OUT, name))}")
    print(f"{total:9d}  total")


if __name__ == "__main__":
    main()
