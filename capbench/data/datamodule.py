"""CaptionDataModule: one LightningDataModule over any reader, split and view.

Views (see ``capbench.data.views``): ``images`` (image only), ``pairs`` (image + caption
tokens), ``classes`` (image + class + caption; class-balanced training batches for SJE),
``mlm`` (image + masked caption tokens) and ``triplets`` (hard triplets mined each round with the
model being trained, over the tf-idf relevance of a text field; ``capbench.data.triplets``). Records come from ``capbench.data.read`` or are
injected with ``records=``. The tokenizer (word vocabulary, Reed's char alphabet or a
sentencepiece model) is fitted on the training captions only.

Image size policy: every image is resized so its longest side is ``longest_side`` and then,
without ``crop`` and unless ``pad_to_square`` is False, padded (centred, with the normalisation mean, so padding is 0 after
normalisation) to a ``longest_side`` square. Padding rather than centre-cropping keeps the whole
image, which matters for retrieval and region captions near the border. With ``crop`` the
resized image is random-cropped (training) or centre-cropped (evaluation) to ``crop`` squared.
Either way batches stack.

Corrupt images: an item whose file cannot be decoded is dropped by the collate function,
logged once per file (by the main process), and counted; ``skipped_images`` is the running total seen by
the main process (workers report it through each batch's ``n_skipped``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from capbench.data.images import IMAGENET_MEAN, IMAGENET_STD, MultiViewTransform, build_transform
from capbench.data.records import CaptionedImage
from capbench.data.relevance import TextRelevance, build_text_relevance
from capbench.data.text import CharAlphabet, SentencePieceTokenizer, Tokenizer, WordVocab
from capbench.data.views import (
    ClassBalancedBatchSampler,
    ClassesDataset,
    ImagesDataset,
    MLMDataset,
    PairsDataset,
    collate_skip_none,
    mask_vocab_ids,
    report_skipped,
)

log = logging.getLogger("capbench.data")

VIEWS = ("images", "pairs", "classes", "mlm", "triplets")
TEXT_VIEWS = ("pairs", "classes", "mlm")  # the views that tokenize captions
TOKENIZERS = ("word", "char", "sentencepiece")
TRAIN = "train"  # the name under which the concatenated ``train_splits`` are known


class SkipCounter:
    """Thread-safe running total of skipped (corrupt) items."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        if n:
            with self._lock:
                self.total += int(n)


