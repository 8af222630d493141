"""CaptionDataModule: every view's batches, train-only text, corrupt images skipped and counted."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import capbench.data
from capbench.data.datamodule import CaptionDataModule
from capbench.data.text import CharAlphabet, SentencePieceTokenizer, WordVocab
from capbench.data.views import IGNORE_INDEX, ClassBalancedBatchSampler


def _dm(records, view, **kw):
    kw.setdefault("batch_size", 4)
    return CaptionDataModule("test", "/unused", view=view, records=records, **kw)


def _all(loader):
    return list(loader)


def test_images_view_batches(tiny_records):
    dm = _dm(tiny_records, "images", longest_side=64)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) >= {"image", "index", "image_id", "n_skipped"}
    assert batch["image"].shape == (3, 3, 64, 64) and batch["image"].dtype == torch.float32
    assert batch["index"].tolist() == [0, 1, 2]
    assert batch["image_id"] == [r.image_id for r in tiny_records["val"]]
    seen = [i for b in dm.train_dataloader() for i in b["image_id"]]
    assert sorted(seen) == sorted(r.image_id for r in tiny_records["train"])
    # feature extraction over any split, in order
    ordered = [i for b in dm.loader("train") for i in b["image_id"]]
    assert ordered == [r.image_id for r in tiny_records["train"]]
    dm.setup("predict")
    assert [i for b in dm.predict_dataloader() for i in b["image_id"]] == [
        r.image_id for r in tiny_records["test"]
    ]


def test_crop_gives_crop_sized_batches(tiny_records):
    dm = _dm(tiny_records, "images", longest_side=64, crop=48)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["image"].shape[1:] == (3, 48, 48)


def test_pairs_view_train_samples_eval_enumerates(tiny_records):
    dm = _dm(tiny_records, "pairs", longest_side=32)
    dm.setup("fit")
    train = _all(dm.train_dataloader())
    assert sum(len(b["index"]) for b in train) == 6  # one caption per image per epoch
    b = train[0]
    assert b["tokens"].shape == (len(b["index"]), 30) and b["tokens"].dtype == torch.long
    vocab = dm.tokenizer
    for cap, toks, idx, j in zip(b["caption"], b["tokens"], b["index"], b["caption_index"]):
        assert cap == tiny_records["train"][int(idx)].captions[int(j)]
        assert vocab.decode(toks.tolist()) == " ".join(cap.lower().split())
    val = _all(dm.val_dataloader())
    pairs = [(int(i), int(j)) for b in val for i, j in zip(b["index"], b["caption_index"])]
    assert pairs == [(i, j) for i in range(3) for j in range(3)]  # all pairs, in order
    assert val[0]["length"].tolist()[0] == len(val[0]["caption"][0].split())


def test_pairs_caption_sampling_varies_between_epochs(tiny_records):
    dm = _dm(tiny_records, "pairs", longest_side=16, batch_size=6)
    dm.setup("fit")
    torch.manual_seed(0)
    draws = {tuple(b["caption_index"].tolist()) for _ in range(6) for b in dm.train_dataloader()}
    assert len(draws) > 1


def test_vocabulary_is_fitted_on_training_captions_only(tiny_records):
    dm = _dm(tiny_records, "pairs", longest_side=16)
    dm.setup("test")  # even at test time the vocabulary comes from the training split
    vocab = dm.tokenizer
    assert isinstance(vocab, WordVocab)
    assert "zebra" not in vocab.stoi and "cat" in vocab.stoi
    test_tokens = torch.cat([b["tokens"] for b in dm.test_dataloader()])
    assert (test_tokens == vocab.unk_id).sum() == 9  # one "zebra" per test caption
    assert dm.vocab_size == len(vocab)


def test_classes_view_balanced_batches_and_class_captions(tiny_records):
    dm = _dm(tiny_records, "classes", longest_side=16, batch_size=3)
    dm.setup("fit")
    batches = _all(dm.train_dataloader())
    assert len(batches) == 2  # ceil(6 images / 3 classes per batch)
    for b in batches:
        assert sorted(b["label"].tolist()) == [0, 1, 2]  # one image per class
        for idx, lab in zip(b["index"], b["label"]):
            assert tiny_records["train"][int(idx)].label == int(lab)
    # every image used once per epoch before any repeats
    assert sorted(int(i) for b in batches for i in b["index"]) == list(range(6))
    caps = dm.class_captions("train")
    assert sorted(caps) == [0, 1, 2]
    assert len(caps[1]) == 6 and caps[1][0] == "a cup of coffee on a table"
    val = next(iter(dm.val_dataloader()))
    assert val["label"].tolist() == [r.label for r in tiny_records["val"]]
    assert val["tokens"].shape == (3, 30)


def test_class_balanced_sampler_is_seeded_and_epoch_dependent():
    labels = [i % 5 for i in range(40)]
    s = ClassBalancedBatchSampler(labels, batch_size=4, seed=1)
    first = list(s)
    assert first == list(ClassBalancedBatchSampler(labels, batch_size=4, seed=1))
    s.set_epoch(1)
    assert list(s) != first
    for batch in first:
        assert len({labels[i] for i in batch}) == 4
    counts = torch.bincount(torch.tensor([i for b in first for i in b]), minlength=40)
    assert counts.max() == 1  # 10 batches x 4 = 40 items, each image once


def test_mlm_view_bert_masking(tiny_records):
    dm = _dm(tiny_records, "mlm", longest_side=16, mask_prob=0.5, batch_size=6)
    dm.setup("fit")
    vocab = dm.tokenizer
    b = next(iter(dm.train_dataloader()))
    assert set(b) >= {"image", "index", "image_id", "tokens", "target", "mask", "original_tokens"}
    mask, target, orig, inp = b["mask"], b["target"], b["original_tokens"], b["tokens"]
    assert mask.any(dim=1).all()  # every caption has a masked position
    assert (target[mask] == orig[mask]).all()
    assert (target[~mask] == IGNORE_INDEX).all()
    assert (inp[~mask] == orig[~mask]).all()
    assert not mask[orig == vocab.pad_id].any()  # padding is never masked
    # validation masks are deterministic, so losses compare across epochs
    v1 = next(iter(dm.val_dataloader()))
    v2 = next(iter(dm.val_dataloader()))
    assert torch.equal(v1["tokens"], v2["tokens"]) and torch.equal(v1["mask"], v2["mask"])


def test_mlm_replacement_proportions(tiny_records):
    dm = _dm(tiny_records, "mlm", longest_side=16, mask_prob=1.0)
    ds = dm.dataset("train", train=True)
    toks = torch.tensor(dm.tokenizer.encode("a cup of coffee on a table a red cup", max_len=None))
    g = torch.Generator().manual_seed(0)
    n_mask = n_keep = n_total = 0
    for _ in range(400):
        inp, _target, mask = ds.mask_tokens(toks, g)
        assert mask.all()
        n_total += len(toks)
        n_mask += int((inp == dm.tokenizer.mask_id).sum())
        n_keep += int((inp == toks).sum())
    assert abs(n_mask / n_total - 0.8) < 0.03
    assert abs(n_keep / n_total - 0.1) < 0.03  # plus the rare random draw of the same id


def test_mlm_concept_masking(tiny_records):
    dm = _dm(tiny_records, "mlm", longest_side=16, mask_prob=0.0, mask_vocab=["cup", "cat"])
    dm.setup("fit")
    vocab = dm.tokenizer
    concept = {vocab.stoi["cup"], vocab.stoi["cat"]}
    for b in dm.train_dataloader():
        for orig, mask in zip(b["original_tokens"], b["mask"]):
            has = any(int(t) in concept for t in orig)
            assert int(mask.sum()) == (1 if has else 0)  # mask_prob 0: exactly one concept
            assert all(int(t) in concept for t in orig[mask])


def test_char_and_sentencepiece_tokenizers(tiny_records, tmp_path, caplog):
    dm = _dm(tiny_records, "pairs", longest_side=16, tokenizer="char")
    dm.setup("fit")
    assert isinstance(dm.tokenizer, CharAlphabet) and dm.max_len == 201
    assert next(iter(dm.val_dataloader()))["tokens"].shape[1] == 201
    dm = _dm(
        tiny_records,
        "mlm",
        longest_side=16,
        tokenizer="sentencepiece",
        vocab_size=60,
        tokenizer_dir=tmp_path / "tok",
    )
    dm.setup("fit")
    tok = dm.tokenizer
    assert isinstance(tok, SentencePieceTokenizer) and tok.vocab_size <= 60
    assert len(list((tmp_path / "tok").glob("*.model"))) == 1
    # trained on training captions only: "z" occurs only in test captions, so it is unknown
    unk = tok.token_id("<unk>")
    assert unk in tok.encode("zebra", max_len=None) and unk not in tok.encode("a cat", max_len=None)
    b = next(iter(dm.val_dataloader()))  # mlm evaluation enumerates all 9 (image, caption) pairs
    assert b["tokens"].shape == (4, 30) and b["mask"].any(dim=1).all()
    # a second DataModule reuses the cached model
    again = _dm(
        tiny_records,
        "pairs",
        tokenizer="sentencepiece",
        vocab_size=60,
        tokenizer_dir=tmp_path / "tok",
    )
    assert again.tokenizer.model_file == tok.model_file
    # a damaged cached model is trained again, not a failure deep in sentencepiece
    Path(tok.model_file).write_bytes(b"not a sentencepiece model")
    with caplog.at_level(logging.WARNING, logger="capbench.cache"):
        retrained = _dm(
            tiny_records,
            "pairs",
            tokenizer="sentencepiece",
            vocab_size=60,
            tokenizer_dir=tmp_path / "tok",
        ).tokenizer
    assert f"damaged cache entry {tok.model_file}" in caplog.text
    assert retrained.encode("a cat", max_len=None) == tok.encode("a cat", max_len=None)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_corrupt_images_are_skipped_and_counted(corrupt_records, caplog, num_workers):
    dm = _dm(corrupt_records, "pairs", longest_side=32, num_workers=num_workers, batch_size=3)
    dm.setup("fit")
    with caplog.at_level(logging.WARNING, logger="capbench.data"):
        for epoch in range(2):
            seen = [i for b in dm.train_dataloader() for i in b["image_id"]]
            good = [
                r.image_id for r in corrupt_records["train"] if not r.image_id.startswith("bad")
            ]
            assert sorted(seen) == sorted(good)
            assert dm.skipped_images == 2 * (epoch + 1)
    # logged once per file by the main process, not once per epoch or per worker
    messages = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(messages) == 2
    assert any("cut.jpg" in m and "bad-0" in m for m in messages)
    assert any("junk.jpg" in m and "bad-1" in m for m in messages)


def test_all_corrupt_batch_is_empty_not_an_error(corrupt_records):
    bad = [r for r in corrupt_records["train"] if r.image_id.startswith("bad")]
    dm = _dm({"train": bad}, "images", val_split=None, test_split=None, batch_size=2)
    batches = _all(dm.loader("train"))
    assert len(batches) == 1 and len(batches[0]["index"]) == 0 and batches[0]["n_skipped"] == 2
    assert [m.split(":")[0] for m in batches[0]["skipped"]] == ["record bad-0", "record bad-1"]
    assert dm.skipped_images == 2


def test_setup_reads_through_capbench_data_read(tiny_records, monkeypatch):
    calls = []

    def fake_read(name, root, split=None, **options):
        calls.append((name, str(root), split, options))
        return tiny_records[split]

    monkeypatch.setattr(capbench.data, "read", fake_read)
    dm = CaptionDataModule(
        "cub",
        "/data/cub",
        view="classes",
        train_splits=("train", "val"),
        val_split="val",
        test_split=None,
        reader_options={"allow_missing_images": True},
        longest_side=16,
    )
    dm.setup("fit")
    assert len(dm.records("train")) == 9  # train + val concatenated
    assert ("cub", "/data/cub", "train", {"allow_missing_images": True}) in calls
    assert sorted(c[2] for c in calls) == ["train", "val"]  # each split read once


def test_missing_injected_split_is_a_clear_error(tiny_records):
    dm = _dm({"train": tiny_records["train"]}, "images")
    with pytest.raises(KeyError, match="val"):
        dm.setup("fit")


def test_trains_under_lightning(tiny_records, tmp_path):
    import lightning as L

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(3, 1)
            self.seen = 0

        def training_step(self, batch, batch_idx):
            self.seen += len(batch["index"])
            feats = batch["image"].mean(dim=(2, 3))
            return self.layer(feats).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    dm = _dm(tiny_records, "classes", longest_side=16, batch_size=3, val_split=None)
    model = Probe()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    assert model.seen == 12


def test_datasets_pickle_for_spawned_workers(tiny_records, tmp_path):
    """macOS/Windows start workers by spawn, which pickles the Dataset with its transform and
    tokenizer (the sentencepiece processor itself does not pickle)."""
    import pickle

    dm = _dm(
        tiny_records,
        "mlm",
        longest_side=16,
        tokenizer="sentencepiece",
        vocab_size=60,
        tokenizer_dir=tmp_path,
    )
    ds = dm.dataset("val")
    clone = pickle.loads(pickle.dumps(ds))
    a, b = ds[0], clone[0]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["tokens"], b["tokens"])
