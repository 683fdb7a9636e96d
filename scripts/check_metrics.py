#!/usr/bin/python3
"""Recompute anomnet's evaluation metrics independently and compare.

Reads the raw score maps that `anomnet predict -save-maps` wrote for a
category's test folder, and the category's ground-truth masks, computes the
image AUROC, the pixel AUROC and the AUPRO (up to FPR 0.3) per defect type and
overall with NumPy, Pillow, SciPy and scikit-learn, and compares them with the
report.json of `anomnet eval` on the same model and data. Prints every
difference; exits 1 when one exceeds the tolerance (default 1e-6).

    anomnet eval -out EVAL model.anm DATA/CAT
    anomnet predict -save-maps -out MAPS model.anm DATA/CAT/test
    /usr/bin/python3 scripts/check_metrics.py --maps MAPS --data DATA/CAT --report EVAL/report.json

Layout read: MAPS/<defect>/<stem>.npy for each DATA/CAT/test/<defect>/<stem>.<ext>
(the layout predict writes for a folder), and
DATA/CAT/ground_truth/<defect>/<stem>_mask.<ext>.

Nothing here comes from anomnet but the maps: the masks are preprocessed here
(resize to RESIZE x RESIZE with PIL NEAREST, centre crop CROP, gray > 127),
the image score is the map's maximum (or, with --scores, the score that
predict printed: a model whose image score is the maximum of its location
grid, the default, has no other), the regions are SciPy's 8-connected
components, and AUPRO follows its definition: at each threshold t, taken at
every distinct pixel score from the highest down, the false-positive rate is
the fraction of normal pixels scoring >= t and the PRO the mean over all
ground-truth regions (of all images) of the fraction of the region's pixels
scoring >= t; the curve starts at (0, 0), is cut at FPR 0.3 (interpolating
linearly) and its trapezoid area divided by 0.3. `--selftest` checks the fast
AUPRO against a direct per-threshold loop on small random data.

Requires the Debian packages python3-numpy, python3-pil, python3-scipy and
python3-sklearn.
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image
from scipy import ndimage
from sklearn.metrics import roc_auc_score

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
EIGHT = np.ones((3, 3), dtype=int)  # 8-connectivity


def list_images(folder):
    return sorted(
        f for f in os.listdir(folder)
        if not f.startswith(".") and f.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(folder, f))
    )


def load_mask(path, resize, crop):
    """The mask as anomnet's Preprocess.Mask specifies it, done with PIL."""
    m = Image.open(path).convert("L").resize((resize, resize), Image.NEAREST)
    off = (resize - crop) // 2
    m = m.crop((off, off, off + crop, off + crop))
    return np.asarray(m) > 127


def find_mask(gt_dir, defect, stem):
    folder = os.path.join(gt_dir, defect)
    for ext in IMAGE_EXTS:  # .png first, as anomnet prefers it
        for e in (ext, ext.upper()):
            p = os.path.join(folder, stem + "_mask" + e)
            if os.path.isfile(p):
                return p
    raise SystemExit(f"check_metrics: {os.path.join(folder, stem + '_mask.png')}: missing mask")


def load_samples(data, maps, resize, crop):
    """One (path, defect, map, mask or None) per test image."""
    test = os.path.join(data, "test")
    gt_dir = os.path.join(data, "ground_truth")
    has_masks = os.path.isdir(gt_dir)
    samples = []
    for defect in sorted(d for d in os.listdir(test) if not d.startswith(".") and os.path.isdir(os.path.join(test, d))):
        for f in list_images(os.path.join(test, defect)):
            stem = os.path.splitext(f)[0]
            npy = os.path.join(maps, defect, stem + ".npy")
            if not os.path.isfile(npy):
                raise SystemExit(f"check_metrics: {npy}: missing map (run anomnet predict -save-maps -out {maps} MODEL {test})")
            m = np.load(npy)
            if m.dtype != np.float32 or m.shape != (crop, crop):
                raise SystemExit(f"check_metrics: {npy}: {m.dtype} {m.shape}, want float32 ({crop}, {crop})")
            mask = None
            if defect != "good" and has_masks:
                mask = load_mask(find_mask(gt_dir, defect, stem), resize, crop)
            samples.append((os.path.join(test, defect, f), defect, m, mask))
    return samples, has_masks


