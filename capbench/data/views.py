"""Datasets for each DataModule view, the skip-and-count collate, and class-balanced batches.

A view reads only ``CaptionedImage`` records. Every item is a dict with ``image``, ``index``
(position in the split's record list) and ``image_id``; views add text fields. An item whose
image cannot be decoded is ``None``: the collate function drops it and reports ``n_skipped``,
so a corrupt file never kills a DataLoader worker.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from capbench.data.images import CorruptImageError, load_rgb
from capbench.data.records import CaptionedImage
from capbench.data.text import Tokenizer

log = logging.getLogger("capbench.data")

Item = dict[str, Any]
Transform = Callable[[Any], torch.Tensor]

IGNORE_INDEX = -100  # target value of unmasked positions (torch.nn.CrossEntropyLoss default)

# Corrupt files met by this process since the last collate. Fetching a batch's items and
# collating them happen in the same process (a worker or the main one), so the collate function
# drains exactly this batch's failures into ``batch["skipped"]``, and the main process can log
# each file once however many workers meet it.
_PENDING_SKIPS: list[str] = []
_MAX_PENDING = 10_000  # bound the list when a Dataset is used without collate_skip_none

# Files already logged as corrupt by this process: each is logged once, not once per epoch.
_REPORTED: set[str] = set()
# Every report, in order, so that a caller can take the ones made during its work (the runner:
# the files a row skipped, for its record); bounded like the pending list.
_MET: list[str] = []


def report_skipped(messages: Iterable[str]) -> None:
    """Log each corrupt-image message once per process (called in the main process)."""
    for msg in messages:
        if len(_MET) < _MAX_PENDING:
            _MET.append(msg)
        if msg not in _REPORTED:
            _REPORTED.add(msg)
            log.warning("skipping corrupt image: %s", msg)


def skipped_mark() -> int:
    """A mark in the reports, for :func:`skipped_since`."""
    return len(_MET)


def skipped_since(mark: int) -> list[str]:
    """The distinct corrupt-image messages reported since ``mark``, sorted."""
    return sorted(set(_MET[mark:]))


def note_corrupt(record: CaptionedImage, err: CorruptImageError) -> None:
    """Remember a corrupt image for the collate function of the batch it was met in (a Dataset
    returning None for it then; ``drain_skipped`` hands the messages over)."""
    if len(_PENDING_SKIPS) < _MAX_PENDING:
        _PENDING_SKIPS.append(f"record {record.image_id}: {err}")
    log.debug("corrupt image of record %s: %s", record.image_id, err)


def drain_skipped() -> list[str]:
    """The corrupt-image messages met since the last call (a collate function calls it)."""
    skipped = list(_PENDING_SKIPS)
    _PENDING_SKIPS.clear()
    return skipped


def load_image_or_none(record: CaptionedImage, transform: Transform) -> torch.Tensor | None:
    """The record's image through ``transform``, or None for a corrupt one (noted for the
    batch's ``collate_skip_none``), so a Dataset never raises on a bad file in a worker."""
    try:
        img = load_rgb(record.image_path)
    except CorruptImageError as err:
        note_corrupt(record, err)
        return None
    return transform(img)


def _tokens(tokenizer: Tokenizer, text: str, max_len: int) -> torch.Tensor:
    return torch.tensor(tokenizer.encode(text, max_len=max_len), dtype=torch.long)


class ImagesDataset(Dataset):
    """``images`` view: one item per record (feature extraction, retrieval databases)."""

    def __init__(self, records: Sequence[CaptionedImage], transform: Transform) -> None:
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    # False: items carry no ``image`` (a model that trains on cached frozen image features reads
    # only the text and ``index``; set by CaptionDataModule(load_train_images=False))
    load_images = True

    def _base(self, index: int) -> Item | None:
        record = self.records[index]
        if not self.load_images:
            return {"index": index, "image_id": record.image_id}
        image = load_image_or_none(record, self.transform)
        if image is None:
            return None
        return {"image": image, "index": index, "image_id": record.image_id}

    def __getitem__(self, index: int) -> Item | None:
        return self._base(index)


