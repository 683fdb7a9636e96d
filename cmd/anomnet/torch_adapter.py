# PyTorch peer for `anomnet bench adapter --peer`: one adapter training
# step (1x1 convolution C+2 -> C with bias on a batch of N x (C+2) x S x S,
# forward, backward to the input and the weights, one Adam step), on as
# many threads as the Go side uses. Prints one JSON line.
import json
import sys
import time

import torch

batch, channels, size, iters, threads = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
conv = torch.nn.Conv2d(channels + 2, channels, 1)
opt = torch.optim.Adam(conv.parameters(), lr=1e-4, weight_decay=5e-4)
x = torch.randn(batch, channels + 2, size, size, requires_grad=True)
g = torch.randn(batch, channels, size, size)


def step():
    opt.zero_grad()
    x.grad = None
    y = conv(x)
    y.backward(g)
    opt.step()


step()  # warm-up
times = []
for _ in range(iters):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2]
print(json.dumps({"torch": torch.__version__, "threads": threads, "median_s": med, "per_s": 1 / med}))
