"""What a trained ICMLM model is checked for on held-out captions: masked-token accuracy
(against always answering the most frequent concept, and against the same model given another
held-out image, which shows how much of the accuracy the image carries) and, for ``att-fc``,
whether its attention peaks on the object the masked word names (against the chance of a
uniformly random cell).

An attention peak counts as on the object when the centre of the arg-max cell of the map lies
inside a box of the masked word's category (the COCO instances; on scenes, the generator's own
object boxes). Only masked words that are a category name of the image's objects are scored.
Two baselines: chance, per example the fraction of cells whose centre lies inside such a box (a
uniformly random cell); and the position prior, each example's peak cell scored on the boxes of
every other scored example. The second is the one a claim of grounding must beat: objects sit
near the centre more often than in a corner, so an attention that always picks the centre cell
lands on the object far more often than a random cell without looking at the image (measured on
scenes: README, "The attention check").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from capbench.methods.icmlm.data import IGNORE, IcmlmDataModule


@dataclass
class HeldOut:
    """Per-example results on the held-out captions."""

    correct: list[bool] = field(default_factory=list)
    correct_other_image: list[bool] = field(default_factory=list)  # the batch's next image
    # the right word's probability higher with its own image than with the batch's next one:
    # 1, 0, or 0.5 for a tie (the likelihood side of "does the image count", which the
    # arg-max accuracies hide when the image moves probability without changing the top word)
    own_image_preferred: list[float] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    # the masked word is an object category's name (COCO's categories; on scenes a shape)
    names_object: list[bool] = field(default_factory=list)
    # how many annotated object instances the image has (COCO instances; on scenes its shapes)
    n_objects: list[int] = field(default_factory=list)
    # att-fc, category words with a box only: each attention map (flattened row-major, summing
    # to 1) and which cells lie on the named object (flattened); the peak cells, peaks, peak
    # weights and chance derive from them
    maps: list[np.ndarray] = field(default_factory=list)
    inside: list[np.ndarray] = field(default_factory=list)
    grid: tuple[int, int] | None = None  # the attention map's (h, w)
    examples: list[dict[str, Any]] = field(default_factory=list)  # for the figures

    @property
    def peak_cells(self) -> list[int]:
        """Per scored example: the attention map's arg-max cell (row-major)."""
        return [int(m.argmax()) for m in self.maps]

    @property
    def peaks(self) -> list[bool]:
        """Per scored example: does the attention's peak cell lie on the named object."""
        return [bool(m[c]) for c, m in zip(self.peak_cells, self.inside, strict=True)]

    @property
    def peak_weights(self) -> list[float]:
        """Per scored example: the attention's weight at its peak cell. 1 is all the attention
        on one cell (a softmax that saturated there passes almost no gradient to move it)."""
        return [float(m.max()) for m in self.maps]

    @property
    def chance(self) -> list[float]:
        """Per scored example: the share of cells on the named object (a random cell's odds)."""
        return [float(np.mean(m)) for m in self.inside]


def box_mask(
    boxes: list[tuple[float, float, float, float]],
    size: tuple[int, int],
    image_side: int,
    grid: tuple[int, int],
) -> np.ndarray:
    """``(h, w)`` booleans: cells whose centre is inside one of ``boxes`` (pixels of an image of
    ``size`` (W, H), resized so its longest side is ``image_side`` and padded to a centred
    square, as the model saw it)."""
    w_img, h_img = size
    scale = image_side / max(w_img, h_img)
    pad_x, pad_y = (image_side - w_img * scale) / 2, (image_side - h_img * scale) / 2
    h, w = grid
    cy = (np.arange(h) + 0.5) / h * image_side
    cx = (np.arange(w) + 0.5) / w * image_side
    inside = np.zeros((h, w), dtype=bool)
    for x, y, bw, bh in boxes:
        x0, y0 = x * scale + pad_x, y * scale + pad_y
        x1, y1 = x0 + bw * scale, y0 + bh * scale
        inside |= ((cy >= y0) & (cy <= y1))[:, None] & ((cx >= x0) & (cx <= x1))[None, :]
    return inside