class PairsDataset(ImagesDataset):
    """``pairs`` view: (image, caption).

    Training (``sample_caption=True``): one item per image, a caption drawn at random on each
    access, so each epoch sees a different caption. Evaluation: one item per (image, caption)
    pair, in record then caption order; ``caption_index`` says which. Records with no caption
    are left out.
    """

    def __init__(
        self,
        records: Sequence[CaptionedImage],
        transform: Transform,
        tokenizer: Tokenizer,
        max_len: int,
        sample_caption: bool,
    ) -> None:
        super().__init__(records, transform)
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.sample_caption = sample_caption
        with_text = [i for i, r in enumerate(records) if r.captions]
        if sample_caption:
            self.items: list[tuple[int, int]] = [(i, -1) for i in with_text]
        else:
            self.items = [(i, j) for i in with_text for j in range(len(records[i].captions))]

    def __len__(self) -> int:
        return len(self.items)

    def _caption_index(self, record_index: int, caption_index: int) -> int:
        if caption_index >= 0:
            return caption_index
        # torch's RNG: seeded per worker and per epoch by the DataLoader, so draws differ
        # between epochs and are reproducible under lightning.seed_everything.
        n = len(self.records[record_index].captions)
        return int(torch.randint(n, ()).item())

    def _with_caption(self, item_index: int) -> tuple[Item, str] | None:
        record_index, caption_index = self.items[item_index]
        item = self._base(record_index)
        if item is None:
            return None
        j = self._caption_index(record_index, caption_index)
        caption = self.records[record_index].captions[j]
        item["caption"] = caption
        item["caption_index"] = j
        return item, caption

    def __getitem__(self, index: int) -> Item | None:
        got = self._with_caption(index)
        if got is None:
            return None
        item, caption = got
        tokens = _tokens(self.tokenizer, caption, self.max_len)
        item["tokens"] = tokens
        item["length"] = int((tokens != self.tokenizer.pad_id).sum())
        return item


class ClassesDataset(PairsDataset):
    """``classes`` view (Reed's SJE): image, its class ``label`` and one of its captions.

    One item per image; training draws the caption at random, evaluation takes the first.
    The class-level captions for zero-shot evaluation come from
    ``CaptionDataModule.class_captions(split)``.
    """

    def __init__(
        self,
        records: Sequence[CaptionedImage],
        transform: Transform,
        tokenizer: Tokenizer,
        max_len: int,
        sample_caption: bool,
    ) -> None:
        for r in records:
            if r.label is None:
                raise ValueError(
                    f"classes view: record {r.image_id} ({r.image_path}) has no class label"
                )
        super().__init__(records, transform, tokenizer, max_len, sample_caption=True)
        if not sample_caption:
            self.items = [(i, 0) for i, _ in self.items]
        self.labels = [int(records[i].label) for i, _ in self.items]  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Item | None:
        item = super().__getitem__(index)
        if item is None:
            return None
        item["label"] = self.labels[index]
        return item


