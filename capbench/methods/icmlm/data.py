"""ICMLM's training data: an image, one of its captions with one concept token masked, the
concept tags of all its captions (TP_Postag) and its object categories (TP_Label).

Built on the shared ``CaptionDataModule`` (records, splits, image transforms, corrupt-image
policy); this adds the concept vocabulary (``capbench.data.concepts``) and the masking. A
training item draws its caption and masked position from torch's global generator, which the
checkpoints save (``RngState``), so a resumed run draws the same examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from capbench.data.concepts import caption_words, top_concepts, word_tags
from capbench.data.datamodule import TRAIN, CaptionDataModule
from capbench.data.records import CaptionedImage
from capbench.data.views import ImagesDataset, collate_skip_none
from capbench.methods.config import as_config
from capbench.methods.icmlm.config import ConceptsConfig
from capbench.methods.icmlm.text import concept_positions, load_tokenizer, single_token_words

IGNORE = -100


class ConceptCaptions:
    """Tokenised captions of a record list with their concept positions and tag vectors."""

    def __init__(
        self,
        records: Sequence[CaptionedImage],
        tokenizer: Any,
        concepts: Sequence[str],
        max_len: int,
        object_words: Sequence[str] = (),
    ) -> None:
        self.concepts = list(concepts)
        self.object_words = frozenset(object_words)  # category names: see examples(objects=)
        self.index = {w: i for i, w in enumerate(self.concepts)}
        self.mask_id = int(tokenizer.mask_token_id)
        self.pad_id = int(tokenizer.pad_token_id)
        self.max_len = max_len
        self.ids: list[list[list[int]]] = []  # record -> caption -> token ids
        self.positions: list[list[list[int]]] = []  # record -> caption -> concept positions
        self.tags: list[Tensor] = []  # record -> multi-hot over concepts (all its captions)
        for rec in records:
            caps = list(rec.captions)
            enc = (
                tokenizer(caps, truncation=True, max_length=max_len) if caps else {"input_ids": []}
            )
            ids = [list(x) for x in enc["input_ids"]]
            self.ids.append(ids)
            self.positions.append(
                [concept_positions(tokenizer.convert_ids_to_tokens(x), self.index) for x in ids]
            )
            tag = torch.zeros(len(self.concepts))
            for cap in caps:
                for w in caption_words(cap):
                    if w in self.index:
                        tag[self.index[w]] = 1.0
            self.tags.append(tag)
        self.keep_examples(0)

    def keep_examples(self, n: int, seed: int = 0) -> None:
        """From now on each record offers a fixed subset of ``n`` of its examples, chosen by
        ``seed`` (0: all of them again). The head-only epochs draw from such a subset, so the
        frozen encoder's cache soon holds every caption they mask: without it each head epoch
        draws new (caption, word) pairs and the encoder, not the head, sets the step's cost."""
        if n < 0:
            raise ValueError(f"examples to keep per image must be >= 0, got {n}")
        self.kept, self.kept_seed = int(n), int(seed)
        # (record, objects only) -> its subset, drawn once
        self._kept: dict[tuple[int, bool], list[tuple[int, int]]] = {}

    def masked(self, record: int, caption: int, position: int) -> tuple[Tensor, int]:
        """(ids with ``position`` replaced by [MASK], the concept index it held)."""
        ids = list(self.ids[record][caption])
        target = self.index[self.token(record, caption, position)]
        ids[position] = self.mask_id
        return torch.tensor(ids, dtype=torch.long), target

    def token(self, record: int, caption: int, position: int) -> str:
        return self._tokens[self.ids[record][caption][position]]

    def bind(self, tokenizer: Any) -> None:
        self._tokens = {i: t for t, i in tokenizer.get_vocab().items()}

    def examples(self, record: int, objects: bool = False) -> list[tuple[int, int]]:
        """Every (caption, position) of a record that can be masked, or the fixed subset of
        them that :meth:`keep_examples` set. ``objects``: only those whose token is one of the
        ``object_words`` (all of them where none is), the subset drawn from those."""
        every = [(c, p) for c, ps in enumerate(self.positions[record]) for p in ps]
        if objects:
            named = [(c, p) for c, p in every if self.token(record, c, p) in self.object_words]
            every = named or every
        if not self.kept or len(every) <= self.kept:
            return every
        key = (record, objects)
        if key not in self._kept:  # every training item asks: drawn once per record
            g = torch.Generator().manual_seed(self.kept_seed * 1_000_003 + record)
            keep = sorted(torch.randperm(len(every), generator=g)[: self.kept].tolist())
            self._kept[key] = [every[k] for k in keep]
        return self._kept[key]


