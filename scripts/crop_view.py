#!/usr/bin/python3
"""The crop protocol's figures of maps that cover the whole image.

A model fitted with `anomnet fit -input full` scores the whole image, and
`anomnet eval` compares its maps with the whole masks: a different set of
pixels from the crop protocol of MVTec AD, which the PatchCore peer and
`-input crop` use (resize to 256 x 256, keep the centred 224 x 224). This
script puts such maps on the crop protocol's pixels, so that the two can be
compared on the same ground: each map that `anomnet predict -save-maps`
wrote (at its image's own size) is resized to RESIZE x RESIZE (PIL,
bilinear) and centre-cropped to CROP, exactly as the crop protocol treats
the image and its mask, and the image AUROC (image score: predict's, with
--scores, else the map's maximum over the crop), pixel AUROC and AUPRO are
computed with scripts/check_metrics.py's functions.

    anomnet fit -input full -o full.anm DATA/CAT
    anomnet predict -save-maps -out MAPS full.anm DATA/CAT/test > pred.jsonl
    /usr/bin/python3 scripts/crop_view.py --maps MAPS --data DATA/CAT --scores pred.jsonl
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_metrics as cm  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--maps", required=True, help="folder of predict -save-maps output for DATA/CAT/test")
    ap.add_argument("--data", required=True, help="the category folder DATA/CAT")
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--scores", help="predict's JSON lines: the image scores (the whole image's)")
    a = ap.parse_args()
    test, gt_dir = os.path.join(a.data, "test"), os.path.join(a.data, "ground_truth")
    off = (a.resize - a.crop) // 2
    samples = []
    for defect in sorted(d for d in os.listdir(test) if not d.startswith(".") and os.path.isdir(os.path.join(test, d))):
        for f in cm.list_images(os.path.join(test, defect)):
            stem = os.path.splitext(f)[0]
            m = np.load(os.path.join(a.maps, defect, stem + ".npy"))
            m = np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize((a.resize, a.resize), Image.BILINEAR))
            m = m[off:off + a.crop, off:off + a.crop]
            mask = None
            if defect != "good":
                mask = cm.load_mask(cm.find_mask(gt_dir, defect, stem), a.resize, a.crop)
            samples.append((os.path.join(test, defect, f), defect, m, mask))
    given = cm.read_scores(a.scores) if a.scores else None
    out = cm.metrics(samples, True, given)
    print(json.dumps({"category": os.path.basename(os.path.normpath(a.data)), "resize": a.resize, "crop": a.crop, **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
