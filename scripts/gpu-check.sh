#!/usr/bin/env bash
# gpu-check.sh: prepares the CUDA Device's check on a GPU machine that has
# no Go (the device tool's machine: an H200 with PyTorch, reached through
# the tool's `run`), and prints the one command line to run there.
#
# Here it:
#   1. builds the kernels: make -C cuda/kernels (needs nvcc: Debian's
#      nvidia-cuda-toolkit, as .ci/run installs it);
#   2. vets the package with -tags cuda, and runs the conformance suite on
#      the kernels' CPU emulation (make -C cuda/kernels emu; go test -tags
#      'cuda cudaemu'), so that no device time goes to a kernel that is
#      wrong on any machine (skip with --no-emu);
#   3. builds the test and benchmark binary gpu/cuda.test with
#      go test -c -tags 'cuda cudastatic': the kernels, CUDA's runtime
#      (libcudart_static), libstdc++ and libgcc are linked statically; only
#      glibc (2.34 or newer) stays dynamic, because the CUDA runtime loads
#      the driver (libcuda.so.1) with dlopen, which a fully static binary
#      cannot do reliably;
#   4. prints the command for the device tool's run, to be called with
#      carry ["gpu/cuda.test"] (gpu/cuda.test is ignored by git's *.test
#      rule; the scripts travel as tracked files) and a timeout_s of 540:
#      scripts/gpu-run.sh runs the tests with CUDA_LAUNCH_BLOCKING=1
#      (conformance, TestLargeShapes at full size, TestFitDeterministic),
#      compute-sanitizer's memcheck and racecheck on the tiled kernels, the
#      benchmarks (GFLOP/s and % of the FP32 and tensor-core peaks, the SM
#      clock logged), then scripts/gpu_peer.py, which times the same ops in
#      PyTorch (TF32 off and on) and prints the ratios; the outputs land in
#      $OUT (see gpu-run.sh).
#
# Usage: scripts/gpu-check.sh [--no-emu]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

emu=1
for a in "$@"; do
	case "$a" in
	--no-emu) emu=0 ;;
	*)
		echo "usage: $0 [--no-emu]" >&2
		exit 2
		;;
	esac
done

if ! command -v nvcc >/dev/null; then
	echo "gpu-check: nvcc not found; install Debian's nvidia-cuda-toolkit (see the CUDA block of .ci/run)" >&2
	exit 1
fi

echo "== kernels"
make -C cuda/kernels
go vet -tags cuda ./cuda/

if [ "$emu" = 1 ]; then
	echo "== conformance suite on the CPU emulation of the kernels"
	make -C cuda/kernels emu
	go test -count=1 -tags 'cuda cudaemu' ./cuda/
fi

echo "== gpu/cuda.test"
mkdir -p gpu
go test -c -tags 'cuda cudastatic' -o gpu/cuda.test ./cuda/
ls -l gpu/cuda.test
ldd gpu/cuda.test || true

# The command for the device tool: scripts/gpu-run.sh (a tracked file, so
# it travels with the working tree) runs the tests, the sanitizers, the
# benchmarks and the PyTorch peer there, each within its own limit.
cmd='bash scripts/gpu-run.sh'
cat <<EOF2

== device tool: run with
  command:   $cmd
  carry:     ["gpu/cuda.test"]
  timeout_s: 540
EOF2
