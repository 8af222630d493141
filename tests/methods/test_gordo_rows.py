"""gordo2017 row kinds through their typed configs: the rows that need no model (random, text
oracle, tf-idf proxies, annotators), the wiring of the model rows, the shared training folder,
and the benchmark's own configs on the tiny scenes data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from capbench.eval.protocols import semantic_retrieval as protocol
from capbench.methods.protocol import RowContext
from capbench.methods.semantic_retrieval import rows
from capbench.methods.semantic_retrieval.config import row_config

torch.set_num_threads(1)
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gordo2017"


def _row(**row):
    return row_config({"row": row})


@pytest.fixture()
def ctx(tmp_path: Path) -> RowContext:
    return RowContext(workdir=tmp_path / "work", seed=0, profile="scenes", data_root=tmp_path)


def _expected_random_ndcg(ev, rs: list[int]) -> np.ndarray:
    """E[NDCG@R] of a uniformly random ranking: E[DCG@R] = mean relevance x sum of discounts."""
    x = ev.tfidf_images
    db = x[: ev.n_database]
    disc = 1.0 / np.log2(np.arange(2, max(rs) + 2))
    per_query = []
    for q in ev.queries:
        rel = np.delete((db @ x[q].T).toarray().ravel(), q)
        ideal = np.sort(rel)[::-1]
        per_query.append([rel.mean() * disc[:r].sum() / (ideal[:r] * disc[:r]).sum() for r in rs])
    return np.mean(per_query, axis=0)


def test_text_oracle_is_100_everywhere(semantic_eval_data, ctx):
    ev = semantic_eval_data
    res = rows.KINDS["text_oracle"](_row(kind="text_oracle"), ctx, ev)
    assert res.metrics == pytest.approx({"ndcg_auc": 100.0, "pcc_auc": 100.0, "us": 100.0})
    assert res.n_scored == 20
    assert res.curves["ndcg_at_r"]["x"] == [1.0, 2.0, 5.0, 10.0, 20.0, 35.0]


def test_random_row_is_chance_level(semantic_eval_data, ctx):
    ev = semantic_eval_data
    res = rows.KINDS["random"](_row(kind="random", dim=16), ctx, ev)
    assert res.extra["repeats"] == 5  # the paper's "x5", the config's default
    assert set(res.extra["std_over_repeats"]) == {"us", "ndcg_auc", "pcc_auc"}
    expected = _expected_random_ndcg(ev, ev.rs)
    got = np.array(res.curves["ndcg_at_r"]["y"])
    assert np.all(np.abs(got[2:] - expected[2:]) < 0.12), (got, expected)  # small R is noisy
    assert res.metrics["ndcg_auc"] < 90.0
    assert abs(res.metrics["pcc_auc"]) < 30.0
    assert 30.0 < res.metrics["us"] < 70.0
    again = rows.KINDS["random"](_row(kind="random", dim=16), ctx, ev)
    assert again.metrics == res.metrics  # the same seed, the same draws


def test_tfidf_regions_row_equals_the_oracle(semantic_eval_data, ctx):
    ev = semantic_eval_data
    oracle = rows.KINDS["text_oracle"](_row(kind="text_oracle"), ctx, ev)
    regions = rows.KINDS["tfidf"](_row(kind="tfidf", field="regions"), ctx, ev)
    assert regions.metrics == pytest.approx(oracle.metrics)


def test_tfidf_objects_row_with_uninformative_objects_ties(semantic_eval_data, ctx):
    # every image lists the same single object: every pair is equally similar, each triplet is a
    # tie and earns half credit, so the agreement is exactly 50
    res = rows.KINDS["tfidf"](_row(kind="tfidf", field="objects"), ctx, semantic_eval_data)
    assert res.metrics["us"] == pytest.approx(50.0)
    assert res.extra["field"] == "objects"
    assert res.metrics["ndcg_auc"] < 100.0


def test_annotators_row_unanimous_users_agree_fully(semantic_eval_data, ctx):
    res = rows.KINDS["annotators"](_row(kind="annotators"), ctx, semantic_eval_data)
    # u0..u2 always agree, u3 always says neither -> w = 2/3 for each deciding user
    assert res.metrics["us"] == pytest.approx(100.0 * 2 / 3)
    assert res.n_scored == len(semantic_eval_data.triplets)


def test_row_configs_are_checked(tmp_path: Path):
    ctx = RowContext(workdir=tmp_path, seed=0, profile="paper", data_root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"row\.kind"):
        rows.run_row({"row": {"kind": "nope"}}, ctx)
    with pytest.raises(ValueError, match=r"row\.train_mode"):
        rows.run_row({"row": {"kind": "trained", "train_mode": "T"}}, ctx)
    with pytest.raises(ValueError, match=r"unknown key.*lrr"):
        rows.run_row({"row": {"kind": "trained"}, "train": {"lrr": 1}}, ctx)
    with pytest.raises(FileNotFoundError, match=r"data_cards/visual_genome\.md"):
        rows.run_row({"row": {"kind": "random"}, "method": "semantic_retrieval"}, ctx)


class _StandInModel:
    """What _row_model needs of SemanticRetrieval: phi from the record index, theta = tf-idf."""

    def __init__(self) -> None:
        from capbench.methods.semantic_retrieval.config import SemanticRetrievalConfig

        self.calls: list[str] = []
        self.provenance = {"backbone_init": "stand-in"}
        self.cfg = SemanticRetrievalConfig()

    def to(self, device):
        return self

    def eval(self):
        return self

    def embed_query(self, phi, text):
        self.calls.append("embed_query")
        t = torch.as_tensor(text.toarray(), dtype=torch.float32)
        return torch.nn.functional.normalize(torch.as_tensor(phi) + 10.0 * t, dim=-1)


def test_model_rows_wiring(semantic_eval_data, ctx, monkeypatch, tmp_path):
    """Trained rows: training is asked for the row's mode; (V+T, V+T) queries add the query's own
    text on the query side only; the index and checkpoint are recorded."""
    from capbench.methods.semantic_retrieval import train
    from capbench.methods.semantic_retrieval.index import load_index

    ev = semantic_eval_data
    model = _StandInModel()
    dim = ev.tfidf_images.shape[1]  # the stand-in adds theta = the tf-idf row itself
    noise = np.random.default_rng(0).standard_normal((len(ev.images), dim)).astype(np.float32)
    phi = torch.nn.functional.normalize(torch.as_tensor(noise), dim=-1)
    seen: dict[str, object] = {}

    def fake_train(cfg, datamodule, workdir, train_mode="V", seed=0, **kw):
        seen["mode"], seen["workdir"] = train_mode, workdir
        seen["records"] = datamodule.records("train")
        ckpt = tmp_path / "fake.ckpt"
        ckpt.write_bytes(b"x")
        return model, ckpt

    monkeypatch.setattr(train, "train_semantic_retrieval", fake_train)
    monkeypatch.setattr(train, "embed_records", lambda m, recs, progress=False: phi[: len(recs)])
    base = {"train": {"share_checkpoint": False}}
    v = rows._row_model(row_config({**base, "row": {"kind": "trained", "train_mode": "V+T"}}), ctx, ev)  # fmt: skip
    vt = rows._row_model(
        row_config({**base, "row": {"kind": "trained", "train_mode": "V+T", "query_mode": "V+T"}}),
        ctx,
        ev,
    )
    assert seen["mode"] == "V+T" and seen["workdir"] == ctx.workdir
    assert seen["records"] == ev.train  # the DataModule serves the protocol's training split
    assert model.calls == ["embed_query"]  # only the V+T query mode combines text
    want_v, _, _ = protocol.score_embeddings(ev, phi.numpy(), phi.numpy())
    query = torch.nn.functional.normalize(
        phi + 10.0 * torch.as_tensor(ev.tfidf_images.toarray()), dim=-1
    ).numpy()
    want_vt, _, _ = protocol.score_embeddings(ev, query, phi.numpy())
    assert v.metrics == pytest.approx(want_v) and vt.metrics == pytest.approx(want_vt)
    assert vt.metrics != pytest.approx(v.metrics)
    assert vt.checkpoint.endswith("fake.ckpt") and vt.extra["backbone_init"] == "stand-in"
    index = load_index(Path(vt.extra["index"]))
    assert index.ids == [r.image_id for r in ev.images[: ev.n_database]]
    assert np.allclose(index.embeddings, phi[: ev.n_database].numpy())  # the database is image-only
    assert index.longest_side == 576 and not index.pad_to_square  # the paper: aspect kept


def test_an_unreadable_test_image_stops_the_row_naming_it(
    semantic_eval_data, ctx, monkeypatch, tmp_path
):
    """Its embedding row is NaN: the retrieval code stopped on "embeddings contain nan or inf",
    which named no file."""
    from capbench.methods.semantic_retrieval import train

    ev = semantic_eval_data
    phi = torch.nn.functional.normalize(torch.ones(len(ev.images), 8), dim=-1)
    phi[2] = float("nan")

    def fake_train(cfg, datamodule, workdir, train_mode="V", seed=0, **kw):
        ckpt = tmp_path / "fake.ckpt"
        ckpt.write_bytes(b"x")
        return _StandInModel(), ckpt

    monkeypatch.setattr(train, "train_semantic_retrieval", fake_train)
    monkeypatch.setattr(train, "embed_records", lambda m, recs, progress=False: phi[: len(recs)])
    config = row_config({"train": {"share_checkpoint": False}, "row": {"kind": "trained"}})
    with pytest.raises(ValueError, match="1 test image\\(s\\) cannot be read") as err:
        rows._row_model(config, ctx, ev)
    assert ev.images[2].image_path in str(err.value)


def test_shared_training_folder(tmp_path):
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="scenes", data_root=tmp_path)
    cfg = {"model": {"backbone": "x"}}

    def workdir(context=ctx, data="sha-a", **row):
        return rows.training_workdir(
            row_config({**cfg, "row": {"kind": "trained", **row}}), context, data
        )

    vt_v = workdir(train_mode="V+T")
    assert vt_v == workdir(train_mode="V+T", query_mode="V+T") != workdir()
    other_seed = RowContext(workdir=tmp_path / "w", seed=1, profile="scenes", data_root=tmp_path)
    assert workdir(other_seed, train_mode="V+T") != vt_v
    # DDP over two processes trains with twice the batch: another model; one process keeps its key
    from dataclasses import replace

    one = workdir(replace(ctx, accelerator="cpu", devices=1), train_mode="V+T")
    assert workdir(replace(ctx, accelerator="cpu", devices=2), train_mode="V+T") != one
    assert workdir(replace(ctx, accelerator="gpu", devices=1), train_mode="V+T") == one
    alone = row_config({"train": {"share_checkpoint": False}, "row": {"kind": "trained"}})
    assert rows.training_workdir(alone, ctx, "sha-a") == ctx.workdir
    # the same path with other content (scenes rewritten at another size) is another model
    assert workdir(data="sha-b", train_mode="V+T") != vt_v
    # so is another trunk file at the same path (the trunk enters by content)
    weights = tmp_path / "trunk.pt"
    weights.write_bytes(b"one trunk")
    cfg = {"model": {"backbone": "x", "backbone_weights": str(weights)}}
    on_file = workdir(train_mode="V+T")
    assert on_file != vt_v  # vs random init
    weights.write_bytes(b"another trunk")
    assert workdir(train_mode="V+T") != on_file


def test_cheap_rows_from_the_benchmark_configs(tiny_scenes, tmp_path):
    """The real gordo2017 scenes configs, on the tiny scenes data, through run_row."""
    from capbench.bench.config import resolve_config

    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="scenes", data_root=tiny_scenes)
    results = {
        row: rows.run_row(resolve_config(BENCH / f"{row}.scenes.yaml"), ctx)
        for row in ("random", "text_oracle", "human_annotators")
    }
    oracle, rand = results["text_oracle"], results["random"]
    assert oracle.metrics["ndcg_auc"] == pytest.approx(100.0)
    assert rand.metrics["ndcg_auc"] < oracle.metrics["ndcg_auc"]
    assert rand.n_scored == oracle.n_scored == 30  # the whole tiny test split, each query once
    assert rand.dataset["name"] == "visual_genome" and rand.dataset["fingerprint"]
    assert results["human_annotators"].metrics["us"] > oracle.metrics["us"] - 30


# the paper profile's configs as they are (ResNet-101, bf16-mixed, channels_last, 4 micro-batches
# per batch, the paper's eval block), shrunk only in sizes so the CPU runs them in seconds
PAPER_SMALL = [
    "model.allow_random_init=true",
    "model.longest_side=64",
    "mining.pool_queries=8",
    "mining.positives_per_query=3",
    "mining.top_per_pair=5",
    "mining.batch_size=8",
    "mining.remine_every=2",
    "train.max_steps=3",
    "train.lr_drop_step=2",
    "train.whitening_images=16",
    "train.embed_batch_size=8",
    "train.num_workers=0",
    "train.k_relevant=4",
    "train.share_checkpoint=false",
    "eval.n_queries=10",
    "data.root=visual_genome",
]


# wsabie's paper path differs only in its loss (ResNet-101 on the CPU: ~35 s): slow suite
@pytest.mark.parametrize("row", ["proposed_vt_vt", pytest.param("wsabie", marks=pytest.mark.slow)])
def test_paper_profile_trained_rows_run_end_to_end(tiny_scenes, tmp_path, row):
    """A trained row's paper config through run_row on the real Visual Genome layout (tiny
    scenes): the bf16 path with text (theta under autocast) and gradient accumulation run, and
    a last round shorter than remine_every (3 steps, rounds of 2) ends the run on time."""
    from capbench.bench.config import resolve_config

    torch.set_num_threads(2)
    config = resolve_config(BENCH / f"{row}.paper.yaml", PAPER_SMALL)
    cfg = row_config(config)
    assert cfg.train.precision == "bf16-mixed" and cfg.train.micro_batches == 4
    assert cfg.model.backbone == "torchvision::resnet101" and cfg.model.channels_last
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="paper", data_root=tiny_scenes)
    result = rows.run_row(config, ctx)
    assert set(result.metrics) == {"ndcg_auc", "pcc_auc"}  # no user study in the paper profile
    assert all(np.isfinite(v) for v in result.metrics.values())
    assert result.n_scored == 10 and result.extra["backbone_init"] == "random"
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=False, mmap=True)
    assert ckpt["global_step"] == 3 and ckpt["hyper_parameters"]["train"]["micro_batches"] == 4
