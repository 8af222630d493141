"""Does a trunk's pooled feature say which shapes and colours a scenes image holds?

A captioner with a frozen trunk can only name what the trunk's pooled feature encodes. This
diagnostic fits one logistic regression per shape, per colour (present in the image or not) and
per scene type (the background), from the scenes generator's ground truth
(``scenes_truth.json``), on the pooled features of scenes Visual Genome training images, and
reports the mean held-out ROC AUC beside the same probe on Gaussian noise features (the chance
level). ``--stride 16`` pools before the trunk's last stage (Show-and-Tell's ``stride``).
Used in benchmarks/mopuri2017/README.md.

    python benchmarks/mopuri2017/probe_trunk.py --scenes SCENES_DIR \
        --weights CACHE/backbones/timm-resnet18-<hash>.pt --sizes 32,96 [--stride 16]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def pooled_features(trunk: torch.nn.Module, records: list, size: int) -> np.ndarray:
    """The trunk's average-pooled features of ``records`` at ``size`` px (padded square)."""
    from capbench.data.datamodule import record_images
    from capbench.methods.frozen_features import frozen_features

    with torch.no_grad():
        channels = int(trunk(torch.zeros(1, 3, size, size)).shape[1])
    images = record_images(records, size, True)
    feats = frozen_features(lambda x: trunk(x).mean(dim=(2, 3)), images, channels)
    return feats.numpy()


def probe_auc(features: np.ndarray, labels: np.ndarray, n_train: int) -> float | None:
    """Held-out ROC AUC of a logistic regression fitted on the first ``n_train`` rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    y_train, y_test = labels[:n_train], labels[n_train:]
    if y_train.all() or not y_train.any() or y_test.all() or not y_test.any():
        return None
    clf = LogisticRegression(max_iter=3000).fit(features[:n_train], y_train)
    return float(roc_auc_score(y_test, clf.decision_function(features[n_train:])))


def main(argv: list[str] | None = None) -> int:
    from capbench.data import read
    from capbench.models.captioners.trunk import dense_trunk

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=Path, required=True, help="scenes data folder")
    ap.add_argument("--weights", type=Path, required=True, help="trunk checkpoint (.pt)")
    ap.add_argument("--arch", default="timm::resnet18")
    ap.add_argument("--stride", type=int, default=32, help="32: last stage; 16: before it")
    ap.add_argument("--sizes", default="32,96", help="image sizes (px), comma-separated")
    ap.add_argument("--images", type=int, default=2400)
    ap.add_argument("--train-fraction", type=float, default=2 / 3)
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    truth = json.loads((args.scenes / "scenes_truth.json").read_text())["visual_genome"]
    records = [
        r
        for r in read("visual_genome", args.scenes / "visual_genome", "train")
        if str(r.image_id) in truth
    ][: args.images]
    objects = [truth[str(r.image_id)]["objects"] for r in records]
    scenes = [truth[str(r.image_id)]["scene"] for r in records]
    n_train = int(len(records) * args.train_fraction)
    trunk = dense_trunk(args.arch, args.stride, args.weights)[0].eval()
    noise: np.ndarray | None = None
    print(f"{len(records)} images ({n_train} fit, {len(records) - n_train} held out)")
    for size in (int(s) for s in args.sizes.split(",")):
        feats = pooled_features(trunk, records, size)
        if noise is None:
            noise = np.random.default_rng(0).normal(size=feats.shape)
        for attr in ("shape", "colour", "scene"):
            if attr == "scene":
                values = sorted(set(scenes))
                present = [{s} for s in scenes]
            else:
                values = sorted({o[attr] for objs in objects for o in objs})
                present = [{o[attr] for o in objs} for objs in objects]
            for name, x in ((f"trunk @ {size} px", feats), ("noise", noise)):
                aucs = []
                for v in values:
                    labels = np.array([v in p for p in present])
                    auc = probe_auc(x, labels, n_train)
                    if auc is not None:
                        aucs.append(auc)
                print(f"{attr:7s} {name:16s} mean AUC {np.mean(aucs):.3f} over {len(aucs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
