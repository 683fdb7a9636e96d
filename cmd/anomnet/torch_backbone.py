# PyTorch peer for `anomnet bench backbone --peer`: torchvision's ResNet-50
# up to layer3 (random weights: speed does not depend on them), on as many
# threads as the Go side uses, timed the same way. Prints one JSON line.
import json
import sys
import time

import torch
import torchvision

batch, size, iters, threads = (int(a) for a in sys.argv[1:5])
torch.set_num_threads(threads)
m = torchvision.models.resnet50(weights=None).eval()
body = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3)
x = torch.randn(batch, 3, size, size)
with torch.no_grad():
    body(x)  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        body(x)
        times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"torch": torch.__version__, "threads": threads,
                  "median_s": times[len(times) // 2], "images_per_s": batch / times[len(times) // 2]}))