class MLMDataset(PairsDataset):
    """``mlm`` view (ICMLM): image and caption tokens with masked positions.

    ``tokens`` is the model input (masked), ``target`` the original id at masked positions and
    ``IGNORE_INDEX`` elsewhere, ``mask`` marks the masked positions. A position is maskable
    when it is not a special token and, with ``mask_ids`` (concept masking: the ids of the
    maskable words, e.g. ICMLM's most frequent nouns/adjectives/verbs), when its id is in that
    set. Each maskable position is masked with probability ``mask_prob``, and at least one is
    masked whenever any exists (``mask_prob=0`` masks exactly one: one concept per caption).
    A masked position becomes ``<mask>`` / a random token / itself with ``replace_probs``
    (BERT: 0.8 / 0.1 / 0.1). Evaluation (``sample_caption=False``) masks with a generator
    seeded by the item index, so validation losses are comparable between epochs.
    """

    def __init__(
        self,
        records: Sequence[CaptionedImage],
        transform: Transform,
        tokenizer: Tokenizer,
        max_len: int,
        sample_caption: bool,
        mask_prob: float = 0.15,
        mask_ids: Iterable[int] | None = None,
        replace_probs: tuple[float, float, float] = (0.8, 0.1, 0.1),
        seed: int = 0,
    ) -> None:
        super().__init__(records, transform, tokenizer, max_len, sample_caption)
        if tokenizer.mask_id is None:
            raise ValueError(
                "mlm view: the tokenizer has no <mask> token (use word or sentencepiece)"
            )
        if not 0.0 <= mask_prob <= 1.0:
            raise ValueError(f"mlm view: mask_prob must be in [0, 1], got {mask_prob}")
        if len(replace_probs) != 3 or abs(sum(replace_probs) - 1.0) > 1e-6:
            raise ValueError(
                f"mlm view: replace_probs must be 3 numbers summing to 1: {replace_probs}"
            )
        self.mask_prob = mask_prob
        self.replace_probs = tuple(float(p) for p in replace_probs)
        self.seed = seed
        self.special_ids = torch.tensor(sorted(tokenizer.special_ids), dtype=torch.long)
        self.mask_ids = (
            None if mask_ids is None else torch.tensor(sorted(set(mask_ids)), dtype=torch.long)
        )
        regular = sorted(set(range(tokenizer.vocab_size)) - set(tokenizer.special_ids))
        self.random_ids = torch.tensor(regular, dtype=torch.long)

    def mask_tokens(
        self, tokens: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input ids, targets, mask) for one caption's ids; see the class docstring."""
        maskable = ~torch.isin(tokens, self.special_ids)
        if self.mask_ids is not None:
            maskable &= torch.isin(tokens, self.mask_ids)
        mask = maskable & (torch.rand(tokens.shape, generator=generator) < self.mask_prob)
        if maskable.any() and not mask.any():
            candidates = torch.nonzero(maskable).flatten()
            pick = candidates[torch.randint(len(candidates), (), generator=generator)]
            mask[pick] = True
        target = torch.where(mask, tokens, torch.full_like(tokens, IGNORE_INDEX))
        inputs = tokens.clone()
        u = torch.rand(tokens.shape, generator=generator)
        p_mask, p_random, _ = self.replace_probs
        to_mask = mask & (u < p_mask)
        to_random = mask & (u >= p_mask) & (u < p_mask + p_random)
        inputs[to_mask] = int(self.mask_id)
        if to_random.any() and len(self.random_ids):
            draws = torch.randint(
                len(self.random_ids), (int(to_random.sum()),), generator=generator
            )
            inputs[to_random] = self.random_ids[draws]
        return inputs, target, mask

    @property
    def mask_id(self) -> int:
        return int(self.tokenizer.mask_id)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Item | None:
        item = super().__getitem__(index)
        if item is None:
            return None
        generator = None
        if not self.sample_caption:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        inputs, target, mask = self.mask_tokens(item["tokens"], generator)
        item["original_tokens"] = item["tokens"]
        item["tokens"] = inputs
        item["target"] = target
        item["mask"] = mask
        return item


# --------------------------------------------------------------------------- collate


def collate_skip_none(batch: Sequence[Item | None]) -> dict[str, Any]:
    """Stack items, dropping ``None`` (corrupt images) and reporting how many in ``n_skipped``
    and which in ``skipped`` (messages naming record and file).

    Tensors are stacked (a list when their shapes differ), numbers become tensors, strings and
    anything else become lists. A
    batch where every image was corrupt has ``index`` of length 0 and no ``image`` key.
    """
    items = [b for b in batch if b is not None]
    skipped = drain_skipped()
    out: dict[str, Any] = {"n_skipped": len(batch) - len(items), "skipped": skipped}
    if not items:
        out["index"] = torch.empty(0, dtype=torch.long)
        out["image_id"] = []
        return out
    for key in items[0]:
        values = [it[key] for it in items]
        first = values[0]
        if isinstance(first, torch.Tensor):
            same = all(v.shape == first.shape for v in values)
            # images of different sizes (no padding to a square) stay a list, embedded one by one
            out[key] = torch.stack(values) if same else values
        elif isinstance(first, bool):
            out[key] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(first, int):
            out[key] = torch.tensor(values, dtype=torch.long)
        elif isinstance(first, float):
            out[key] = torch.tensor(values, dtype=torch.float32)
        else:
            out[key] = values
    return out


