#!/usr/bin/env python3
"""Generate internal/tensor/testdata/torch_ops.json: PyTorch's own results
for the ops whose semantics the CPU Device copies from PyTorch (convolution,
pooling, adaptive pooling, bilinear resize, Gaussian blur, cosine similarity,
Adam), forward and backward through autograd, on small random inputs.

The Go tests read the JSON and need no Python. Regenerate with Debian's
python3-torch and python3-torchvision (apt-get install python3-torch
python3-torchvision):

    python3 scripts/torch_fixtures.py > internal/tensor/testdata/torch_ops.json
"""
import json
import sys

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms.functional as TF

torch.manual_seed(20261128)
torch.set_default_dtype(torch.float32)


def arr(t):
    t = t.detach().contiguous().float()
    # Nine significant digits round-trip a float32; a string keeps the
    # file small (JSON numbers would be printed as float64).
    return {"shape": list(t.shape), "data": " ".join("%.9g" % v for v in t.flatten().tolist())}


def rnd(*shape):
    return torch.randn(*shape, requires_grad=True)


cases = []


def case(op, params, inputs, outputs):
    cases.append({
        "op": op,
        "params": params,
        "inputs": {k: arr(v) for k, v in inputs.items()},
        "outputs": {k: arr(v) for k, v in outputs.items()},
    })


def backward(y, *xs):
    """Gradients of sum(g * y) for a random upstream g."""
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, xs, g)
    return g, grads


# Convolution: 3x3 stride 2 padding 1 on an odd, non-square map; a strided
# 1x1 (the Caffe ResNet-50's downsampling); a 7x7 stem-like one.
for (n, c, h, w, o, k, s, p) in [(2, 3, 7, 5, 4, 3, 2, 1), (1, 5, 6, 6, 3, 1, 2, 0), (1, 3, 11, 9, 2, 7, 2, 3)]:
    x, wt, b = rnd(n, c, h, w), rnd(o, c, k, k), rnd(o)
    y = F.conv2d(x, wt, b, stride=s, padding=p)
    g, (dx, dw, db) = backward(y, x, wt, b)
    case("conv2d", {"stride": s, "pad": p}, {"x": x, "w": wt, "b": b, "g": g}, {"y": y, "dx": dx, "dw": dw, "db": db})

# Max pooling as in the ResNet stem (3x3, stride 2, padding 1).
x = rnd(2, 2, 9, 7)
case("max_pool2d", {"kernel": 3, "stride": 2, "pad": 1}, {"x": x}, {"y": F.max_pool2d(x, 3, 2, 1)})

# Average pooling 3x3 stride 1 padding 1, count_include_pad=True (default).
x = rnd(1, 2, 5, 4)
y = F.avg_pool2d(x, 3, 1, 1)
g, (dx,) = backward(y, x)
case("avg_pool2d", {"kernel": 3, "stride": 1, "pad": 1}, {"x": x, "g": g}, {"y": y, "dx": dx})

# Adaptive average pooling, non-divisible down and up.
for (h, w, oh, ow) in [(7, 5, 3, 4), (3, 3, 5, 7), (56, 56, 28, 28)]:
    x = rnd(1, 1 if h > 20 else 2, h, w)
    y = F.adaptive_avg_pool2d(x, (oh, ow))
    g, (dx,) = backward(y, x)
    case("adaptive_avg_pool2d", {}, {"x": x, "g": g}, {"y": y, "dx": dx})

# Bilinear resize, align_corners=False, no antialiasing: up, down, mixed.
for (h, w, oh, ow) in [(5, 4, 9, 11), (8, 6, 3, 5), (14, 14, 28, 28), (7, 7, 56, 56)]:
    x = rnd(1, 2, h, w)
    y = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False)
    g, (dx,) = backward(y, x)
    case("resize_bilinear", {}, {"x": x, "g": g}, {"y": y, "dx": dx})

# Gaussian blur with reflect padding (torchvision's gaussian_blur), sigma 4
# with METHOD.md's kernel size 2*floor(4*sigma+0.5)+1 = 33, and sigma 1.5.
for (h, w, sigma) in [(20, 24, 4.0), (9, 13, 1.5)]:
    r = int(4 * sigma + 0.5)
    x = torch.randn(1, 2, h, w)
    y = TF.gaussian_blur(x, kernel_size=[2 * r + 1, 2 * r + 1], sigma=[sigma, sigma])
    case("gaussian_blur", {"sigma": sigma, "radius": r}, {"x": x}, {"y": y})

# Cosine similarity matrix of the rows (F.normalize clamps norms at eps).
x = torch.randn(9, 6)
z = F.normalize(x, dim=1, eps=1e-8)
case("cosine_similarity", {"eps": 1e-8}, {"x": x}, {"s": z @ z.T})

# Adam with L2 weight decay, three steps on fixed gradients.
p0 = torch.randn(17)
param = p0.clone().requires_grad_(True)
opt = torch.optim.Adam([param], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=5e-4)
grads = [torch.randn(17) for _ in range(3)]
for gr in grads:
    opt.zero_grad()
    param.grad = gr.clone()
    opt.step()
case("adam", {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 5e-4},
     {"p": p0, "g1": grads[0], "g2": grads[1], "g3": grads[2]}, {"p": param})

json.dump({
    "generator": "scripts/torch_fixtures.py",
    "torch": torch.__version__,
    "torchvision": torchvision.__version__,
    "cases": cases,
}, sys.stdout, separators=(",", ":"))
sys.stdout.write("\n")
