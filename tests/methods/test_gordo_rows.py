"""gordo2017 rows that need no model: random, text oracle, tf-idf proxies, annotators; plus the
shared scoring (chunking, exclusion of the query, V+T queries) on a small constructed dataset."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from capbench.data.records import CaptionedImage, Region
from capbench.data.user_study import Triplet
from capbench.methods import semantic_retrieval_rows as rows
from capbench.methods.protocol import RowContext

torch.set_num_threads(1)

THINGS = ["red circle", "blue square", "green triangle", "yellow star", "tall tree", "small car"]


def _record(i: int, split: str, objects: list[str] | None = None) -> CaptionedImage:
    """Image i shows two or three things chosen deterministically; regions are their phrases."""
    picks = [THINGS[i % 6], THINGS[(i // 6) % 6]]
    if i % 4 == 0:
        picks.append(THINGS[(i + 3) % 6])
    regions = [Region(0, 0, 5, 5, f"a {p}") for p in picks]
    meta = {"objects": objects if objects is not None else ["thing"]}
    return CaptionedImage(
        f"{split}{i:03d}", f"/nonexistent/{i}.jpg", split, regions=regions, meta=meta
    )


def _triplets(ev_like: list[CaptionedImage], sim) -> list[Triplet]:
    """Triplets whose three voters all pick the candidate with the larger tf-idf similarity."""
    out = []
    for q, a, b in itertools.islice(itertools.permutations(range(12), 3), 0, 400, 7):
        sa, sb = sim(q, a), sim(q, b)
        if abs(sa - sb) < 1e-6:
            continue
        pick = "a" if sa > sb else "b"
        ids = ev_like[q].image_id, ev_like[a].image_id, ev_like[b].image_id
        out.append(Triplet(*ids, votes={"u0": pick, "u1": pick, "u2": pick, "u3": "neither"}))
    return out


@pytest.fixture()
def setup(tmp_path: Path):
    train = [_record(i, "train") for i in range(48)]
    test = [_record(i, "test") for i in range(40)]
    cfg = {"n_database": 36, "n_queries": 20, "seed": 0, "r_grid": [1, 2, 5, 10, 20, 35]}
    # A first pass without triplets gives the tf-idf needed to write consistent votes.
    ev0 = rows.build_eval_data(train, test, [], cfg)
    x = ev0.tfidf_images
    triplets = _triplets(ev0.images, lambda i, j: float(x[i].multiply(x[j]).sum()))
    ev = rows.build_eval_data(train, test, triplets, cfg)
    ctx = RowContext(workdir=tmp_path / "work", seed=0, profile="scenes", data_root=tmp_path)
    return ev, ctx


def test_text_oracle_is_100_everywhere(setup):
    ev, ctx = setup
    res = rows.KINDS["text_oracle"]({"row": {"kind": "text_oracle"}}, ctx, ev)
    assert res.metrics["ndcg_auc"] == pytest.approx(100.0)
    assert res.metrics["pcc_auc"] == pytest.approx(100.0)
    assert res.metrics["us"] == pytest.approx(100.0)  # the votes were written from tf-idf
    assert res.n_scored == 20
    assert res.curves["ndcg_at_r"]["x"] == [1.0, 2.0, 5.0, 10.0, 20.0, 35.0]


def _expected_random_ndcg(ev: rows.EvalData, rs: list[int]) -> np.ndarray:
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


def test_random_row_is_chance_level(setup):
    ev, ctx = setup
    res = rows.KINDS["random"]({"row": {"kind": "random", "repeats": 5, "dim": 16}}, ctx, ev)
    assert res.extra["repeats"] == 5 and set(res.extra["std_over_repeats"]) == {
        "us",
        "ndcg_auc",
        "pcc_auc",
    }
    expected = _expected_random_ndcg(ev, ev.rs)
    got = np.array(res.curves["ndcg_at_r"]["y"])
    assert np.all(np.abs(got[2:] - expected[2:]) < 0.12), (got, expected)  # small R is noisy
    assert res.metrics["ndcg_auc"] < 90.0
    assert abs(res.metrics["pcc_auc"]) < 30.0
    assert 30.0 < res.metrics["us"] < 70.0
    # different seeds give different draws, the same seed the same numbers
    again = rows.KINDS["random"]({"row": {"kind": "random", "repeats": 5, "dim": 16}}, ctx, ev)
    assert again.metrics == res.metrics


def test_tfidf_regions_row_equals_the_oracle(setup):
    ev, ctx = setup
    oracle = rows.KINDS["text_oracle"]({"row": {"kind": "text_oracle"}}, ctx, ev)
    regions = rows.KINDS["tfidf"]({"row": {"kind": "tfidf", "field": "regions"}}, ctx, ev)
    for key in ("us", "ndcg_auc", "pcc_auc"):
        assert regions.metrics[key] == pytest.approx(oracle.metrics[key])


def test_tfidf_objects_row_with_uninformative_objects_ties(setup):
    ev, ctx = setup
    # every image lists the same single object: every pair is equally similar, each triplet is a
    # tie and earns half credit, so the agreement is exactly 50
    res = rows.KINDS["tfidf"]({"row": {"kind": "tfidf", "field": "objects"}}, ctx, ev)
    assert res.metrics["us"] == pytest.approx(50.0)
    assert res.extra["field"] == "objects"
    assert res.metrics["ndcg_auc"] < 100.0


def test_scoring_excludes_the_query_and_is_chunk_invariant(setup):
    ev, _ = setup
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((len(ev.images), 8)).astype(np.float32)
    pred = rows.dense_pred_fn(emb, emb[: ev.n_database])
    a, ca, na = rows.retrieval_scores(ev, pred, chunk=1)
    b, cb, nb = rows.retrieval_scores(ev, pred, chunk=64)
    assert na == nb == len(ev.queries)
    assert a == pytest.approx(b)
    assert ca["pcc_at_r"]["y"] == pytest.approx(cb["pcc_at_r"]["y"])
    assert ca["pcc_at_r"]["x"][0] == 2.0  # PCC@1 is undefined and left out of the curve


def test_the_query_itself_is_never_a_result(setup):
    ev, _ = setup
    rel = rows.relevance_fn(ev)

    def worst(q: np.ndarray) -> np.ndarray:
        return -rel(q)

    def worst_but_self_first(q: np.ndarray) -> np.ndarray:
        p = -rel(q)
        p[np.arange(len(q)), q] = 1e9  # would be rank 1 with relevance 1 if it were not removed
        return p

    a, _, _ = rows.retrieval_scores(ev, worst)
    b, _, _ = rows.retrieval_scores(ev, worst_but_self_first)
    assert a == pytest.approx(b)
    assert a["ndcg_auc"] < 50.0


def test_image_plus_text_query_uses_the_query_side_only(setup):
    ev, _ = setup
    x = ev.tfidf_images.toarray().astype(np.float32)
    noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    db_emb = noise / np.linalg.norm(noise, axis=1, keepdims=True)  # an uninformative database side
    visual, _, _ = rows.score_embeddings(ev, db_emb, db_emb)
    # queries that carry their own text: better ranking although the database is unchanged
    query_emb = db_emb + 10.0 * x @ (x[: ev.n_database].T @ db_emb[: ev.n_database])
    with_text, _, _ = rows.score_embeddings(ev, query_emb, db_emb)
    assert with_text["ndcg_auc"] > visual["ndcg_auc"] + 5.0


def test_annotators_row_unanimous_users_agree_fully(setup):
    ev, ctx = setup
    res = rows.KINDS["annotators"]({"row": {"kind": "annotators"}}, ctx, ev)
    # u0..u2 always agree, u3 always says neither -> w = 2/3 for each deciding user
    assert res.metrics["us"] == pytest.approx(100.0 * 2 / 3)
    assert res.n_scored == len(ev.triplets)


def test_run_row_errors_are_explicit(tmp_path: Path):
    ctx = RowContext(workdir=tmp_path, seed=0, profile="paper", data_root=tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"row\.kind"):
        rows.run_row({"row": {"kind": "nope"}}, ctx)
    with pytest.raises(FileNotFoundError, match=r"data_cards/visual_genome\.md"):
        rows.run_row({"row": {"kind": "random"}}, ctx)


class _StandInModel:
    """What _row_model needs from SemanticRetrieval: phi from the record index, theta = tf-idf."""

    def __init__(self, tfidf_dim: int) -> None:
        self.calls: list[str] = []
        self.provenance = {"backbone_init": "stand-in"}
        self.dim = tfidf_dim

    def to(self, device):
        return self

    def eval(self):
        return self

    def embed_query(self, phi, text):
        self.calls.append("embed_query")
        t = torch.as_tensor(text.toarray(), dtype=torch.float32)
        return torch.nn.functional.normalize(torch.as_tensor(phi) + 10.0 * t, dim=-1)


def test_model_rows_wiring(setup, monkeypatch, tmp_path):
    """Trained rows: training is asked for the row's mode; (V+T, V+T) queries add the query's own
    text on the query side only; the index and checkpoint are recorded."""
    from capbench.methods import semantic_retrieval as sr

    ev, ctx = setup
    dim = ev.tfidf_images.shape[1]
    model = _StandInModel(dim)
    noise = np.random.default_rng(0).standard_normal((len(ev.images), dim)).astype(np.float32)
    phi = torch.nn.functional.normalize(torch.as_tensor(noise), dim=-1)
    seen: dict[str, object] = {}

    def fake_train(records, tfidf, config, workdir, seed=0, mode=None, **kw):
        seen["mode"], seen["workdir"] = mode, workdir
        ckpt = tmp_path / "fake.ckpt"
        ckpt.write_bytes(b"x")
        return model, ckpt

    monkeypatch.setattr(sr, "train_semantic_retrieval", fake_train)
    monkeypatch.setattr(sr, "embed_records", lambda m, recs, cfg, progress=False: phi[: len(recs)])
    base = {"train": {"share_checkpoint": False}}
    v = rows._row_model({**base, "row": {"kind": "trained", "train": "V+T", "test": "V"}}, ctx, ev)
    vt = rows._row_model(
        {**base, "row": {"kind": "trained", "train": "V+T", "test": "V+T"}}, ctx, ev
    )
    assert seen["mode"] == "V+T" and seen["workdir"] == ctx.workdir
    assert model.calls == ["embed_query"]  # only the V+T test mode combines text
    # metrics are those of the right query side against the image-only database
    want_v, _, _ = rows.score_embeddings(ev, phi.numpy(), phi.numpy())
    query = torch.nn.functional.normalize(
        phi + 10.0 * torch.as_tensor(ev.tfidf_images.toarray()), dim=-1
    ).numpy()
    want_vt, _, _ = rows.score_embeddings(ev, query, phi.numpy())
    assert v.metrics == pytest.approx(want_v) and vt.metrics == pytest.approx(want_vt)
    assert vt.metrics != pytest.approx(v.metrics)
    assert vt.checkpoint.endswith("fake.ckpt") and vt.extra["backbone_init"] == "stand-in"
    index = rows.load_index(Path(vt.extra["index"]))
    assert index.ids == [r.image_id for r in ev.images[: ev.n_database]]
    assert np.allclose(index.embeddings, phi[: ev.n_database].numpy())  # the database is image-only


def test_shared_training_folder(tmp_path):
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="scenes", data_root=tmp_path)
    cfg = {"train": {"share_checkpoint": True}, "model": {"backbone": "x"}}
    vt_v = rows.training_workdir({**cfg, "row": {"train": "V+T", "test": "V"}}, ctx)
    vt_vt = rows.training_workdir({**cfg, "row": {"train": "V+T", "test": "V+T"}}, ctx)
    v_v = rows.training_workdir({**cfg, "row": {"train": "V", "test": "V"}}, ctx)
    assert vt_v == vt_vt != v_v
    other_seed = RowContext(workdir=tmp_path / "w", seed=1, profile="scenes", data_root=tmp_path)
    assert rows.training_workdir({**cfg, "row": {"train": "V+T"}}, other_seed) != vt_v
    assert rows.training_workdir({"row": {"train": "V"}}, ctx) == ctx.workdir


def test_cheap_rows_from_the_benchmark_configs(tmp_path):
    """The real gordo2017 scenes configs, on tiny generated scenes, through run_row."""
    from capbench.bench.config import resolve_config
    from capbench.data.scenes.generate import generate

    data = tmp_path / "scenes"
    generate(data, size="tiny", formats=["visual_genome", "user_study"])
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "gordo2017"
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="scenes", data_root=data)
    results = {
        row: rows.run_row(resolve_config(bench / f"{row}.scenes.yaml"), ctx)
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
    "mining.n_queries=8",
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
]


@pytest.mark.parametrize("row", ["proposed_vt_vt", "wsabie"])
def test_paper_profile_trained_rows_run_end_to_end(tmp_path, row):
    """A trained row's paper config through run_row on the real Visual Genome layout (tiny
    scenes): the bf16 path with text (theta under autocast) and gradient accumulation run."""
    import torch

    from capbench.bench.config import resolve_config
    from capbench.data.scenes.generate import generate

    torch.set_num_threads(2)
    data = tmp_path / "scenes"
    generate(data, size="tiny", formats=["visual_genome"])
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "gordo2017"
    config = resolve_config(bench / f"{row}.paper.yaml", PAPER_SMALL)
    assert config["train"]["precision"] == "bf16-mixed" and config["train"]["micro_batches"] == 4
    assert config["model"]["backbone"] == "torchvision::resnet101"
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="paper", data_root=data)
    result = rows.run_row(config, ctx)
    assert set(result.metrics) == {"ndcg_auc", "pcc_auc"}  # no user study in the paper profile
    assert all(np.isfinite(v) for v in result.metrics.values())
    assert result.n_scored == 10 and result.extra["backbone_init"] == "random"
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=False, mmap=True)
    assert ckpt["global_step"] == 3 and ckpt["hyper_parameters"]["micro_batches"] == 4
