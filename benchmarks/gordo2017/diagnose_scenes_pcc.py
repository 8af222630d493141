"""Why PCC AUC behaves as it does on scenes: relevance vs scene type vs shared shapes.

Scenes data carry their ground truth (``scenes_truth.json``: scene type and objects of every
image), so the tf-idf relevance that NDCG and PCC score against can be taken apart:

* how much of it is the scene type (mean relevance within and across scene types);
* how much of what is left follows the shapes two images share (within-scene Pearson r);
* what a truth oracle gets: images scored by their true shape sets + scene type, no pixels;
* for each row index given (``<work>/index/`` of a gordo2017 row): NDCG/PCC AUC, the share of
  its top ``r_max`` results with the query's scene type, and its within-scene PCC (Pearson r of
  its scores and relevance over the top results of the query's own scene type);
* with ``--probe``: what a linear read-out (cross-validated) finds in each index's descriptors:
  shape presence (mAP against its prior) and scene type (accuracy);
* with ``--r-max``: the same AUCs on R grids that end at other values, to show how PCC depends
  on whether the top R can hold more than one scene type (generator 1.0 had 7 types, the
  largest 15% of the database; 2.0 has 36 of about 3% each).

Run after ``capbench reproduce gordo2017 --profile scenes`` (the README's analysis)::

    python benchmarks/gordo2017/diagnose_scenes_pcc.py --scenes scenes_data \\
        --index results/gordo2017/work/visual_baseline-*/index results/gordo2017/work/proposed_v_v-*/index \\
        --r-max 300 600 1000 --probe
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from capbench.bench.config import resolve_config
from capbench.eval.metrics import default_r_grid
from capbench.eval.protocols import semantic_retrieval as protocol
from capbench.methods.protocol import RowContext
from capbench.methods.semantic_retrieval.config import row_config
from capbench.methods.semantic_retrieval.index import load_index
from capbench.methods.semantic_retrieval.rows import load_row_eval_data

CONFIG = Path(__file__).with_name("visual_baseline.scenes.yaml")


def truth_oracle(truth: list[dict], scene_weight: float = 1.0) -> np.ndarray:
    """Unit vectors of (shapes present, one-hot scene type x ``scene_weight``) from the truth."""
    shapes = sorted({o["shape"] for t in truth for o in t["objects"]})
    scenes = sorted({t["scene"] for t in truth})
    x = np.zeros((len(truth), len(shapes) + len(scenes)), dtype=np.float32)
    for i, t in enumerate(truth):
        for o in t["objects"]:
            x[i, shapes.index(o["shape"])] = 1.0
        x[i, len(shapes) + scenes.index(t["scene"])] = scene_weight
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def within_scene_shape_r(rel: np.ndarray, queries: np.ndarray, truth: list[dict]) -> float:
    """Mean over queries of Pearson r(relevance, Jaccard of shape sets), same scene type only."""
    shape_sets = [{o["shape"] for o in t["objects"]} for t in truth]
    scene = np.array([t["scene"] for t in truth])
    rs = []
    for i, q in enumerate(queries):
        mask = scene == scene[q]
        mask[q] = False
        jac = [len(shape_sets[q] & shape_sets[j]) / max(1, len(shape_sets[q] | shape_sets[j]))
               for j in np.flatnonzero(mask)]  # fmt: skip
        if np.std(jac) > 0:
            rs.append(np.corrcoef(jac, rel[i][mask])[0, 1])
    return float(np.mean(rs))


def top_r_stats(
    scores: np.ndarray, rel: np.ndarray, queries: np.ndarray, scene: np.ndarray, r_max: int
) -> tuple[float, float]:
    """(share of the top ``r_max`` with the query's scene type, mean within-scene Pearson r)."""
    scores = scores.copy()
    scores[np.arange(len(queries)), queries] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :r_max]
    same = scene[top] == scene[queries][:, None]
    rs = []
    for i in range(len(queries)):
        s, r = scores[i, top[i]][same[i]], rel[i, top[i]][same[i]]
        if len(s) > 2 and np.std(s) > 0 and np.std(r) > 0:
            rs.append(np.corrcoef(s, r)[0, 1])
    return float(same.mean()), float(np.mean(rs)) if rs else float("nan")


