"""The statistics of ``benchmarks/gordo2017/diagnose_scenes_pcc.py`` on hand-built cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest


@pytest.fixture(scope="module")
def diag(benchmark_script):
    return benchmark_script("gordo2017/diagnose_scenes_pcc.py")


def _image(scene: str, *shapes: str) -> dict:
    return {"scene": scene, "objects": [{"shape": s, "visible": 1.0} for s in shapes]}


def test_probe_finds_shapes_only_where_the_descriptors_hold_them(diag):
    rng = np.random.default_rng(0)
    names = ["circle", "star", "heart"]
    truth = [
        _image(f"s{i % 4}", *[n for n in names if rng.random() < 0.4] or ["ring"])
        for i in range(240)
    ]
    has = np.array([[any(o["shape"] == n for o in t["objects"]) for n in names] for t in truth])
    scene = np.eye(4)[[int(t["scene"][1]) for t in truth]]
    noise = rng.normal(size=(240, 8))
    with_shapes = diag.probe_descriptors(np.hstack([3 * has, scene, noise]), truth)
    scene_only = diag.probe_descriptors(np.hstack([scene, noise]), truth)
    assert with_shapes["shape_map"] > 0.95 and with_shapes["scene_acc"] > 0.95
    assert scene_only["shape_map"] < with_shapes["shape_prior"] + 0.15  # near chance
    assert scene_only["scene_acc"] > 0.95
    assert with_shapes["shape_prior"] == pytest.approx(scene_only["shape_prior"])


def test_truth_oracle_scores_shared_shapes_and_scene(diag):
    truth = [_image("beach", "circle"), _image("beach", "circle"), _image("road", "star")]
    x = diag.truth_oracle(truth)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0)
    sim = x @ x.T
    assert sim[0, 1] == pytest.approx(1.0)  # same shapes, same scene
    assert sim[0, 2] == pytest.approx(0.0)  # nothing shared


def test_top_r_stats_share_and_within_scene_correlation(diag):
    scene = np.array(["a", "a", "a", "a", "b", "b"])
    queries = np.array([0])
    rel = np.array([[1.0, 0.9, 0.5, 0.1, 0.8, 0.7]])
    # scores follow relevance inside scene "a" exactly; the self column is ignored
    scores = np.array([[9.0, 3.0, 2.0, 1.0, 0.5, 0.4]])
    share, r = diag.top_r_stats(scores, rel, queries, scene, r_max=4)
    assert share == pytest.approx(3 / 4)  # top 4: images 1, 2, 3 (scene a) and 4 (scene b)
    assert r == pytest.approx(np.corrcoef([3.0, 2.0, 1.0], [0.9, 0.5, 0.1])[0, 1])
    # reversed scores inside the scene: a perfect negative correlation
    share, r = diag.top_r_stats(-scores + 10 * (scene == "a"), rel, queries, scene, r_max=3)
    assert share == pytest.approx(1.0) and r < -0.9


def test_within_scene_shape_r_follows_shared_shapes(diag):
    truth = [_image("a", "circle", "star"), _image("a", "circle", "star"),
             _image("a", "circle"), _image("a", "heart"), _image("b", "circle", "star")]  # fmt: skip
    rel = np.array([[1.0, 0.9, 0.5, 0.0, 0.6]])  # relevance rises with shape overlap
    assert diag.within_scene_shape_r(rel, np.array([0]), truth) > 0.9


def test_with_r_max_keeps_the_points_and_moves_the_end(diag):
    @dataclasses.dataclass
    class Ev:  # the two fields with_r_max reads and replaces
        rs: list
        n_database: int

    ev = Ev(rs=list(range(1, 151, 3)), n_database=1500)
    out = diag.with_r_max(ev, 600)
    assert out.rs[0] == 1 and out.rs[-1] == 600 and len(out.rs) == len(ev.rs)
    assert ev.rs[-1] == 148  # the original is left alone
    assert diag.with_r_max(ev, 5000).rs[-1] == 1499  # capped by the database (query removed)


@pytest.mark.parametrize("bad", ["1", "0", "ten"])
def test_r_max_below_two_or_not_a_number_is_refused(diag, tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        diag.main(["--scenes", str(tmp_path), "--r-max", bad])
    assert exc.value.code == 2
    assert "--r-max" in capsys.readouterr().err
