"""COCO multi-label classification with linear SVMs on frozen features (ICMLM's supplementary).

The same problem as VOC07 (``voc07_classification``), on COCO's 80 object categories: one
linear SVM per category fitted on the train split's features, C by 3-fold cross-validation, mean
AP over categories on the test split. The labels are the categories of the image's instance
annotations (the COCO reader with ``instances: true``); COCO has no "difficult" flag, so no
image is ignored. Our reading of the supplementary's setup (its text was not read): train on
COCO train2014, test on val2014 (the official splits), AP as in the VOC07 protocol (Goyal et
al.'s interpolated AP). The scenes profile uses Karpathy's train / test splits of the scenes COCO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capbench.eval.protocols._common import resolve_dataset_root
from capbench.eval.protocols.voc07_classification import VocData, build_voc_data

DATA_CARD = "data_cards/coco.md"


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section of the COCO multi-label probe."""

    name: str = "coco"
    root: str = "coco"  # absolute, or relative to $CAPBENCH_DATA / the scenes folder
    train_split: str = "train"  # our reading: COCO train2014 trains the SVMs
    test_split: str = "val"  # and val2014 scores them (2014 test has no annotations)
    reader_options: dict[str, Any] = field(
        default_factory=lambda: {"splits": "official", "instances": True}
    )
    max_train_images: int | None = None  # a CPU budget knob (first N of the train split)
    max_test_images: int | None = None


def load_coco_labels(data: DataConfig, data_root: Path) -> VocData:
    """Train and test records of COCO with their (N, 80) category matrices."""
    from capbench.data import read
    from capbench.data.fingerprint import dataset_fingerprint

    if not data.reader_options.get("instances"):
        raise ValueError("the COCO probe needs the instance labels: reader_options.instances")
    root = resolve_dataset_root(data.root, data_root, "COCO", DATA_CARD)
    train = read(data.name, root, data.train_split, **data.reader_options)
    test = read(data.name, root, data.test_split, **data.reader_options)
    train = train[: data.max_train_images] if data.max_train_images else train
    test = test[: data.max_test_images] if data.max_test_images else test
    info = {
        "name": data.name,
        "root": str(root),
        "fingerprint": dataset_fingerprint(root),
        "splits": [data.train_split, data.test_split],
    }
    return keep_scorable_classes(build_voc_data(train, test, info))


def keep_scorable_classes(data: VocData) -> VocData:
    """Only the categories with positives and negatives in train and positives in test: an SVM
    needs both, an AP needs a positive. On full COCO all 80 qualify; on a subset (scenes, a
    capped split) the others are listed in ``dataset["dropped_classes"]``, never scored as 0."""
    import numpy as np

    n_tr, n_te = len(data.train), len(data.test)
    pos_tr, pos_te = data.train_labels.sum(0), data.test_labels.sum(0)
    keep = (pos_tr > 0) & (pos_tr < n_tr) & (pos_te > 0)
    if not keep.any():
        raise ValueError(f"no category has train and test positives ({n_tr} / {n_te} images)")
    dropped = [c for c, k in zip(data.classes, keep, strict=True) if not k]
    cols = np.flatnonzero(keep)
    return VocData(
        data.train,
        data.test,
        [data.classes[i] for i in cols],
        data.train_labels[:, cols],
        data.train_difficult[:, cols],
        data.test_labels[:, cols],
        data.test_difficult[:, cols],
        {**data.dataset, "dropped_classes": dropped},
    )