def probe_descriptors(
    emb: np.ndarray, truth: list[dict], folds: int = 3, min_visible: float = 0.35
) -> dict[str, float]:
    """What a linear read-out finds in the descriptors: shape presence and scene type.

    Cross-validated logistic regression (scikit-learn). ``shape_map`` is the mean average
    precision over shapes of "this shape is in the image" (objects at least ``min_visible``
    visible), to be read against ``shape_prior`` (the share of positives, what a descriptor
    without shape information scores); ``scene_acc`` is the accuracy of naming the scene type.
    Relevance follows shared shapes (see ``within_scene_shape_r``), so descriptors that carry no
    shape information cannot follow it, however they are trained.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import cross_val_predict

    shapes = sorted({o["shape"] for t in truth for o in t["objects"]})
    y = np.array(
        [[any(o["shape"] == s and o["visible"] >= min_visible for o in t["objects"]) for s in shapes]
         for t in truth]
    )  # fmt: skip
    aps = []
    for k in range(len(shapes)):
        if 0 < y[:, k].sum() < len(y) - folds:
            p = cross_val_predict(
                LogisticRegression(max_iter=2000), emb, y[:, k], cv=folds, method="predict_proba"
            )[:, 1]
            aps.append(average_precision_score(y[:, k], p))
    scene = np.array([t["scene"] for t in truth])
    pred = cross_val_predict(LogisticRegression(max_iter=2000), emb, scene, cv=folds)
    return {
        "shape_map": float(np.mean(aps)),
        "shape_prior": float(y.mean()),
        "scene_acc": float(np.mean(pred == scene)),
    }


def with_r_max(ev: protocol.EvalData, r_max: int) -> protocol.EvalData:
    """``ev`` scored on a linear R grid ending at ``r_max``, with as many points as its own."""
    return dataclasses.replace(
        ev, rs=[int(r) for r in default_r_grid(ev.n_database, r_max, len(ev.rs))]
    )


def _r_max(text: str) -> int:
    """argparse type for ``--r-max``: PCC@R needs at least two results, so R_max >= 2."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value}: R_max must be at least 2 (PCC@1 is undefined)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, required=True, help="scenes data folder")
    parser.add_argument("--index", type=Path, nargs="*", default=[], help="row index folders")
    parser.add_argument("--config", type=Path, default=CONFIG, help="scenes row config (eval)")
    parser.add_argument(
        "--r-max",
        type=_r_max,
        nargs="*",
        default=[],
        help="also score every index on R grids ending here (same number of points)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="also probe each index's descriptors linearly for shapes and scene type",
    )
    args = parser.parse_args(argv)

    truth_file = args.scenes / "scenes_truth.json"
    if not truth_file.is_file():
        print(f"error: {truth_file}: no scenes truth (write it with `capbench data scenes`)")
        return 1
    cfg = row_config(resolve_config(args.config))
    ctx = RowContext(workdir=Path("."), seed=0, profile="scenes", data_root=args.scenes)
    ev = load_row_eval_data(cfg, ctx)
    db = ev.images[: ev.n_database]
    by_id = json.loads(truth_file.read_text(encoding="utf-8"))["visual_genome"]
    truth = [by_id[r.image_id] for r in db]
    scene = np.array([t["scene"] for t in truth])
    rel = protocol.relevance_of(ev)(ev.queries)
    same = scene[ev.queries][:, None] == scene[None, :]
    r_max = int(ev.rs[-1])
    print(f"{len(ev.queries)} queries x {ev.n_database} images, R <= {r_max}")
    print(f"relevance: same scene type {rel[same].mean():.3f}, other types {rel[~same].mean():.3f}")
    print(
        f"within scene type, r(relevance, shared shapes) = {within_scene_shape_r(rel, ev.queries, truth):.2f}"
    )
    types, counts = np.unique(scene, return_counts=True)
    print(
        f"{len(types)} scene types; the largest holds {counts.max()} images "
        f"({100 * counts.max() / len(scene):.0f}% of the database), R <= {r_max}"
    )
    sweeps = [(r, with_r_max(ev, r)) for r in args.r_max]

    def report(name: str, query_emb: np.ndarray, db_emb: np.ndarray) -> None:
        metrics, _, _ = protocol.retrieval_scores_dense(ev, query_emb, db_emb)
        scores = query_emb[ev.queries] @ db_emb.T
        share, r_within = top_r_stats(scores, rel, ev.queries, scene, r_max)
        print(
            f"{name:40s} NDCG {metrics['ndcg_auc']:5.1f}  PCC {metrics['pcc_auc']:5.1f}  "
            f"same-scene share of top {r_max} {share:.2f}  within-scene r {r_within:.3f}"
        )
        if args.probe:
            p = probe_descriptors(db_emb, truth)
            print(
                f"{'':40s} linear probe: shape mAP {p['shape_map']:.3f} "
                f"(prior {p['shape_prior']:.3f}), scene type accuracy {p['scene_acc']:.3f}"
            )
        for r, ev_r in sweeps:
            m, _, _ = protocol.retrieval_scores_dense(ev_r, query_emb, db_emb)
            print(f"{'':40s} R <= {r:5d}: NDCG {m['ndcg_auc']:5.1f}  PCC {m['pcc_auc']:5.1f}")

    oracle = truth_oracle(truth)
    report("truth oracle (shapes + scene type)", oracle, oracle)
    for index_dir in args.index:
        index = load_index(index_dir)
        if index.ids != [r.image_id for r in db]:
            print(f"error: {index_dir}: its database is not this config's evaluation database")
            return 1
        report(index_dir.parent.name, index.embeddings, index.embeddings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