def trapezoid_to(x, y, x_max):
    """Area under the polyline (x, y), x non-decreasing, from x[0] to x_max."""
    keep = np.searchsorted(x, x_max, side="right")  # x[:keep] <= x_max
    xs, ys = x[:keep], y[:keep]
    if keep < len(x) and xs[-1] < x_max:
        t = (x_max - x[keep - 1]) / (x[keep] - x[keep - 1])
        xs = np.append(xs, x_max)
        ys = np.append(ys, y[keep - 1] + t * (y[keep] - y[keep - 1]))
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def pixel_weights(maps, masks):
    """All pixel scores, a normal flag per pixel, each anomalous pixel's
    weight 1/|its region|, and the number of regions."""
    scores, normal, weight = [], [], []
    regions = 0
    for m, gt in zip(maps, masks):
        scores.append(m.ravel().astype(np.float64))
        if gt is None:
            normal.append(np.ones(m.size, bool))
            weight.append(np.zeros(m.size))
            continue
        lab, n = ndimage.label(gt, structure=EIGHT)
        sizes = np.bincount(lab.ravel()).astype(np.float64)
        sizes[0] = np.inf  # background: weight 0
        weight.append((1 / sizes)[lab].ravel())
        normal.append(~gt.ravel())
        regions += n
    return np.concatenate(scores), np.concatenate(normal), np.concatenate(weight), regions


def aupro(maps, masks, max_fpr=0.3):
    """AUPRO from its definition, all thresholds at once: sort the pixels by
    score, highest first; at the last pixel of each run of equal scores, the
    running count of normal pixels gives the FPR and the running sum of the
    anomalous pixels' 1/|region| over the number of regions the PRO."""
    scores, normal, weight, regions = pixel_weights(maps, masks)
    if regions == 0 or not normal.any():
        return None
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    last = np.append(s[1:] != s[:-1], True)
    fpr = np.cumsum(normal[order])[last] / normal.sum()
    pro = np.cumsum(weight[order])[last] / regions
    return trapezoid_to(np.append(0.0, fpr), np.append(0.0, pro), max_fpr) / max_fpr


def aupro_direct(maps, masks, max_fpr=0.3):
    """The same by a loop over thresholds and regions (slow; --selftest)."""
    regions = []
    normal = []
    for m, gt in zip(maps, masks):
        if gt is None:
            normal.append(m.ravel())
            continue
        lab, n = ndimage.label(gt, structure=EIGHT)
        regions += [m[lab == k] for k in range(1, n + 1)]
        normal.append(m[~gt])
    normal = np.concatenate(normal)
    fpr, pro = [0.0], [0.0]
    for t in np.unique(np.concatenate([m.ravel() for m in maps]))[::-1]:
        fpr.append(np.mean(normal >= t))
        pro.append(np.mean([np.mean(r >= t) for r in regions]))
    return trapezoid_to(np.array(fpr), np.array(pro), max_fpr) / max_fpr


def read_scores(path):
    """The image scores of predict's JSON lines, by absolute image path."""
    given = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                given[os.path.abspath(r["path"])] = float(r["score"])
    return given


def image_score(path, m, given):
    """The map's maximum, or the score predict printed for path."""
    return given[os.path.abspath(path)] if given else float(m.max())


def metrics(samples, has_masks, given=None):
    labels = np.array([d != "good" for _, d, _, _ in samples])
    scores = np.array([image_score(p, m, given) for p, _, m, _ in samples])
    out = {"images": len(samples), "image_auroc": None, "pixel_auroc": None, "aupro": None}
    if labels.any() and not labels.all():
        out["image_auroc"] = float(roc_auc_score(labels, scores))
    if has_masks:
        maps = [m for _, _, m, _ in samples]
        masks = [gt for _, _, _, gt in samples]
        truth = np.concatenate([np.zeros(m.size, bool) if gt is None else gt.ravel() for m, gt in zip(maps, masks)])
        if truth.any() and not truth.all():
            out["pixel_auroc"] = float(roc_auc_score(truth, np.concatenate([m.ravel() for m in maps]).astype(np.float64)))
        out["aupro"] = aupro(maps, masks)
    return out


