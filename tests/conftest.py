"""Shared test settings: small thread pools (CI has 2 cores), offline libraries, temp results."""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

# torch's own thread count, before any test module changes it: the golden numbers are written
# by `capbench reproduce` with this default, and CPU float reductions depend on the thread
# count, so the regression gate runs with it too (tests/regression/test_ci_golden.py)
DEFAULT_TORCH_THREADS = torch.get_num_threads()


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_dirs(tmp_path_factory):
    """Temp results and cache dirs for module- and session-scoped fixtures, which are set up
    before the per-test ones below: a module fixture reading Visual Genome wrote its Arrow
    cache into the checkout's ``.capbench_cache``."""
    base = tmp_path_factory.mktemp("capbench_session_env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAPBENCH_RESULTS", str(base / "results"))
        mp.setenv("CAPBENCH_CACHE", str(base / "cache"))
        yield


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Each test writes results and caches under its own temp dir, never into the checkout."""
    base = tmp_path_factory.mktemp("capbench_env")
    monkeypatch.setenv("CAPBENCH_RESULTS", str(base / "results"))
    monkeypatch.setenv("CAPBENCH_CACHE", str(base / "cache"))


@pytest.fixture(scope="session")
def tiny_scenes_run(tmp_path_factory):
    """The tiny scenes dataset in every format, written once per test session: (folder,
    manifest). Tests read it and never write into it (a read must not change the data)."""
    from capbench.data.scenes.generate import generate

    out = tmp_path_factory.mktemp("shared_scenes") / "tiny"
    return out, generate(out, size="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_scenes(tiny_scenes_run):
    """The folder of the session's tiny scenes dataset (see ``tiny_scenes_run``)."""
    return tiny_scenes_run[0]


@pytest.fixture()
def semantic_eval_data():
    """A small constructed semantic-retrieval evaluation set (the protocol of Gordo & Larlus):
    images showing two or three of six things, their phrases as regions, and user-study
    triplets whose three deciding voters pick the candidate with the larger tf-idf similarity
    (a fourth always says "neither")."""
    import itertools

    from capbench.data.records import CaptionedImage, Region
    from capbench.data.user_study import Triplet
    from capbench.eval.protocols.semantic_retrieval import EvalConfig, build_eval_data

    things = [
        "red circle",
        "blue square",
        "green triangle",
        "yellow star",
        "tall tree",
        "small car",
    ]

    def record(i: int, split: str) -> CaptionedImage:
        picks = [things[i % 6], things[(i // 6) % 6]]
        if i % 4 == 0:
            picks.append(things[(i + 3) % 6])
        regions = [Region(0, 0, 5, 5, f"a {p}") for p in picks]
        return CaptionedImage(
            f"{split}{i:03d}", f"/nonexistent/{i}.jpg", split, regions=regions,
            meta={"objects": ["thing"]},
        )  # fmt: skip

    train = [record(i, "train") for i in range(48)]
    test = [record(i, "test") for i in range(40)]
    cfg = EvalConfig(n_database=36, n_queries=20, seed=0, r_grid=(1, 2, 5, 10, 20, 35))
    ev0 = build_eval_data(train, test, [], cfg)  # the tf-idf that the votes follow
    x = ev0.tfidf_images
    triplets = []
    for q, a, b in itertools.islice(itertools.permutations(range(12), 3), 0, 400, 7):
        sa, sb = float(x[q].multiply(x[a]).sum()), float(x[q].multiply(x[b]).sum())
        if abs(sa - sb) < 1e-6:
            continue
        pick = "a" if sa > sb else "b"
        ids = ev0.images[q].image_id, ev0.images[a].image_id, ev0.images[b].image_id
        triplets.append(Triplet(*ids, votes={"u0": pick, "u1": pick, "u2": pick, "u3": "neither"}))
    return build_eval_data(train, test, triplets, cfg)


@pytest.fixture()
def default_torch_threads():
    """Run a test with torch's default thread count (as `capbench reproduce` has), whatever
    other tests set; restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(DEFAULT_TORCH_THREADS)
    yield DEFAULT_TORCH_THREADS
    torch.set_num_threads(previous)
