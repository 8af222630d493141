"""Zero-shot classification and retrieval on unseen classes (Reed et al. 2016, section 5.1).

A class is represented by the mean text embedding of *all* its test captions. Top-1 is the
per-class mean accuracy of ``argmax_c <image, class>`` over the test images; AP@50 ranks every
test image by compatibility with each class and counts the share of the top 50 that belong to
it, averaged over classes. Both come from ``capbench.eval.metrics`` (``zero_shot_top1``,
``ap_at_50``), so any method that embeds images and captions into one space is scored the same
way. Figure 4's "test sentences per class" axis is :func:`sentences_per_class_curve`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capbench.eval.metrics import ap_at_50, class_text_embeddings, zero_shot_top1
from capbench.eval.protocols._common import resolve_dataset_root


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section: the dataset and its class splits."""

    name: str = "cub"  # the reader: cub (CUB-200-2011 + cvpr2016_cub) or flowers
    root: str = "cub"  # absolute, or relative to $CAPBENCH_DATA / the scenes folder
    # section 5: after cross-validation, train+val classes train the final model
    train_splits: tuple[str, ...] = ("train", "val")
    test_split: str = "test"  # the unseen classes: 50 on CUB, 20 on Flowers
    reader_options: dict[str, Any] = field(default_factory=dict)


DATA_CARDS = {"cub": "data_cards/cub.md", "flowers": "data_cards/flowers.md"}


def dataset_root(data: DataConfig, data_root: Path) -> Path:
    """``data.root`` (absolute, or under ``data_root``); a missing folder names the data card."""
    card = DATA_CARDS.get(data.name, "data_cards/README.md")
    return resolve_dataset_root(data.root, data_root, data.name, card)


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` section."""

    ap_k: int = 50  # section 5.1: AP@50
    # Figure 4 (right): test sentences per class; empty = not drawn
    sentences_per_class: tuple[int, ...] = ()
    draws: int = 10  # Figure 4: 10 random draws per point
    seed: int = 0  # fixed: every row draws the same sentence subsets


def class_embeddings(
    caption_emb: np.ndarray | torch.Tensor, caption_labels: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, (C, D) mean caption embedding per class)``, classes sorted; the mean is
    ``capbench.eval.metrics.class_text_embeddings``."""
    labels = np.asarray(caption_labels, dtype=np.int64)
    classes, position = np.unique(labels, return_inverse=True)
    means = class_text_embeddings(torch.as_tensor(caption_emb), torch.from_numpy(position))
    return classes, means.numpy()


def _image_indices(classes: np.ndarray, image_labels: Sequence[int]) -> np.ndarray:
    position = {int(c): i for i, c in enumerate(classes)}
    missing = sorted({int(y) for y in image_labels} - set(position))
    if missing:
        raise ValueError(f"test images of classes {missing[:5]} have no caption to embed")
    return np.array([position[int(y)] for y in image_labels], dtype=np.int64)


def score_zero_shot(
    image_emb: np.ndarray | torch.Tensor,
    image_labels: Sequence[int],
    caption_emb: np.ndarray | torch.Tensor,
    caption_labels: Sequence[int],
    ap_k: int = 50,
) -> dict[str, float]:
    """``{"top1", "ap50"}`` (percent) of images against class-mean caption embeddings."""
    classes, means = class_embeddings(caption_emb, caption_labels)
    y = _image_indices(classes, image_labels)
    img = np.asarray(torch.as_tensor(image_emb).detach().cpu().double())
    return {
        "top1": zero_shot_top1(img, means, y),
        "ap50": ap_at_50(img, means, y, k=ap_k),
        "ap50_single": single_sentence_ap(img, image_labels, caption_emb, caption_labels, ap_k),
    }


def chance_top1(image_labels: Sequence[int]) -> float:
    """Top-1 of a random guess: 100 / number of test classes."""
    return 100.0 / len(set(int(y) for y in image_labels))


def sentences_per_class_curve(
    image_emb: np.ndarray | torch.Tensor,
    image_labels: Sequence[int],
    caption_emb: np.ndarray | torch.Tensor,
    caption_labels: Sequence[int],
    counts: Sequence[int],
    draws: int = 10,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Figure 4 (right): top-1 when each class is the mean of ``n`` random test captions, for
    each ``n`` in ``counts`` (capped at the class's captions), ``draws`` draws: x, y (mean), sd."""
    emb = np.asarray(torch.as_tensor(caption_emb).detach().cpu().double())
    labels = np.asarray(caption_labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    ys: list[float] = []
    sds: list[float] = []
    for n in counts:
        scores = []
        for _ in range(draws):
            keep = np.concatenate(
                [rng.choice(idx, size=min(n, idx.size), replace=False) for idx in by_class.values()]
            )
            scores.append(score_zero_shot(image_emb, image_labels, emb[keep], labels[keep])["top1"])
        ys.append(float(np.mean(scores)))
        sds.append(float(np.std(scores)))
    return {"x": [float(n) for n in counts], "y": ys, "sd": sds}


def single_sentence_ap(
    image_emb: np.ndarray | torch.Tensor,
    image_labels: Sequence[int],
    caption_emb: np.ndarray | torch.Tensor,
    caption_labels: Sequence[int],
    k: int = 50,
) -> float:
    """AP@k (percent) with each test caption alone as the query (section 5.1's single-sentence
    retrieval): the share of its top-k images of its class, averaged over captions. Ties go to
    the lower image index, as ``ap_at_50``."""
    from capbench.eval.metrics import topk_deterministic

    img = torch.as_tensor(image_emb).detach().cpu().double()
    cap = torch.as_tensor(caption_emb).detach().cpu().double()
    y_img = torch.as_tensor(list(image_labels), dtype=torch.long)
    y_cap = torch.as_tensor(list(caption_labels), dtype=torch.long)
    _, idx = topk_deterministic(cap @ img.T, min(k, img.shape[0]))
    return float(100.0 * (y_img[idx] == y_cap.unsqueeze(1)).double().mean())
