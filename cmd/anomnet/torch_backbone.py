# PyTorch peer for `anomnet bench backbone -peer`: torchvision's ResNet-50
# up to layer3 (random weights: speed does not depend on them), on as many
# threads as the Go side uses.
#
#   python3 -c SCRIPT BATCH SIZE ITERS THREADS         times ITERS batches after a
#                                                      warm-up; prints one JSON line
#   python3 -c SCRIPT BATCH SIZE ITERS THREADS serve   prints {"ready": ...} after the
#                                                      warm-up, then times one batch per
#                                                      line read from stdin, printing
#                                                      {"s": seconds} for each, until EOF
import json
import sys
import time

import torch
import torchvision

batch, size, iters, threads = (int(a) for a in sys.argv[1:5])
serve = len(sys.argv) > 5 and sys.argv[5] == "serve"
torch.set_num_threads(threads)
m = torchvision.models.resnet50(weights=None).eval()
body = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3)
x = torch.randn(batch, 3, size, size)


def one():
    t0 = time.perf_counter()
    body(x)
    return time.perf_counter() - t0


with torch.no_grad():
    body(x)  # warm-up
    if serve:
        print(json.dumps({"ready": True, "torch": torch.__version__, "threads": threads}), flush=True)
        for line in sys.stdin:
            print(json.dumps({"s": one()}), flush=True)
        sys.exit(0)
    times = sorted(one() for _ in range(iters))
print(json.dumps({"torch": torch.__version__, "threads": threads,
                  "median_s": times[len(times) // 2], "images_per_s": batch / times[len(times) // 2]}))