def selftest():
    rng = np.random.default_rng(1)
    for trial in range(20):
        maps, masks = [], []
        for i in range(4):
            m = rng.integers(0, 12, size=(9, 9)).astype(np.float32)  # few values: many ties
            gt = None
            if i % 2:
                gt = np.zeros((9, 9), bool)
                gt[rng.integers(0, 9, 6), rng.integers(0, 9, 6)] = True
                gt[2:4, 5:8] = True
                m[gt] += rng.integers(0, 6)
            maps.append(m)
            masks.append(gt)
        for max_fpr in (0.3, 1.0, 0.05):
            a, b = aupro(maps, masks, max_fpr), aupro_direct(maps, masks, max_fpr)
            if abs(a - b) > 1e-12:
                raise SystemExit(f"selftest: trial {trial}, FPR {max_fpr}: fast AUPRO {a!r}, direct {b!r}")
    print("selftest: fast and direct AUPRO agree on 60 random cases")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--maps", help="folder of predict -save-maps output for DATA/CAT/test")
    ap.add_argument("--data", help="the category folder DATA/CAT")
    ap.add_argument("--report", help="report.json of anomnet eval")
    ap.add_argument("--resize", type=int, help="default: report.json's")
    ap.add_argument("--crop", type=int, help="default: report.json's")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--scores", help="predict's JSON lines (its stdout): take each image score from there")
    ap.add_argument("--selftest", action="store_true", help="only check the AUPRO implementation")
    a = ap.parse_args()
    if a.selftest:
        selftest()
        return 0
    if not (a.maps and a.data and a.report):
        ap.error("--maps, --data and --report are required")
    with open(a.report) as f:
        rep = json.load(f)
    if rep.get("input", "crop") != "crop":
        raise SystemExit(f"check_metrics: {a.report}: a model of input {rep['input']!r}; its maps are at each image's own size "
                         "(compare them on the crop's pixels with scripts/crop_view.py)")
    resize, crop = a.resize or rep["resize"], a.crop or rep["crop"]
    samples, has_masks = load_samples(a.data, a.maps, resize, crop)
    print(f"{len(samples)} test images, maps {crop}x{crop}, masks resized to {resize} and cropped; tolerance {a.tol:g}")

    given = read_scores(a.scores) if a.scores else None
    bad = 0
    # Per-image scores first: a difference there explains any below.
    scores = {s["path"]: s["score"] for s in rep.get("scores", [])}
    by_name = {os.path.relpath(p, a.data): v for p, v in scores.items()}
    diffs = []
    for path, _, m, _ in samples:
        v = by_name.get(os.path.relpath(path, a.data))
        if v is None:
            print(f"  {path}: not in report.json")
            bad += 1
            continue
        diffs.append(abs(image_score(path, m, given) - v))
    if diffs:
        worst = max(diffs)
        what = "predict's score" if given else "max(map)"
        print(f"image scores: {len(diffs)} compared, largest |{what} - report score| = {worst:.3g}")
        bad += worst > a.tol

    groups = {"all": samples}
    for _, d, _, _ in samples:
        if d != "good":
            groups[d] = [s for s in samples if s[1] in ("good", d)]
    rows = {r["defect"]: r for r in rep["rows"]}
    print(f"{'defect':>12} {'metric':>12} {'report':>12} {'script':>12} {'difference':>11}")
    for name, group in groups.items():
        mine = metrics(group, has_masks, given)
        row = rows.get(name)
        if row is None:
            print(f"{name:>12}: no row in report.json")
            bad += 1
            continue
        if row["images"] != mine["images"]:
            print(f"{name:>12} {'images':>12} {row['images']:>12} {mine['images']:>12}")
            bad += 1
        for key in ("image_auroc", "pixel_auroc", "aupro"):
            r, s = row[key], mine[key]
            if r is None or s is None:
                ok = r is None and s is None
                print(f"{name:>12} {key:>12} {str(r):>12} {str(s):>12} {'' if ok else 'MISSING':>11}")
                bad += not ok
                continue
            d = abs(r - s)
            flag = "" if d <= a.tol else "  MISMATCH"
            print(f"{name:>12} {key:>12} {r:12.8f} {s:12.8f} {d:11.3g}{flag}")
            bad += d > a.tol
    if bad:
        print(f"check_metrics: {bad} difference(s) above {a.tol:g}")
        return 1
    print("check_metrics: all metrics agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
