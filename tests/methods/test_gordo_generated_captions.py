"""gordo2017's generated-captions row (Table 1, row 7): which captioner it reads, that a caption
is projected into the relevance's tf-idf space, and the row-link helpers the row shares with the
suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from capbench.bench.linked_rows import linked_rows
from capbench.data.tfidf import record_document
from capbench.methods.protocol import RowContext
from capbench.methods.semantic_retrieval import generated_captions, rows
from capbench.methods.semantic_retrieval.config import row_config

LINK = {"kind": "paper_row", "paper": "mopuri2017", "row": "show_and_tell"}


@pytest.fixture()
def ctx(tmp_path: Path) -> RowContext:
    return RowContext(workdir=tmp_path / "work", seed=0, profile="ci", data_root=tmp_path)


def test_linked_rows_finds_every_link_in_a_config():
    config = {
        "row": {"kind": "generated_captions", "captioner": LINK},
        "encoder": {"kind": "paper_row", "paper": "gordo2017", "row": "proposed_v_v"},
        "list": [{"kind": "paper_row", "paper": "mopuri2017", "row": "show_and_tell"}],
        "incomplete": {"kind": "paper_row", "paper": "reed2016"},  # no row: not a link
    }
    assert linked_rows(config) == [("gordo2017", "proposed_v_v"), ("mopuri2017", "show_and_tell")]
    assert linked_rows({"row": {"kind": "tfidf"}}) == []


def test_the_benchmark_rows_link_to_mopuris_show_and_tell():
    from capbench.bench.config import resolve_config

    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "gordo2017"
    for profile in ("scenes", "ci"):
        config = resolve_config(bench / f"generated_captions_tfidf.{profile}.yaml")
        assert linked_rows(config) == [("mopuri2017", "show_and_tell")]
    paper = resolve_config(bench / "generated_captions_tfidf.paper.yaml")
    assert linked_rows(paper) == [] and "row.captioner" in paper["requires"]


def test_an_unset_or_missing_captioner_is_a_clear_error(ctx, tmp_path):
    with pytest.raises(ValueError, match=r"row\.captioner is not set"):
        generated_captions.captioner_checkpoint(None, ctx)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*nope\.ckpt"):
        generated_captions.captioner_checkpoint(str(tmp_path / "nope.ckpt"), ctx)
    with pytest.raises(ValueError, match="expected \\{kind: paper_row"):
        generated_captions.captioner_checkpoint({"paper": "mopuri2017"}, ctx)


def test_captions_equal_to_the_region_phrases_recover_the_relevance(
    semantic_eval_data, ctx, tmp_path, monkeypatch
):
    # a "captioner" that writes each image's own region phrases is the text oracle: the row
    # projects captions into the relevance's tf-idf space, so it must score 100 everywhere
    ev = semantic_eval_data
    ckpt = tmp_path / "show_and_tell.ckpt"
    ckpt.write_bytes(b"not read: caption_images is replaced below")
    monkeypatch.setattr(
        generated_captions,
        "caption_images",
        lambda path, records: {r.image_id: record_document(r, "regions") for r in records},
    )
    cfg = row_config({"row": {"kind": "generated_captions", "captioner": str(ckpt)}})
    res = rows.KINDS["generated_captions"](cfg, ctx, ev)
    oracle = rows.KINDS["text_oracle"](row_config({"row": {"kind": "text_oracle"}}), ctx, ev)
    assert res.metrics == pytest.approx(oracle.metrics)
    assert res.extra["captioner"] == str(ckpt)
    assert res.extra["distinct_captions"] > 1 and "undefined_metrics" not in res.extra

    # one caption for every image: every database image ties, PCC is undefined and left out
    monkeypatch.setattr(
        generated_captions,
        "caption_images",
        lambda path, records: dict.fromkeys((r.image_id for r in records), "a red circle"),
    )
    tied = rows.KINDS["generated_captions"](cfg, ctx, ev)
    assert "pcc_auc" not in tied.metrics and tied.metrics["us"] == pytest.approx(50.0)
    assert "pcc_auc" in tied.extra["undefined_metrics"]


def test_cached_captions_are_read_back_and_a_damaged_entry_is_a_miss(tmp_path, caplog):
    """A whole cache entry is the captions; a cut one is deleted and the captioner is loaded to
    caption again (here a file that is no captioner, so that load is what fails)."""
    from capbench.data.records import CaptionedImage
    from capbench.methods.checkpoint_kind import CheckpointKindError

    checkpoint = tmp_path / "show_and_tell.ckpt"
    checkpoint.write_bytes(b"not a checkpoint")
    records = [CaptionedImage(str(i), f"{i}.jpg", "test") for i in range(2)]
    cache = generated_captions._cache_file(checkpoint, ["0", "1"])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text('{"0": "a red circle", "1": "a blue square"}')
    assert generated_captions.caption_images(checkpoint, records) == {
        "0": "a red circle",
        "1": "a blue square",
    }
    cache.write_text('{"0": "a red circ')
    with pytest.raises(CheckpointKindError, match="not a checkpoint torch can read"):
        generated_captions.caption_images(checkpoint, records)
    assert f"damaged cache entry {cache}" in caplog.text and not cache.exists()