# --------------------------------------------------------------------------- sampling


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """Batches of distinct classes, one item per class (Reed et al.'s SJE mini-batches).

    Each batch takes the ``batch_size`` classes with the most images not yet used this epoch
    (ties broken at random), then the next image of each from a per-class shuffled queue. So
    with balanced classes every image is used exactly once per epoch, and otherwise before any
    repeats, while no batch holds two images of one class. An epoch has
    ``ceil(len(labels) / batch_size)`` batches. Deterministic for a given ``seed`` and
    ``set_epoch`` (Lightning calls it each epoch). Reed et al.'s code draws classes uniformly
    with replacement; this keeps their one-image-per-class batches with even coverage.

    Under DDP (``num_replicas`` processes, this one ``rank``) every rank runs the same draw for
    a global batch of ``num_replicas x batch_size`` distinct classes and keeps its own slice: the
    ranks' batches of one step never share a class (the SJE loss treats every other caption in
    a batch as a wrong class, and gathered batches stay one image per class), each image is used
    once per epoch over all ranks, and every rank has the same number of batches,
    ``ceil(len(labels) / (num_replicas x batch_size))``. With fewer classes than
    ``num_replicas x batch_size``, each rank's batch shrinks to ``classes // num_replicas``.
    Lightning cannot inject its DistributedSampler into a batch sampler like this one: a
    Trainer using it under DDP needs ``use_distributed_sampler=False``.
    """

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("ClassBalancedBatchSampler: batch_size must be >= 1")
        if len(labels) == 0:
            raise ValueError("ClassBalancedBatchSampler: no items")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"ClassBalancedBatchSampler: need num_replicas >= 1 and 0 <= rank < "
                f"num_replicas, got num_replicas={num_replicas}, rank={rank}"
            )
        self.labels = [int(x) for x in labels]
        by_class: dict[int, list[int]] = {}
        for i, y in enumerate(self.labels):
            by_class.setdefault(y, []).append(i)
        self.by_class = by_class
        self.classes = sorted(by_class)
        if len(self.classes) < num_replicas:
            raise ValueError(
                f"ClassBalancedBatchSampler: {len(self.classes)} classes cannot give "
                f"{num_replicas} ranks a class each per step"
            )
        self.batch_size = min(batch_size, len(self.classes) // num_replicas)
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / (self.batch_size * self.num_replicas))

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        queues: dict[int, list[int]] = {}
        for y in self.classes:
            queues[y] = list(self.by_class[y])
            rng.shuffle(queues[y])
        step = self.batch_size * self.num_replicas
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        for _ in range(len(self)):
            order = sorted(self.classes, key=lambda y: (-len(queues[y]), rng.random()))
            batch = []
            for y in order[:step]:  # every rank draws the whole step, so queues stay in sync
                if not queues[y]:  # this class is used up: start another pass over it
                    queues[y] = list(self.by_class[y])
                    rng.shuffle(queues[y])
                batch.append(queues[y].pop())
            yield batch[mine]


def mask_vocab_ids(tokenizer: Tokenizer, mask_vocab: Iterable[str | int]) -> list[int]:
    """Ids of the maskable tokens: ints are ids already; a word maps to its own id, or to the
    ids of its pieces for a subword tokenizer."""
    ids: set[int] = set()
    for tok in mask_vocab:
        if isinstance(tok, (int, np.integer)):
            ids.add(int(tok))
            continue
        idx = tokenizer.token_id(tok)
        if idx is not None:
            ids.add(idx)
        else:
            ids.update(tokenizer.encode(tok, max_len=None))
    return sorted(ids - set(tokenizer.special_ids))