@torch.no_grad()
def evaluate_heldout(
    model: Any, dm: IcmlmDataModule, split: str, max_images: int, keep_examples: int = 0
) -> HeldOut:
    """Masked-token predictions of ``model`` (an ICMLM mode) on ``split``'s captions, one
    deterministic masked concept per image, for the first ``max_images`` images."""
    from torch.utils.data import DataLoader, Subset

    from capbench.methods.icmlm.data import collate_masked

    model.eval()
    data = dm.example_set(split, train=False)
    n = min(max_images, len(data))
    loader = DataLoader(
        Subset(data, range(n)),
        batch_size=dm.batch_size,
        collate_fn=collate_masked(int(dm.text_tokenizer.pad_token_id)),
    )
    records = dm.records(split)
    concepts = model.concept_words
    out = HeldOut()
    for batch in loader:
        batch = {k: (v.to(model.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        fmap = model.head_map(batch["image"])
        logits, att = model.predict_concepts(batch, fmap)
        pred = logits.argmax(-1)
        # the caption with another image of the batch: what the text alone (and a wrong image)
        # gets right; a one-image batch has no other image and is left out of this control
        paired = fmap.shape[0] > 1
        if paired:
            other_logits = model.predict_concepts(batch, fmap.roll(1, dims=0))[0]
            other = other_logits.argmax(-1)
            own_lp, other_lp = logits.float().log_softmax(-1), other_logits.float().log_softmax(-1)
        for j, index in enumerate(batch["index"].tolist()):
            target = int(batch["target"][j])
            if target == IGNORE:
                continue
            out.correct.append(bool(pred[j] == target))
            if paired:
                out.correct_other_image.append(bool(other[j] == target))
                a, b = float(own_lp[j, target]), float(other_lp[j, target])
                out.own_image_preferred.append(1.0 if a > b else 0.5 if a == b else 0.0)
            out.targets.append(target)
            rec = records[index]
            cats = rec.meta.get("categories") or []
            word = concepts[target]
            out.names_object.append(word in cats)
            out.n_objects.append(len(rec.meta.get("instances") or []))
            if att is None or word not in cats:
                continue
            c = cats.index(word)
            boxes = [tuple(b[1:]) for b in rec.meta.get("instances", []) if b[0] == c]
            if not boxes:
                continue
            with Image.open(rec.image_path) as im:
                size = im.size
            grid = out.grid = (int(att.shape[1]), int(att.shape[2]))
            inside = box_mask(boxes, size, dm.longest_side, grid)
            a = att[j].float().cpu().numpy()
            out.maps.append(a.reshape(-1))
            out.inside.append(inside.reshape(-1))
            if len(out.examples) < keep_examples:
                out.examples.append(
                    {
                        "image_path": rec.image_path,
                        "image_id": rec.image_id,
                        "caption": rec.captions[int(batch["caption_index"][j])],
                        "word": word,
                        "predicted": concepts[int(pred[j])],
                        "attention": a,
                        "boxes": boxes,
                    }
                )
    return out


def most_frequent_concept(dm: IcmlmDataModule) -> int:
    """The concept most often masked in the training captions (the trivial predictor)."""
    cc = dm.concept_captions("train")
    counts: Counter[int] = Counter()
    for r in range(len(cc.ids)):
        for caption, position in cc.examples(r):
            counts[cc.index[cc.token(r, caption, position)]] += 1
    return counts.most_common(1)[0][0]


def _accuracy_split(held: HeldOut, masks: list[tuple[str, np.ndarray]]) -> dict[str, dict]:
    """Accuracy (own image, and another where scored) and count of each named subset."""
    correct = np.array(held.correct, dtype=bool)
    other = np.array(held.correct_other_image, dtype=bool)
    out: dict[str, dict[str, float | int]] = {}
    for name, mask in masks:
        if not mask.any():
            continue
        row: dict[str, float | int] = {
            "n": int(mask.sum()),
            "acc": 100.0 * float(correct[mask].mean()),
        }
        if len(other) == len(correct):
            row["acc_other_image"] = 100.0 * float(other[mask].mean())
        out[name] = row
    return out


def accuracy_by_word_kind(held: HeldOut) -> dict[str, dict[str, float | int]]:
    """Held-out accuracy split by whether the masked word is an object category's name (a shape
    on scenes), with its own image and with another: a diagnostic of where the image helps,
    since which object the caption names cannot be read from the rest of the caption."""
    kinds = np.array(held.names_object, dtype=bool)
    return _accuracy_split(held, [("object_words", kinds), ("other_words", ~kinds)])


def accuracy_by_object_count(held: HeldOut) -> dict[str, dict[str, float | int]]:
    """Held-out accuracy split by how many objects the image has (none, one, several), with
    its own image and with another. Why: in a one-object image a masked colour or size can be
    read off the image without knowing which object the caption names; with several, the head
    must first find the named object, which needs the trunk to recognise it. Where the image
    helps only in one-object images, what is missing is recognition, not the head's reading."""
    count = np.array(held.n_objects, dtype=np.int64)
    if len(count) != len(held.correct):
        return {}
    return _accuracy_split(
        held,
        [("no_objects", count == 0), ("one_object", count == 1), ("several_objects", count > 1)],
    )


def attention_peak_weight(held: HeldOut) -> dict[str, float]:
    """Quartiles of the attention's weight at its peak cell over the scored examples, beside a
    uniform map's (1 / cells). Why: an attention near 1 everywhere has saturated on one cell,
    where the softmax passes almost no gradient, so training cannot move it to the object; one
    near uniform is a pooling, whose peak cell is noise (scenes README, sariyildiz2020)."""
    if not held.peak_weights or held.grid is None:
        return {}
    q1, median, q3 = np.quantile(np.asarray(held.peak_weights), [0.25, 0.5, 0.75])
    return {
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "uniform": 1.0 / (held.grid[0] * held.grid[1]),
    }


def attention_object_share(held: HeldOut) -> dict[str, float]:
    """The mean share of the attention (percent of its weight) on the named object's cells,
    beside the same maps' share on the *other* scored examples' objects (their position prior,
    as :func:`position_prior` is the arg-max's) and a uniform map's (the cells' share on the
    object). Why: the arg-max check asks whether the single heaviest cell is on the object; an
    attention that moves weight toward the object without moving its peak there shows only
    here. A diagnostic beside the peak rate, not a claim (scenes README, sariyildiz2020)."""
    if len(held.maps) < 2:
        return {}
    maps = np.stack(held.maps).astype(np.float64)  # (n, cells)
    hits = np.stack(held.inside).astype(np.float64)
    own = (maps * hits).sum(axis=1)
    others = (maps @ hits.sum(axis=0) - own) / (len(maps) - 1)  # every other example's boxes
    return {
        "own": 100.0 * float(own.mean()),
        "position_prior": 100.0 * float(others.mean()),
        "uniform": 100.0 * float(np.mean(held.chance)),
    }


def position_prior(peak_cells: list[int], inside: list[np.ndarray]) -> float:
    """How often each example's peak cell lies on the masked object of the *other* scored
    examples (mean over examples of the hit rate over all the others): what the attention's
    preference for some cells scores with no regard to the image. Needs two examples."""
    if len(peak_cells) < 2:
        raise ValueError("the position prior needs at least two scored examples")
    hits = np.stack(inside).astype(np.float64)  # (n, cells)
    cells = np.asarray(peak_cells)
    rows = np.arange(len(cells))
    others = hits.sum(axis=0)[cells] - hits[rows, cells]  # leave the example's own boxes out
    return float(np.mean(others / (len(cells) - 1)))


def heldout_metrics(held: HeldOut, most_frequent: int) -> dict[str, float]:
    """Accuracies in percent; attention rates in percent when att-fc examples were scored."""
    if not held.correct:
        raise ValueError("no held-out caption has a maskable concept")
    out = {
        "mlm_acc": 100.0 * float(np.mean(held.correct)),
        "mlm_acc_most_frequent": 100.0 * float(np.mean(np.array(held.targets) == most_frequent)),
    }
    if held.correct_other_image:
        out["mlm_acc_other_image"] = 100.0 * float(np.mean(held.correct_other_image))
        out["mlm_image_preference"] = 100.0 * float(np.mean(held.own_image_preferred))
    if held.peak_cells:
        out["mlm_attention_peak"] = 100.0 * float(np.mean(held.peaks))
        out["mlm_attention_chance"] = 100.0 * float(np.mean(held.chance))
        if len(held.peak_cells) >= 2:
            out["mlm_attention_position_prior"] = 100.0 * position_prior(
                held.peak_cells, held.inside
            )
    return out