class CountingDataLoader(DataLoader):
    """A DataLoader that adds each batch's ``n_skipped`` to a counter and logs each corrupt
    file once, in the main process.

    Counting and logging here, not in the Dataset, is what makes them right with worker
    processes (a worker's counters and log-once sets die with it at the end of each epoch).
    """

    def __init__(self, *args: Any, skip_counter: SkipCounter | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skip_counter = skip_counter

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        for batch in super().__iter__():
            if isinstance(batch, dict):
                if self.skip_counter is not None:
                    self.skip_counter.add(batch.get("n_skipped", 0))
                report_skipped(batch.get("skipped", ()))
            yield batch


class CaptionDataModule(L.LightningDataModule):
    """Records of ``source`` at ``root`` served as ``view`` batches.

    Every batch is a dict with ``image`` (B, C, H, W), ``index`` (B,) (position in the split's
    record list, ``records(split)``), ``image_id`` (list[str]), ``n_skipped`` and ``skipped``
    (messages naming each corrupt file dropped from this batch); ``pairs``
    adds ``tokens`` (B, max_len), ``length``, ``caption``, ``caption_index``; ``classes`` adds
    ``label`` too; ``mlm`` adds ``tokens`` (masked input), ``original_tokens``, ``target``
    (-100 where not masked) and ``mask``.

    Text options: ``tokenizer`` is ``"word"`` (max_len 30 by default), ``"char"`` (201) or
    ``"sentencepiece"`` (``vocab_size``, ``sp_model_type``; model cached under
    ``tokenizer_dir``), or a ready tokenizer object. ``max_len=None`` picks Reed's length for the
    tokenizer. ``load_train_images=False``: training ``pairs`` batches carry no ``image`` (for
    models that train on cached frozen image features).
    """

    def __init__(
        self,
        source: str,
        root: str | Path,
        view: str = "images",
        batch_size: int = 32,
        num_workers: int = 0,
        longest_side: int = 128,
        crop: int | None = None,
        train_splits: Sequence[str] = ("train",),
        val_split: str | None = "val",
        test_split: str | None = "test",
        reader_options: dict[str, Any] | None = None,
        tokenizer: str | Tokenizer = "word",
        max_len: int | None = None,
        mask_prob: float = 0.15,
        records: dict[str, list[CaptionedImage]] | None = None,
        mask_vocab: Iterable[str | int] | None = None,
        replace_probs: tuple[float, float, float] = (0.8, 0.1, 0.1),
        min_count: int = 1,
        vocab_size: int | None = None,
        sp_model_type: str = "unigram",
        tokenizer_dir: str | Path | None = None,
        augment: bool | None = None,
        shift: int = 0,
        train_views: int = 1,
        class_balanced: bool = True,
        predict_split: str | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        drop_last: bool = False,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        seed: int = 0,
        pad_to_square: bool | None = None,
        k_relevant: int = 32,
        relevance_field: str = "regions",
        tfidf_options: dict[str, Any] | None = None,
        load_train_images: bool = True,
    ) -> None:
        super().__init__()
        if view not in VIEWS:
            raise ValueError(f"CaptionDataModule: view must be one of {VIEWS}, got {view!r}")
        if isinstance(tokenizer, str) and tokenizer not in (*TOKENIZERS, "sp"):
            raise ValueError(
                f"CaptionDataModule: tokenizer must be one of {TOKENIZERS} or a tokenizer object"
            )
        if train_views not in (1, 5, 10):
            raise ValueError("CaptionDataModule: train_views must be 1, 5 or 10")
        if train_views > 1 and crop is None:
            raise ValueError("CaptionDataModule: train_views > 1 needs crop")
        if train_views > 1 and shift:
            raise ValueError("CaptionDataModule: shift applies to one view, not train_views > 1")
        self.save_hyperparameters(ignore=["records", "tokenizer", "mask_vocab"])
        self.source = source
        self.root = Path(root)
        self.view = view
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.longest_side = longest_side
        self.crop = crop
        self.train_splits = tuple(train_splits)
        self.val_split = val_split
        self.test_split = test_split
        self.predict_split = predict_split if predict_split is not None else test_split
        self.reader_options = dict(reader_options or {})
        self.tokenizer_name = tokenizer if isinstance(tokenizer, str) else None
        self._tokenizer: Tokenizer | None = None if isinstance(tokenizer, str) else tokenizer
        if max_len is None:
            max_len = 201 if self.tokenizer_name == "char" else 30
        self.max_len = max_len
        self.mask_prob = mask_prob
        self.mask_vocab = None if mask_vocab is None else list(mask_vocab)
        self.replace_probs = replace_probs
        self.min_count = min_count
        self.vocab_size_option = vocab_size
        self.sp_model_type = sp_model_type
        self.tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir is not None else None
        self.augment = (view != "images") if augment is None else augment
        # random translations of the training images, in pixels (build_transform's ``shift``),
        # independent of ``augment``'s flips, which make a caption's "left of" wrong
        self.shift = shift
        self.train_views = train_views
        self.class_balanced = class_balanced
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.drop_last = drop_last
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.seed = seed
        self.pad_to_square = (crop is None) if pad_to_square is None else pad_to_square
        self.k_relevant = k_relevant
        self.relevance_field = relevance_field
        self.tfidf_options = dict(tfidf_options or {})
        self.load_train_images = load_train_images
        self._relevance: TextRelevance | None = None
        self._train_images: Dataset | None = None
        self._round: Any = None  # the last mined round (triplets view), reused within a step
        self._round_key: tuple[int, int, int] | None = None
        self._injected = records
        self._records: dict[str, list[CaptionedImage]] = {}
        self._raw: dict[str, list[CaptionedImage]] = {}  # one read per split, shared
        self._datasets: dict[str, Dataset] = {}
        self._skips = SkipCounter()

    # ------------------------------------------------------------------ records

    def records(self, split: str) -> list[CaptionedImage]:
        """Records of ``split`` (``"train"`` = the concatenated ``train_splits``), read once."""
        if split in self._records:
            return self._records[split]
        if split == TRAIN and self.train_splits != (TRAIN,):
            recs = [r for s in self.train_splits for r in self._read(s)]
        else:
            recs = self._read(split)
        self._records[split] = recs
        return recs

    def _read(self, split: str) -> list[CaptionedImage]:
        if split not in self._raw:
            self._raw[split] = self._read_uncached(split)
        return self._raw[split]

    def _read_uncached(self, split: str) -> list[CaptionedImage]:
        if self._injected is not None:
            if split not in self._injected:
                raise KeyError(
                    f"CaptionDataModule: split {split!r} not among the injected records "
                    f"({sorted(self._injected)}); set the split option to None to skip it"
                )
            return list(self._injected[split])
        from capbench.data import read

        return list(read(self.source, self.root, split, **self.reader_options))

    # ------------------------------------------------------------------ text

    @property
    def needs_text(self) -> bool:
        return self.view in TEXT_VIEWS

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer, fitted on the training captions at first use."""
        if self._tokenizer is None:
            self._tokenizer = self._fit_tokenizer()
        return self._tokenizer

    def _train_captions(self) -> list[str]:
        captions = [c for r in self.records(TRAIN) for c in r.captions]
        if not captions:
            raise ValueError(
                f"CaptionDataModule: no captions in the training split(s) {self.train_splits} "
                f"of {self.source!r} at {self.root}; the {self.view!r} view needs text"
            )
        return captions

    def _fit_tokenizer(self) -> Tokenizer:
        name = self.tokenizer_name
        if name == "char":
            return CharAlphabet()
        captions = self._train_captions()
        if name == "word":
            return WordVocab.build(
                captions, min_count=self.min_count, max_size=self.vocab_size_option
            )
        # sentencepiece, cached by a hash of the training text and options
        from capbench.cache_entry import read_cached
        from capbench.paths import cache_root

        size = self.vocab_size_option or 8000
        h = hashlib.sha256(f"{size}|{self.sp_model_type}|".encode())
        for c in captions:
            h.update(c.encode("utf-8") + b"\n")
        folder = self.tokenizer_dir or cache_root() / "tokenizers"
        prefix = folder / f"spm-{self.sp_model_type}-{size}-{h.hexdigest()[:16]}"
        model_file = Path(f"{prefix}.model")
        cached = read_cached(model_file, lambda: SentencePieceTokenizer.load(model_file))
        if cached is not None:
            return cached
        return SentencePieceTokenizer.train(
            captions, model_prefix=prefix, vocab_size=size, model_type=self.sp_model_type
        )

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def class_captions(self, split: str) -> dict[int, list[str]]:
        """Every caption of every image of each class in ``split`` (zero-shot class
        embeddings average the text embeddings of all of them, as Reed et al.)."""
        out: dict[int, list[str]] = {}
        for r in self.records(split):
            if r.label is None:
                raise ValueError(
                    f"class_captions: record {r.image_id} of split {split!r} has no label"
                )
            out.setdefault(int(r.label), []).extend(r.captions)
        return dict(sorted(out.items()))

    # ------------------------------------------------------------------ datasets

    def transform(self, train: bool) -> Any:
        if train and self.train_views > 1:
            return MultiViewTransform(
                self.crop,  # type: ignore[arg-type]
                views=self.train_views,
                longest_side=self.longest_side,
                mean=self.mean,
                std=self.std,
            )
        return build_transform(
            longest_side=self.longest_side,
            crop=self.crop,
            train=train and self.augment,
            mean=self.mean,
            std=self.std,
            pad_to_square=self.pad_to_square,
            shift=self.shift if train else 0,
        )

    def dataset(self, split: str, train: bool = False) -> Dataset:
        """The view's Dataset for ``split``; ``train`` selects augmentation and caption sampling."""
        key = f"{split}|{train}"
        if key in self._datasets:
            return self._datasets[key]
        recs = self.records(split)
        transform = self.transform(train)
        ds: Dataset
        if self.view in ("images", "triplets"):  # triplets: the images the rounds index into
            ds = ImagesDataset(recs, transform)
        elif self.view == "pairs":
            ds = PairsDataset(recs, transform, self.tokenizer, self.max_len, sample_caption=train)
            ds.load_images = self.load_train_images or not train
        elif self.view == "classes":
            ds = ClassesDataset(recs, transform, self.tokenizer, self.max_len, sample_caption=train)
        else:
            tok = self.tokenizer
            mask_ids = None if self.mask_vocab is None else mask_vocab_ids(tok, self.mask_vocab)
            ds = MLMDataset(
                recs,
                transform,
                tok,
                self.max_len,
                sample_caption=train,
                mask_prob=self.mask_prob,
                mask_ids=mask_ids,
                replace_probs=self.replace_probs,
                seed=self.seed,
            )
        self._datasets[key] = ds
        return ds

    def setup(self, stage: str | None = None) -> None:
        """Read the splits the stage needs and build their datasets (text fitted on train)."""
        if self.needs_text:
            _ = self.tokenizer
        if stage in (None, "fit") and self.view == "triplets":
            _ = self.relevance
        elif stage in (None, "fit"):
            self.dataset(TRAIN, train=True)
        if stage in (None, "fit", "validate") and self.val_split is not None:
            self.dataset(self.val_split)
        if stage in (None, "test") and self.test_split is not None:
            self.dataset(self.test_split)
        if stage in (None, "predict") and self.predict_split is not None:
            self.dataset(self.predict_split)

    # ------------------------------------------------------------------ loaders

    @property
    def skipped_images(self) -> int:
        """Corrupt images skipped so far, over every loader of this DataModule."""
        return self._skips.total

    def loader(self, split: str, train: bool = False, shuffle: bool | None = None) -> DataLoader:
        """A DataLoader over any split (feature extraction, retrieval databases, ...)."""
        ds = self.dataset(split, train=train)
        common: dict[str, Any] = {
            "num_workers": self.num_workers,
            "collate_fn": collate_skip_none,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
            "skip_counter": self._skips,
        }
        if train and self.view == "classes" and self.class_balanced:
            sampler = ClassBalancedBatchSampler(ds.labels, self.batch_size, seed=self.seed)  # type: ignore[attr-defined]
            return CountingDataLoader(ds, batch_sampler=sampler, **common)
        return CountingDataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=train if shuffle is None else shuffle,
            drop_last=self.drop_last and train,
            **common,
        )

    def train_dataloader(self) -> DataLoader:
        if self.view == "triplets":
            return self._triplet_loader()
        return self.loader(TRAIN, train=True)

    # ------------------------------------------------------------------ triplets view

    def train_images(self) -> Dataset:
        """The training images in record order, without augmentation (mining pools, whitening)."""
        if self._train_images is None:
            self._train_images = self.dataset(TRAIN, train=False)
        return self._train_images

    @property
    def relevance(self) -> TextRelevance:
        """tf-idf of the training split's ``relevance_field`` and its k-NN relevant sets."""
        if self._relevance is None:
            self._relevance = build_text_relevance(
                self.records(TRAIN),
                self.k_relevant,
                field=self.relevance_field,
                tfidf_options=self.tfidf_options,
                progress=True,
            )
        return self._relevance

    def set_triplet_source(self, images: Dataset, relevance: TextRelevance) -> None:
        """Serve triplets over these images and relevance instead of reading records (synthetic
        data, the GPU check); ``images[i]`` must be a dict with an ``"image"`` tensor."""
        if len(images) != len(relevance):  # type: ignore[arg-type]
            raise ValueError(f"{len(images)} images but {len(relevance)} relevance rows")  # type: ignore[arg-type]
        self._train_images, self._relevance, self._round = images, relevance, None

    @property
    def mining_stats(self) -> dict[str, float]:
        """Statistics of the last mined round (pool size, candidates, seconds)."""
        return dict(self._round.stats) if self._round is not None else {}

    def _triplet_loader(self) -> DataLoader:
        """The current round's batches, mined with the model the Trainer is fitting."""
        from capbench.data.triplets import TripletImages, collate_triplets, mine_round

        trainer = self.trainer
        if trainer is None:
            raise RuntimeError("the triplets view mines with the model: use it through a Trainer")
        model = trainer.lightning_module
        plan = model.mining_plan()
        step = int(trainer.global_step)
        key = (id(model), plan.round_of(step), step)
        if self._round is None or self._round_key != key:
            images, relevance = self.train_images(), self.relevance
            self._round = mine_round(model, images, relevance.relevant, plan.round_of(step))
            self._round_key = key
        return CountingDataLoader(
            TripletImages(self.train_images(), self._round.triplets),
            batch_size=plan.cfg.batch_size // plan.micro_batches,
            shuffle=False,  # already a random draw; keeps the round's batches as mined
            num_workers=self.num_workers,
            collate_fn=collate_triplets,
            skip_counter=self._skips,
            pin_memory=self.pin_memory,
        )

    def val_dataloader(self) -> DataLoader | list:
        return [] if self.val_split is None else self.loader(self.val_split)

    def test_dataloader(self) -> DataLoader | list:
        return [] if self.test_split is None else self.loader(self.test_split)

    def predict_dataloader(self) -> DataLoader | list:
        return [] if self.predict_split is None else self.loader(self.predict_split)


def record_images(
    records: Sequence[CaptionedImage], longest_side: int | None, pad_to_square: bool
) -> Dataset:
    """The ``images`` view of ``records``, in order and without augmentation: what a method
    embeds to evaluate (an item is None for an unreadable image)."""
    dm = CaptionDataModule(
        "records",
        ".",
        view="images",
        longest_side=longest_side,  # type: ignore[arg-type]
        pad_to_square=pad_to_square,
        augment=False,
        records={"eval": list(records)},
        val_split=None,
        test_split=None,
    )
    return dm.dataset("eval")