class IcmlmTrainSet(Dataset):
    """One item per image per epoch: ``masks`` (caption, concept) pairs of it, each a caption
    with one concept masked (random ones in training; deterministic ones in evaluation)."""

    def __init__(
        self,
        images: ImagesDataset,
        text: ConceptCaptions,
        n_categories: int,
        sample: bool = True,
        masks: int = 1,
        object_word_share: float = 0.0,
    ) -> None:
        self.images = images
        self.text = text
        self.n_categories = n_categories
        self.sample = sample
        self.masks = masks
        self.object_word_share = object_word_share  # concepts.object_word_share (training)

    def __len__(self) -> int:
        return len(self.images)

    def draw(self, index: int) -> list[tuple[int, int]]:
        """``masks`` (caption, position) pairs of record ``index``: distinct while it has enough,
        then drawn again; [] when no caption holds a concept. With an ``object_word_share``
        the item's draws come, with that probability, from its object words alone."""
        share = self.object_word_share if self.sample else 0.0
        # no extra random draw at 0 or 1: the examples drawn at 0 stay those of before the option
        objects = share >= 1.0 or (share > 0.0 and float(torch.rand(())) < share)
        options = self.text.examples(index, objects=objects)
        if not options:
            return []
        n = len(options)
        if self.sample and self.masks == 1:  # one draw, as before the option: same examples
            picks = [int(torch.randint(n, ()))]
        elif self.sample:
            order = torch.randperm(n).tolist()
            picks = [order[j % n] for j in range(self.masks)]
        else:
            picks = [(index + j) % n for j in range(self.masks)]
        return [options[k] for k in picks]

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        item = self.images[index]
        if item is None:
            return None
        rec = self.images.records[index]
        ids, positions, targets, captions = [], [], [], []
        drawn = self.draw(index)
        for caption, position in drawn or [(0, 0)] * self.masks:
            if drawn:
                masked, target = self.text.masked(index, caption, position)
            else:  # no concept in any caption: the ICMLM loss ignores the item
                masked = torch.tensor(self.text.ids[index][0] if self.text.ids[index] else [0])
                target = IGNORE
            ids.append(masked)
            positions.append(position)
            targets.append(target)
            captions.append(caption)
        labels = torch.zeros(self.n_categories)
        labels[list(rec.labels or [])] = 1.0
        item.update(
            input_ids=ids,
            position=torch.tensor(positions),
            target=torch.tensor(targets),
            caption_index=torch.tensor(captions),
            postags=self.text.tags[index],
            labels=labels,
        )
        return item


MASK_KEYS = ("position", "target", "caption_index")


