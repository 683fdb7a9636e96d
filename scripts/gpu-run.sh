#!/usr/bin/env bash
# gpu-run.sh: the CUDA Device's check on a GPU machine, in one call of the
# device tool's run within 9 minutes (scripts/gpu-check.sh builds
# gpu/cuda.test here and prints the call). Everything lands in $OUT:
#   gpu.txt          the GPU, its driver, its SM clock (now and at most)
#   cuda_test.txt    the conformance suite and TestLargeShapes (full sizes)
#                    and the determinism test, with CUDA_LAUNCH_BLOCKING=1
#                    so that a fault names the kernel that made it
#   sanitizer.txt    compute-sanitizer memcheck and racecheck on the tiled
#                    kernels (Gemm, the convolutions, Nearest, the hinge)
#   bench.txt        the benchmarks: GFLOP/s, % of the FP32 and tensor-core
#                    peaks, GB/s; the SM clock logged before and after
#   torch_peer.txt   PyTorch on the same ops, TF32 off and on, with ratios
# Each step has its own time limit, so that a hang in one leaves the rest.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib:${LD_LIBRARY_PATH:-}
OUT=${OUT:-out}
mkdir -p "$OUT"
T=./gpu/cuda.test
clock() { nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader 2>&1; }
{ nvidia-smi 2>&1 | head -20; echo "clock: $(clock)"; } | tee "$OUT/gpu.txt"

echo "== tests (CUDA_LAUNCH_BLOCKING=1)"
CUDA_LAUNCH_BLOCKING=1 timeout 200 $T -test.v -test.count=1 -test.timeout 190s 2>&1 | tee "$OUT/cuda_test.txt"
rc=${PIPESTATUS[0]}

echo "== compute-sanitizer"
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$san" ]; then
	tiled='TestConformance/(Gemm|Conv2D|Nearest|CosineSimilarity|NegativeHinge|ScatterAddRows|ResizeBilinearBackward)'
	for tool in memcheck racecheck; do
		echo "-- $tool" | tee -a "$OUT/sanitizer.txt"
		timeout 70 "$san" --tool "$tool" --error-exitcode 3 $T -test.count=1 -test.run "$tiled" 2>&1 | tail -40 | tee -a "$OUT/sanitizer.txt"
		s=${PIPESTATUS[0]}
		echo "-- $tool exit $s" | tee -a "$OUT/sanitizer.txt"
		[ "$s" = 3 ] && rc=3
	done
else
	echo "compute-sanitizer not found" | tee "$OUT/sanitizer.txt"
fi

echo "== benchmarks"
{ echo "clock before: $(clock)"; timeout 120 $T -test.run '^$' -test.bench . -test.benchtime 20x 2>&1; echo "clock after: $(clock)"; } | tee "$OUT/bench.txt"

echo "== PyTorch peer"
PYTHONUNBUFFERED=1 timeout 110 python3 scripts/gpu_peer.py --go "$OUT/bench.txt" 2>&1 | tee "$OUT/torch_peer.txt"
exit "$rc"
