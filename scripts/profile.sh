#!/usr/bin/env bash
# Where the time of fit and predict goes, per image, from CPU profiles.
#
#   scripts/profile.sh DATA/CATEGORY [WORK]
#
# Builds anomnet, fits DATA/CATEGORY with the defaults and predicts its
# test folder, each under ANOMNET_CPUPROFILE, then sums the samples by the
# profiler labels the code sets (stage: load, decode, preprocess,
# backbone, adapter, score, masks, write; fit: features, init, train,
# refresh, index, calibrate) and splits the score stage by function
# (upsampling, blur, image score; the rest is the nearest-centroid search).
# Prints milliseconds of CPU per image (two cores busy make half as many
# of wall time) and the wall time of each command. WORK (default
# /tmp/anomnet-profile) keeps the binary, the model, the profiles and the
# outputs: `go tool pprof WORK/anomnet WORK/predict.prof` explores them.
set -euo pipefail
cat=${1:?usage: scripts/profile.sh DATA/CATEGORY [WORK]}
work=${2:-/tmp/anomnet-profile}
cd "$(dirname "$0")/.."
mkdir -p "$work"
go build -o "$work/anomnet" ./cmd/anomnet
bin=$work/anomnet

now() { date +%s.%N; }
t0=$(now)
ANOMNET_CPUPROFILE=$work/fit.prof "$bin" fit -o "$work/model.anm" "$cat" >"$work/fit.out" 2>"$work/fit.log"
t1=$(now)
rm -rf "$work/predictions"
ANOMNET_CPUPROFILE=$work/predict.prof "$bin" predict -out "$work/predictions" "$work/model.anm" "$cat/test" >"$work/predict.jsonl" 2>"$work/predict.log"
t2=$(now)
ntrain=$(find "$cat/train/good" -type f | wc -l)
ntest=$(wc -l <"$work/predict.jsonl")

# tags PROFILE KEY: "label seconds" lines for the values of KEY.
tags() {
	go tool pprof -tags "$1" 2>/dev/null | awk -v key="$2:" '
		$1 == key { on = 1; next }
		/^ *[a-z]+: Total/ { on = 0 }
		on && NF >= 3 {
			v = $1; s = v + 0
			if (v ~ /ms$/) s /= 1000; else if (v ~ /us$/) s /= 1e6; else if (v ~ /min$/) s *= 60
			print $NF, s
		}'
}
# focus PROFILE REGEX [TAGFOCUS]: seconds of the samples whose stack holds REGEX.
focus() {
	go tool pprof -top -cum -nodecount=1 ${3:+-tagfocus=$3} -focus="$2" "$bin" "$1" 2>/dev/null | awk '
		head && !found { v = $4; s = v + 0
			if (v ~ /ms$/) s /= 1000; else if (v ~ /us$/) s /= 1e6; else if (v ~ /min$/) s *= 60
			print s; found = 1 }
		/flat%/ { head = 1 }
		END { if (!found) print 0 }'
}

echo "anomnet profile: $cat, $(date -u +%F), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
printf 'fit: %d images, %.1f s wall; predict: %d images, %.1f s wall\n' "$ntrain" "$(echo "$t1 - $t0" | bc)" "$ntest" "$(echo "$t2 - $t1" | bc)"
echo
echo "predict, ms of CPU per image (stage label):"
tags "$work/predict.prof" stage | sort -k2 -gr | awk -v n="$ntest" '{ printf "  %-12s %8.1f\n", $1, 1000 * $2 / n; tot += $2 } END { printf "  %-12s %8.1f\n", "total", 1000 * tot / n }'
up=$(focus "$work/predict.prof" ResizeBilinear stage=score)
blur=$(focus "$work/predict.prof" GaussianBlur stage=score)
mx=$(focus "$work/predict.prof" MapMax stage=score)
echo "  score, split: upsampling $(echo "1000 * $up / $ntest" | bc -l | xargs printf %.1f), blur $(echo "1000 * $blur / $ntest" | bc -l | xargs printf %.1f), image score $(echo "1000 * $mx / $ntest" | bc -l | xargs printf %.1f); the rest is the nearest-centroid search"
echo
echo "fit, ms of CPU per training image (fit label, then stage label):"
tags "$work/fit.prof" fit | sort -k2 -gr | awk -v n="$ntrain" '{ printf "  %-12s %8.1f\n", $1, 1000 * $2 / n; tot += $2 } END { printf "  %-12s %8.1f\n", "total", 1000 * tot / n }'
tags "$work/fit.prof" stage | sort -k2 -gr | awk -v n="$ntrain" '{ printf "  %-12s %8.1f\n", $1, 1000 * $2 / n }'
