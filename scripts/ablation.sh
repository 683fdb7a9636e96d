#!/usr/bin/env bash
# ablation.sh: the parts of the method one by one, as the AnomNet paper's
# Table 1, on the test sets of a data folder: each row is `anomnet fit`
# with the library's defaults plus the row's flags, then `anomnet eval`.
# Prints a markdown table (image AUROC, pixel AUROC, AUPRO, fit seconds).
#
#   scripts/ablation.sh [DATA [CATEGORY...]]
#
# DATA defaults to ../shared/data, the categories to every one with masks.
# TRAIN sets the training recipe of the rows that train (default
# "-epochs1 1 -epochs2 1 -lr 1e-3"); NOPAPER=1 leaves out the paper
# preset's row (the longest: 10 + 10 epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
shift || true
cats=("$@")
if [ ${#cats[@]} -eq 0 ]; then
	for d in "$data"/*/; do
		d=${d%/}
		[ -d "$d/ground_truth" ] && cats+=("$(basename "$d")")
	done
fi
train=${TRAIN:--epochs1 1 -epochs2 1 -lr 1e-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/anomnet" ./cmd/anomnet

rows=(
	"seeded centroids, no training|-no-train"
	"attraction only|$train -no-sep -no-ent -no-stage2"
	"+ separation|$train -no-ent -no-stage2"
	"+ entropy|$train -no-sep -no-stage2"
	"+ both|$train -no-stage2"
	"+ stage 2 (the full method)|$train"
	"single stage|$train -single-stage"
)
if [ "${NOPAPER:-0}" != 1 ]; then
	rows+=("paper preset (METHOD.md literally)|-preset paper")
fi
echo "| category | variant | I-AUROC | P-AUROC | AUPRO | fit s |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for c in "${cats[@]}"; do
	for r in "${rows[@]}"; do
		name=${r%%|*} flags=${r#*|}
		start=$(date +%s.%N)
		# shellcheck disable=SC2086
		"$work/anomnet" fit -o "$work/m.anm" $flags "$data/$c" >"$work/fit.log" 2>&1 || { echo "| $c | $name | fit failed: $(tail -1 "$work/fit.log") | | | |"; continue; }
		end=$(date +%s.%N)
		"$work/anomnet" eval -json "$work/r.json" -out "$work/eval" "$work/m.anm" "$data/$c" >/dev/null 2>&1
		/usr/bin/python3 - "$work/r.json" "$c" "$name" "$(echo "$end - $start" | bc)" <<'EOF'
import json, sys
r = [x for x in json.load(open(sys.argv[1]))["rows"] if x["defect"] == "all"][0]
f = lambda v: "-" if v is None else "%.4f" % v
print("| %s | %s | %s | %s | %s | %.0f |" % (sys.argv[2], sys.argv[3], f(r["image_auroc"]), f(r["pixel_auroc"]), f(r["aupro"]), float(sys.argv[4])))
EOF
	done
done
echo
echo "Training rows: $train, with the defaults' farthest-point seeding (the first TrainK seeds train, all are read again through the trained adapter)."
