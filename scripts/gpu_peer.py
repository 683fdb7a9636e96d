#!/usr/bin/env python3
"""The PyTorch peer of anomnet's CUDA benchmarks (cuda/bench_test.go).

Times the same ops at the same shapes with PyTorch on the GPU (CUDA events,
median of several runs after warm-up) and, given the Go benchmark output
(--go FILE, the text of `cuda.test -test.bench .`), prints both side by side
with the ratio torch_time / anomnet_time (above 1: anomnet is faster).

Like for like, PyTorch runs in float32 with TF32 off (anomnet's kernels are
float32 on CUDA cores); the 'tf32' rows show PyTorch's defaults for
convolutions (cuDNN with TF32 tensor cores) for context. Run on the GPU
machine by the command scripts/gpu-check.sh prints.
"""
import argparse
import re
import sys

import torch
import torch.nn.functional as F

PEAK_COPY = 4.3e12
PEAK_BF16 = 790e12
PEAK_FP32 = 67e12


def timed(fn, iters=20, warm=3):
    """Median seconds per call of fn, by CUDA events."""
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    return times[len(times) // 2]


RESULTS = []


def report(name, sec, flops=0.0, nbytes=0.0):
    RESULTS.append((name, sec, flops, nbytes))
    rate = []
    if flops:
        rate.append(f"{flops / sec / 1e9:10.1f} GFLOP/s ({100 * flops / sec / PEAK_FP32:5.1f}% fp32, {100 * flops / sec / PEAK_BF16:5.2f}% bf16)")
    if nbytes:
        rate.append(f"{nbytes / sec / 1e9:8.1f} GB/s ({100 * nbytes / sec / PEAK_COPY:5.1f}% copy)")
    print(f"{name:64s} {sec * 1e3:9.3f} ms  {'  '.join(rate)}", flush=True)


def rand(*shape):
    return torch.rand(*shape, device="cuda") * 2 - 1


def strict(on):
    torch.backends.cuda.matmul.allow_tf32 = not on
    torch.backends.cudnn.allow_tf32 = not on


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--go", help="output of the Go benchmarks, for the side-by-side table")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}", flush=True)
    torch.backends.cudnn.benchmark = True
    strict(True)

    n = 1 << 28
    x, y = torch.empty(n, device="cuda"), torch.empty(n, device="cuda")
    report("Copy", timed(lambda: y.copy_(x)), nbytes=2 * 4 * n)
    report("Add", timed(lambda: torch.add(x, y, out=y)), nbytes=3 * 4 * n)
    report("Sum", timed(lambda: x.sum(dtype=torch.float64)), nbytes=4 * n)
    del x, y

    for m in (1024, 4096):
        a, b = rand(m, m), rand(m, m)
        c = torch.empty(m, m, device="cuda")
        report(f"Gemm/M=N=K={m}", timed(lambda: torch.mm(a, b, out=c)), flops=2.0 * m ** 3)

    convs = [
        ("resnet50.layer1.1x1,N=8,C=256,O=64,HW=56", 8, 256, 56, 64, 1, 1, 0),
        ("resnet50.layer1.3x3,N=8,C=64,O=64,HW=56", 8, 64, 56, 64, 3, 1, 1),
        ("resnet50.layer2.3x3s2,N=8,C=128,O=128,HW=56", 8, 128, 56, 128, 3, 2, 1),
        ("resnet50.layer2.3x3,N=8,C=128,O=128,HW=28", 8, 128, 28, 128, 3, 1, 1),
        ("adapter.1x1,N=32,C=1538,O=1536,HW=28", 32, 1538, 28, 1536, 1, 1, 0),
    ]
    for tf32 in (False, True):
        strict(not tf32)
        suffix = " (tf32)" if tf32 else ""
        for name, nb, ch, hw, o, k, s, p in convs:
            xx, w, bias = rand(nb, ch, hw, hw), rand(o, ch, k, k), rand(o)
            yy = F.relu(F.conv2d(xx, w, bias, s, p))
            flops = 2.0 * yy.numel() * ch * k * k
            report(f"Conv2D/{name}{suffix}", timed(lambda: F.relu(F.conv2d(xx, w, bias, s, p))), flops=flops)
            report(f"Conv2DBackwardData/{name}{suffix}",
                   timed(lambda: torch.nn.grad.conv2d_input(xx.shape, w, yy, s, p)), flops=flops)
            report(f"Conv2DBackwardFilter/{name}{suffix}",
                   timed(lambda: (torch.nn.grad.conv2d_weight(xx, w.shape, yy, s, p), yy.sum((0, 2, 3)))), flops=flops)
            del xx, w, bias, yy
    strict(True)

    m, d = 16384, 1536
    xs = rand(m, d)
    s = torch.empty(m, m, device="cuda")

    def cosine():
        z = F.normalize(xs, dim=1, eps=1e-8)
        torch.mm(z, z.t(), out=s)

    report("CosineSimilarity", timed(cosine), flops=2.0 * m * m * d, nbytes=4.0 * m * m)
    del s
    z = F.normalize(xs, dim=1)
    labels = torch.arange(m, device="cuda") % 64
    other = labels[:, None] != labels[None, :]

    def hinge(grad):
        sim = z @ z.t()
        active = other & (sim > 0)
        loss = torch.where(active, sim, 0).sum(1)
        if grad:
            return loss, active.float() @ z
        return loss

    report(f"NegativeHinge/loss,M={m},D={d}", timed(lambda: hinge(False), iters=10), flops=2.0 * m * m * d)
    report(f"NegativeHinge/loss+grad,M={m},D={d}", timed(lambda: hinge(True), iters=10), flops=4.0 * m * m * d)
    del z, xs, other

    nn_, k, d = 25088 * 8, 64, 1536
    xn, cn = rand(nn_, d), rand(k, d)

    def nearest():
        d2 = (xn * xn).sum(1, keepdim=True) - 2 * xn @ cn.t() + (cn * cn).sum(1)
        best, idx = d2.min(1)
        return idx, best.clamp_min(0).sqrt()

    report("Nearest", timed(nearest), flops=2.0 * nn_ * k * d, nbytes=2 * 4.0 * nn_ * d)
    del xn, cn

    fm = torch.empty(32, 1536, 28, 28, device="cuda")
    report("ChannelsLast", timed(lambda: fm.permute(0, 2, 3, 1).contiguous()), nbytes=2 * 4.0 * fm.numel())
    del fm
    small = rand(32, 1, 28, 28)
    report("ResizeBilinear", timed(lambda: F.interpolate(small, size=(224, 224), mode="bilinear", align_corners=False)),
           nbytes=4.0 * 32 * (28 * 28 + 224 * 224))
    big = rand(32, 1, 224, 224)
    r = int(4 * 4 + 0.5)
    t = torch.arange(-r, r + 1, device="cuda", dtype=torch.float64)
    kern = torch.exp(-t * t / (2 * 16.0))
    kern = (kern / kern.sum()).float()

    def blur():
        p = F.pad(big, (r, r, 0, 0), mode="reflect")
        p = F.conv2d(p, kern.view(1, 1, 1, -1))
        p = F.pad(p, (0, 0, r, r), mode="reflect")
        return F.conv2d(p, kern.view(1, 1, -1, 1))

    report("GaussianBlur", timed(blur), nbytes=4 * 4.0 * big.numel())

    if args.go:
        side_by_side(args.go)


def side_by_side(path):
    """Prints the Go figures next to PyTorch's, matched by name."""
    go = {}
    line_re = re.compile(r"^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op")
    with open(path) as f:
        for line in f:
            mt = line_re.match(line)
            if mt:
                go[mt.group(1)] = float(mt.group(2)) * 1e-9
    if not go:
        print(f"no Go benchmark lines in {path}")
        return
    print()
    print(f"{'op':64s} {'anomnet ms':>11s} {'torch ms':>10s} {'torch/anomnet':>14s}  anomnet rate")
    for name, sec, flops, nbytes in RESULTS:
        key = name.replace(" (tf32)", "")
        if key not in go:
            continue
        g = go[key]
        rate = f"{flops / g / 1e9:.0f} GFLOP/s, {100 * flops / g / PEAK_BF16:.2f}% of bf16 peak" if flops else ""
        if nbytes and not flops:
            rate = f"{nbytes / g / 1e9:.0f} GB/s, {100 * nbytes / g / PEAK_COPY:.1f}% of copy peak"
        print(f"{name:64s} {g * 1e3:11.3f} {sec * 1e3:10.3f} {sec / g:14.2f}  {rate}")


if __name__ == "__main__":
    sys.exit(main())