def collate_masked(pad_id: int) -> Any:
    """Flattens the items' masked captions into one batch of captions: ``input_ids`` padded to
    the longest, ``attention``, and ``mask_image`` (the batch row of each caption's image)."""

    def collate(batch: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
        ids = [x for b in batch if b is not None for x in b.pop("input_ids")]
        out = collate_skip_none(batch)
        if ids:
            n_images = len(out["index"])
            for key in MASK_KEYS:
                out[key] = out[key].reshape(-1)
            per_image = len(ids) // n_images
            out["mask_image"] = torch.arange(n_images).repeat_interleave(per_image)
            n = max(len(x) for x in ids)
            padded = torch.full((len(ids), n), pad_id, dtype=torch.long)
            attention = torch.zeros((len(ids), n), dtype=torch.long)
            for i, x in enumerate(ids):
                padded[i, : len(x)] = x
                attention[i, : len(x)] = 1
            out["input_ids"], out["attention"] = padded, attention
        return out

    return collate


class IcmlmDataModule(CaptionDataModule):
    """``CaptionDataModule`` (``images`` view) whose training batches are ICMLM examples."""

    def __init__(
        self,
        *args: Any,
        concept_options: ConceptsConfig | dict[str, Any] | None = None,
        text_encoder: str = "",
        text_max_len: int = 40,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("view", "images")
        super().__init__(*args, **kwargs)
        self.concepts_cfg = as_config(ConceptsConfig, concept_options, "concepts")
        self.text_encoder = text_encoder
        self.text_max_len = text_max_len
        self._text_tokenizer: Any = None
        self._concepts: list[str] | None = None
        self._captions: dict[str, ConceptCaptions] = {}

    @property
    def text_tokenizer(self) -> Any:
        if self._text_tokenizer is None:
            self._text_tokenizer = load_tokenizer(self.text_encoder)
        return self._text_tokenizer

    def lexicon_path(self) -> Path | None:
        lex = self.concepts_cfg.lexicon
        if lex is None:
            return None
        path = Path(lex)
        return path if path.is_absolute() else self.root / path

    @property
    def concepts(self) -> list[str]:
        """The K most frequent nouns/adjectives/verbs of the training captions that are one
        token of the text encoder."""
        if self._concepts is None:
            c = self.concepts_cfg
            captions = [cap for r in self.records(TRAIN) for cap in r.captions]
            tags = word_tags(captions, self.lexicon_path(), c.spacy_model)
            ranked = top_concepts(captions, tags, 10**9, c.tags, strict=c.lexicon is not None)
            self._concepts = single_token_words(self.text_tokenizer, ranked)[: c.k]
        return self._concepts

    @property
    def categories(self) -> list[str]:
        """The object categories (TP_Label), as the COCO reader's ``instances`` read them."""
        recs = self.records(TRAIN)
        cats = recs[0].meta.get("categories") if recs else None
        if cats is None:
            raise ValueError(
                f"{self.root}: the records carry no object categories; read COCO with "
                "reader_options {instances: true} (annotations/instances_*.json)"
            )
        return list(cats)

    def concept_captions(self, split: str) -> ConceptCaptions:
        if split not in self._captions:
            cc = ConceptCaptions(
                self.records(split),
                self.text_tokenizer,
                self.concepts,
                self.text_max_len,
                object_words=self.categories,
            )
            cc.bind(self.text_tokenizer)
            self._captions[split] = cc
        return self._captions[split]

    def example_set(self, split: str, train: bool) -> IcmlmTrainSet:
        images = self.dataset(split, train=train)
        assert isinstance(images, ImagesDataset)
        masks = self.concepts_cfg.masks_per_image if train else 1
        return IcmlmTrainSet(
            images,
            self.concept_captions(split),
            len(self.categories),
            sample=train,
            masks=masks,
            object_word_share=self.concepts_cfg.object_word_share,
        )

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if stage in (None, "fit"):
            _ = self.concepts, self.categories

    def train_dataloader(self) -> Any:
        from capbench.data.datamodule import CountingDataLoader

        return CountingDataLoader(
            self.example_set(TRAIN, train=True),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=self.drop_last,
            num_workers=self.num_workers,
            collate_fn=collate_masked(int(self.text_tokenizer.pad_token_id)),
            skip_counter=self._skips,
        )

    def example_loader(self, split: str) -> Any:
        """Held-out examples in order, one deterministic mask per image (evaluation)."""
        from torch.utils.data import DataLoader

        return DataLoader(
            self.example_set(split, train=False),
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_masked(int(self.text_tokenizer.pad_token_id)),
        )
