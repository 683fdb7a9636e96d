#!/usr/bin/env bash
# compare.sh: anomnet's defaults beside the PatchCore peer, side by side in
# one run on this machine, on every category of a data folder in the MVTec
# AD layout. For each category the peer runs first, then `anomnet fit` with
# no flags and `anomnet eval`; the table (image AUROC, pixel AUROC, AUPRO,
# fit seconds, predict images/s) goes to stdout and, with -w, into
# docs/RESULTS.md between the markers "<!-- compare:begin -->" and
# "<!-- compare:end -->".
#
#   scripts/compare.sh [-w] [DATA [PEER]]
#
# DATA defaults to ../shared/data, PEER to ../shared/peer/peer_patchcore.py
# (it is not part of the project: it is copied to a temporary folder and run
# with Debian's /usr/bin/python3, which needs python3-torch,
# python3-torchvision, python3-scipy and python3-pil). Extra flags for
# anomnet fit can be given in ANOMNET_FIT_FLAGS (the table then says so).
set -euo pipefail
cd "$(dirname "$0")/.."

write=0
if [ "${1:-}" = "-w" ]; then
	write=1
	shift
fi
data=${1:-../shared/data}
peer=${2:-../shared/peer/peer_patchcore.py}
flags=${ANOMNET_FIT_FLAGS:-}
[ -d "$data" ] || { echo "compare.sh: no data folder $data" >&2; exit 2; }
[ -f "$peer" ] || { echo "compare.sh: no peer script $peer" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$peer" "$work/peer.py"
go build -o "$work/anomnet" ./cmd/anomnet
"$work/anomnet" weights fetch >/dev/null
export R50_TGZ=${R50_TGZ:-$("$work/anomnet" weights fetch)}

cats=()
for d in "$data"/*/; do
	d=${d%/}
	[ -d "$d/train/good" ] && [ -d "$d/ground_truth" ] && cats+=("$(basename "$d")")
done
[ ${#cats[@]} -gt 0 ] || { echo "compare.sh: no category with masks in $data" >&2; exit 2; }

for c in "${cats[@]}"; do
	echo "== $c: PatchCore peer" >&2
	/usr/bin/python3 "$work/peer.py" eval "$data/$c" | grep "^$c {" | cut -d' ' -f2- >"$work/$c.peer.json"
	echo "== $c: anomnet fit $flags" >&2
	start=$(date +%s.%N)
	# shellcheck disable=SC2086
	"$work/anomnet" fit -o "$work/$c.anm" $flags "$data/$c" >&2
	end=$(date +%s.%N)
	echo "$start $end" >"$work/$c.fit"
	"$work/anomnet" eval -json "$work/$c.json" -out "$work/$c.eval" "$work/$c.anm" "$data/$c" >&2
	if grep -q '"input": "full"' "$work/$c.json"; then
		# A full-image model: its maps are also put on the crop protocol's
		# pixels, the peer's, by scripts/crop_view.py.
		"$work/anomnet" predict -save-maps -out "$work/$c.maps" "$work/$c.anm" "$data/$c/test" >"$work/$c.pred.jsonl"
		/usr/bin/python3 scripts/crop_view.py --maps "$work/$c.maps" --data "$data/$c" --scores "$work/$c.pred.jsonl" >"$work/$c.crop.json"
	fi
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
table=$(/usr/bin/python3 - "$work" "$(date -u +%Y-%m-%d)" "$cpu" "$(nproc)" "$flags" "${cats[@]}" <<'EOF'
import json, os, sys
work, day, cpu, cores, flags, cats = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
fmt = lambda v: "-" if v is None else "%.4f" % v
cmd = "scripts/compare.sh" + (" (ANOMNET_FIT_FLAGS=%r)" % flags if flags else "")
print("Measured %s with `%s` on %s (%s cores): for each category the PatchCore peer, then `anomnet fit%s` and `anomnet eval`." % (day, cmd, cpu, cores, " " + flags if flags else ""))
print()
full = [c for c in cats if os.path.exists("%s/%s.crop.json" % (work, c))]
if full:
    print("A model with the full input (`-input auto`, the default, takes it where the training images' median elongation is beyond 4:3; or `-input full`) scores the whole image; its row gives its figures on the crop protocol's pixels, the peer's (`scripts/crop_view.py`), and the row below it those of `anomnet eval` on the whole, uncropped masks.")
    print()
print("| category | tool | I-AUROC | P-AUROC | AUPRO | fit s | predict img/s |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
wins = []
for c in cats:
    p = json.load(open("%s/%s.peer.json" % (work, c)))
    a = json.load(open("%s/%s.json" % (work, c)))
    row = [r for r in a["rows"] if r["defect"] == "all"][0]
    start, end = map(float, open("%s/%s.fit" % (work, c)).read().split())
    mine = [row["image_auroc"], row["pixel_auroc"], row["aupro"]]
    whole = None
    if c in full:
        v = json.load(open("%s/%s.crop.json" % (work, c)))
        whole, mine = mine, [v["image_auroc"], v["pixel_auroc"], v["aupro"]]
    theirs = [p["I-AUROC"], p["P-AUROC"], p["AUPRO"]]
    print("| %s | PatchCore (peer) | %s | %s | %s | %.1f | %.2f |" % (c, *map(fmt, theirs), p["fit_s"], p["infer_img_per_s"]))
    print("| %s | anomnet%s | %s | %s | %s | %.1f | %.2f |" % (c, " (full, crop's pixels)" if whole else "", *map(fmt, mine), end - start, a["images"] / a["predict_seconds"]))
    if whole:
        print("| %s | anomnet (full, whole masks) | %s | %s | %s | | |" % (c, *map(fmt, whole)))
    wins.append("%s: %s" % (c, ", ".join("%s %+.4f" % (n, m - t) for n, m, t in zip(("I", "P", "PRO"), mine, theirs))))
print()
print("anomnet minus the peer: " + "; ".join(wins) + ".")
EOF
)
echo "$table"
if [ $write = 1 ]; then
	/usr/bin/python3 - docs/RESULTS.md "$table" <<'EOF'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
if begin not in text:
    text = text.rstrip() + "\n\n" + begin + "\n" + end + "\n"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + table + "\n" + end + tail)
EOF
	echo "compare.sh: table written to docs/RESULTS.md" >&2
fi
