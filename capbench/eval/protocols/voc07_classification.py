"""VOC07 classification with linear SVMs on frozen features (Goyal et al. 2019's benchmark).

The transfer protocol ICMLM (Sariyildiz et al. 2020) and the self-supervision literature use:
a frozen encoder embeds VOC 2007 trainval and test, one linear SVM per class is fitted on
trainval (C chosen by 3-fold cross-validation), and the score is mean AP on test with each
class's "difficult" images ignored. The SVMs and AP are ``capbench.eval.linear_probe`` and
``capbench.eval.metrics.voc07_map``; this module reads the split into label matrices and ties
them together, so every method (and the cross-method suite) is scored on identical labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from capbench.data.records import CaptionedImage
from capbench.eval.linear_probe import DEFAULT_C_GRID, voc07_svm_probe
from capbench.eval.protocols._common import resolve_dataset_root

DATA_CARD = "data_cards/voc2007.md"
PARALLEL_FROM_TRAIN = 1000  # train images from which score_features fits classes on every core


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section."""

    name: str = "voc2007"
    root: str = "voc2007"  # absolute, or relative to $CAPBENCH_DATA / the scenes folder
    train_split: str = "trainval"  # Goyal et al.: SVMs trained on trainval
    test_split: str = "test"
    reader_options: dict[str, Any] = field(default_factory=dict)
    # a CPU budget knob: the SVMs see the first N train images in the split file's order (None:
    # all of them, as Goyal et al.); the test split is always scored whole
    max_train_images: int | None = None


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` section: the SVM settings (``capbench.eval.linear_probe.voc07_svm_probe``)."""

    c_grid: tuple[float, ...] = DEFAULT_C_GRID  # our reading: Goyal et al. sweep a wider grid
    n_folds: int = 3  # Goyal et al.: 3-fold cross-validation on trainval
    normalize: bool = True  # features L2-normalised before the SVM
    # reported: "map" (all-points AP, as scikit-learn), "map_11pt" (VOC2007 devkit) or
    # "map_interp" (interpolated all-points AP: Goyal et al.'s svm_helper.calculate_ap, the
    # benchmark ICMLM and the suite follow)
    metric: str = "map_interp"
    seed: int = 0


@dataclass
class VocData:
    """Train and test records with their (N, C) label and difficult matrices."""

    train: list[CaptionedImage]
    test: list[CaptionedImage]
    classes: list[str]
    train_labels: np.ndarray
    train_difficult: np.ndarray
    test_labels: np.ndarray
    test_difficult: np.ndarray
    dataset: dict[str, Any]


def dataset_root(data: DataConfig, data_root: Path) -> Path:
    """``data.root`` (absolute, or under ``data_root``); a missing folder names the data card."""
    return resolve_dataset_root(data.root, data_root, "VOC 2007", DATA_CARD)


def label_matrices(
    records: Sequence[CaptionedImage], n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) present and difficult-only indicators from the reader's ``labels`` / ``meta``."""
    labels = np.zeros((len(records), n_classes), dtype=np.int64)
    difficult = np.zeros((len(records), n_classes), dtype=bool)
    for i, r in enumerate(records):
        labels[i, list(r.labels or [])] = 1
        difficult[i, list(r.meta.get("difficult", []))] = True
    return labels, difficult


def class_names(record: CaptionedImage) -> list[str]:
    """The class list a reader attached: VOC's ``meta["classes"]``, or COCO's instance
    ``meta["categories"]`` (the same multi-label problem; ``coco_classification``)."""
    for key in ("classes", "categories"):
        if key in record.meta:
            return list(record.meta[key])
    raise ValueError(
        f"record {record.image_id}: no class list (meta 'classes' or 'categories'); read COCO "
        "with reader_options {instances: true}"
    )


def build_voc_data(
    train: Sequence[CaptionedImage],
    test: Sequence[CaptionedImage],
    dataset: dict[str, Any] | None = None,
) -> VocData:
    """Label matrices over the class list the reader found (the same for both splits)."""
    if not train or not test:
        raise ValueError(f"VOC07 needs train and test images, got {len(train)} and {len(test)}")
    classes = class_names(train[0])
    if class_names(test[0]) != classes:
        raise ValueError("train and test list different classes")
    tr, trd = label_matrices(train, len(classes))
    te, ted = label_matrices(test, len(classes))
    return VocData(list(train), list(test), classes, tr, trd, te, ted, dict(dataset or {}))


def load_voc_data(data: DataConfig, data_root: Path) -> VocData:
    """Read the train and test splits named by ``data``."""
    from capbench.data import read
    from capbench.data.fingerprint import dataset_fingerprint

    root = dataset_root(data, data_root)
    train = read(data.name, root, data.train_split, **data.reader_options)
    test = read(data.name, root, data.test_split, **data.reader_options)
    info = {"name": data.name, "root": str(root), "fingerprint": dataset_fingerprint(root)}
    if data.max_train_images is not None:
        if data.max_train_images < 1:
            raise ValueError(
                f"voc07 data.max_train_images must be >= 1, got {data.max_train_images}"
            )
        info["train_images"] = f"first {data.max_train_images} of {len(train)}"
        train = train[: data.max_train_images]
    return build_voc_data(train, test, info)


def score_features(
    train_feats: Any,
    test_feats: Any,
    voc: VocData,
    cfg: EvalConfig = EvalConfig(),
    n_jobs: int | Literal["auto"] | None = "auto",
) -> dict[str, Any]:
    """Per-class linear SVMs on the features; ``mAP`` (percent, ``cfg.metric``) with details.
    ``n_jobs`` spreads the classes over joblib workers (the same result; worth it from about a
    thousand train images, below that the workers' start-up, ~3 s once per process, costs more
    than it saves); ``"auto"``: every core from ``PARALLEL_FROM_TRAIN`` train images, else one."""
    if n_jobs == "auto":
        n_jobs = -1 if len(voc.train_labels) >= PARALLEL_FROM_TRAIN else None
    if cfg.metric not in ("map", "map_11pt", "map_interp"):
        raise ValueError(
            f"eval.metric must be 'map', 'map_11pt' or 'map_interp', got {cfg.metric!r}"
        )
    result = voc07_svm_probe(
        train_feats,
        voc.train_labels,
        test_feats,
        voc.test_labels,
        train_difficult=voc.train_difficult,
        test_difficult=voc.test_difficult,
        c_grid=cfg.c_grid,
        n_folds=cfg.n_folds,
        seed=cfg.seed,
        normalize=cfg.normalize,
        n_jobs=n_jobs,
    )
    result["mAP"] = float(result[cfg.metric])
    result["classes"] = list(voc.classes)
    return result
