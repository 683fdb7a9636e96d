#!/usr/bin/env python3
"""Generate metrics/testdata/golden.json: reference values for package
metrics, computed independently with scikit-learn and SciPy (Debian's
python3-sklearn and python3-scipy):

    python3 scripts/metrics_golden.py > metrics/testdata/golden.json

Image level: roc_auc_score, roc_curve (all points), and F1-max over
precision_recall_curve, on random scores, heavy ties, all-tied scores,
perfect and reversed orderings.

Pixel level: roc_auc_score over all pixels, and AUPRO computed the direct
way: for every distinct score t, PRO(t) is the mean over the ground-truth
regions (scipy.ndimage.label with 8-connectivity) of the fraction of each
region's pixels scoring >= t, FPR(t) the fraction of normal pixels scoring
>= t; the curve, cut at the FPR limit by linear interpolation, is
integrated with sklearn.metrics.auc and divided by the limit. The maps
include empty masks, one-pixel regions, regions touching only at a corner
(one region under 8-connectivity) and tied scores.
"""
import json
import sys

import numpy as np
from scipy import ndimage
from sklearn.metrics import auc, precision_recall_curve, roc_auc_score, roc_curve

rng = np.random.RandomState(20261128)


def f1max(labels, scores):
    p, r, t = precision_recall_curve(labels, scores)
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0)[:-1]
    i = int(np.argmax(f1))
    # The lowest threshold among equal bests: scikit-learn lists thresholds
    # in increasing order, so argmax already gives the lowest.
    return float(f1[i]), float(t[i])


image_cases = []


def image_case(name, labels, scores):
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
    f1, t = f1max(labels, scores)
    image_cases.append({
        "name": name, "labels": labels.tolist(), "scores": scores.tolist(),
        "auroc": float(roc_auc_score(labels, scores)),
        "fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": [float(v) for v in thr[1:]],
        "f1max": f1, "f1threshold": t,
    })


n = 200
labels = rng.rand(n) < 0.3
image_case("random", labels, rng.randn(n) + labels * 1.0)
image_case("ties", labels, np.round(rng.randn(n) + labels * 0.7, 1))
image_case("all tied", labels, np.full(n, 0.5))
image_case("perfect", labels, labels * 2.0 + rng.rand(n) * 0.1)
image_case("reversed", labels, labels * -2.0 + rng.rand(n) * 0.1)
image_case("small", [False, True, False, True, True], [0.1, 0.4, 0.35, 0.8, 0.35])


def aupro_direct(maps, masks, limit):
    regions = []  # (image index, boolean region mask)
    for k, m in enumerate(masks):
        lab, count = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [(k, lab == c) for c in range(1, count + 1)]
    ok_scores = np.concatenate([s[~m] for s, m in zip(maps, masks)])
    region_scores = [maps[k][r] for k, r in regions]
    thresholds = np.unique(np.concatenate([s.ravel() for s in maps]))[::-1]
    fpr, pro = [0.0], [0.0]
    ok_sorted = np.sort(ok_scores)
    reg_sorted = [np.sort(s) for s in region_scores]
    for t in thresholds:
        fpr.append(float(len(ok_sorted) - np.searchsorted(ok_sorted, t, side="left")) / len(ok_sorted))
        pro.append(float(np.mean([(len(s) - np.searchsorted(s, t, side="left")) / len(s) for s in reg_sorted])))
    fpr, pro = np.array(fpr), np.array(pro)
    # Cut at the limit, interpolating PRO there.
    keep = fpr <= limit
    x, y = fpr[keep], pro[keep]
    if x[-1] < limit and len(fpr) > len(x):
        x = np.append(x, limit)
        y = np.append(y, np.interp(limit, fpr, pro))
    return float(auc(x, y) / limit), len(regions)


def pixel_set(name, maps, masks):
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    masks = [np.asarray(m, dtype=bool) for m in masks]
    scores = np.concatenate([m.ravel() for m in maps]).astype(np.float64)
    labels = np.concatenate([m.ravel() for m in masks])
    out = {"name": name, "width": maps[0].shape[1],
           "maps": [m.ravel().tolist() for m in maps],
           "masks": [m.ravel().astype(int).tolist() if m.any() else None for m in masks],
           "pixel_auroc": float(roc_auc_score(labels, scores))}
    for limit in (0.3, 1.0, 0.05):
        v, nreg = aupro_direct(maps, masks, limit)
        out["aupro_%g" % limit] = v
    out["regions"] = nreg
    return out


H, W = 24, 32
maps, masks = [], []
for k in range(6):
    m = np.zeros((H, W), dtype=bool)
    if k == 1:  # one-pixel regions
        m[3, 4] = m[10, 20] = m[20, 30] = True
    if k == 2:  # two blocks touching only at a corner: one 8-connected region
        m[5:9, 5:9] = True
        m[9:12, 9:14] = True
    if k == 3:  # a large irregular region and a small one
        yy, xx = np.mgrid[:H, :W]
        m |= (yy - 12) ** 2 / 36 + (xx - 10) ** 2 / 64 < 1
        m[2:4, 25:28] = True
    if k == 4:  # the mask touches the border
        m[0:5, 0:3] = True
        m[H - 2:, W - 6:] = True
    # k in {0, 5}: normal images, empty masks
    s = rng.randn(H, W).astype(np.float32) * 0.5 + m * 1.0
    if k == 5:
        s = np.round(s, 1)  # ties
    maps.append(s)
    masks.append(m)
pixel_cases = [pixel_set("mixed", maps, masks)]
# Ties everywhere: scores quantised to a few levels.
pixel_cases.append(pixel_set("quantised", [np.round(s * 2) / 2 for s in maps], masks))

json.dump({"generator": "scripts/metrics_golden.py", "image": image_cases, "pixel": pixel_cases},
          sys.stdout, separators=(",", ":"))
sys.stdout.write("\n")
