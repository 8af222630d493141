"""COCO/Flickr Recall@K (hit rate), rsum and the 1k/5k protocols."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from capbench.eval.metrics import coco_1k_5k, image_text_recall, recall_at_k, rsum


def test_hand_computed_hit_rate():
    # q0 ranking 0, 2, 1 -> its gt (1) is third; q1 ranking 2, 0, 1 (0.2 tie: index 0 first)
    # -> gt 0 is second. R@1 = 0, R@2 = 1/2, R@3 = 2/2
    sim = np.array([[0.9, 0.1, 0.5], [0.2, 0.2, 0.3]])
    assert recall_at_k(sim, [[1], [0, 1]], ks=(1, 2, 3)) == {1: 0.0, 2: 50.0, 3: 100.0}
    mask = np.array([[False, True, False], [True, True, False]])
    assert recall_at_k(sim, mask, ks=(1, 2, 3)) == {1: 0.0, 2: 50.0, 3: 100.0}


def test_random_with_ties_matches_loop(ref):
    rng = np.random.default_rng(0)
    sim = rng.integers(0, 4, size=(30, 40)).astype(np.float32)
    gt = [
        set(rng.choice(40, size=int(rng.integers(1, 4)), replace=False).tolist()) for _ in range(30)
    ]
    got = recall_at_k(sim, [sorted(g) for g in gt], ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert got[k] == pytest.approx(ref.hit_recall(sim, gt, k))


def _embeddings(rng, n_img, per_img=5, dim=8):
    img = torch.tensor(rng.integers(-2, 3, size=(n_img, dim)), dtype=torch.float32)
    owner = torch.arange(n_img).repeat_interleave(per_img)
    txt = img[owner] + torch.tensor(
        rng.integers(-2, 3, size=(n_img * per_img, dim)), dtype=torch.float32
    )
    return img, txt, owner


def test_image_text_both_directions_match_loop(ref):
    rng = np.random.default_rng(1)
    img, txt, owner = _embeddings(rng, 12)
    got = image_text_recall(img, txt, owner, ks=(1, 5), chunk_size=5)
    sim = (img @ txt.T).numpy()
    i2t_gt = [set(torch.nonzero(owner == i).reshape(-1).tolist()) for i in range(12)]
    t2i_gt = [{int(o)} for o in owner]
    for k in (1, 5):
        assert got[f"i2t_r{k}"] == pytest.approx(ref.hit_recall(sim, i2t_gt, k))
        assert got[f"t2i_r{k}"] == pytest.approx(ref.hit_recall(sim.T, t2i_gt, k))
    assert got["rsum"] == pytest.approx(sum(v for key, v in got.items() if key != "rsum"))
    assert rsum(got) == pytest.approx(got["rsum"])


def test_coco_1k_is_mean_over_folds():
    rng = np.random.default_rng(2)
    img, txt, owner = _embeddings(rng, 8)
    out = coco_1k_5k(img, txt, owner, ks=(1, 5), n_folds=2, fold_size=4)
    folds = []
    for f in range(2):
        keep = (owner >= 4 * f) & (owner < 4 * f + 4)
        folds.append(
            image_text_recall(img[4 * f : 4 * f + 4], txt[keep], owner[keep] - 4 * f, (1, 5))
        )
    for key in folds[0]:
        assert out["1k"][key] == pytest.approx((folds[0][key] + folds[1][key]) / 2)
    assert out["5k"] == image_text_recall(img, txt, owner, (1, 5))
    with pytest.raises(ValueError, match="folds"):
        coco_1k_5k(img, txt, owner, n_folds=5, fold_size=4)


def test_query_without_gt_is_an_error():
    with pytest.raises(ValueError, match="no ground-truth"):
        recall_at_k(np.zeros((2, 3)), np.zeros((2, 3), dtype=bool))


def test_empty_inputs_are_named_not_a_torch_error():
    with pytest.raises(ValueError, match="no images"):
        image_text_recall(np.zeros((0, 4)), np.zeros((3, 4)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="no captions"):
        image_text_recall(np.zeros((2, 4)), np.zeros((0, 4)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="no queries"):
        recall_at_k(np.zeros((0, 3)), np.zeros((0, 3), dtype=bool))
