"""Mopuri et al. 2017 fusion: the graded contrastive loss against hand-computed values, the
training pairs as the official code builds them, Keras' validation split, the siamese module's
representation layer, and feature files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from capbench.losses import graded_contrastive_loss, siamese_distance
from capbench.methods.caption_fusion.config import FusionModelConfig, PairsConfig
from capbench.methods.caption_fusion.features import load_features, save_features
from capbench.methods.caption_fusion.module import CaptionFusion
from capbench.methods.caption_fusion.pairs import (
    Pair,
    build_pairs,
    shuffle_pairs,
    split_queries,
    split_validation,
)


def test_graded_contrastive_loss_hand_values():
    # d = 0.5, y = 2: pull 4 * 0.5 = 2; push max(0, 1-2) = 0          -> 2.0
    # d = 0.5, y = 0: pull 0; push 1 * max(0, 1 - 0.25) = 0.75         -> 0.75
    # d = 1.5, y = 0: push max(0, 1 - 2.25) = 0                        -> 0
    # d = 0.2, y = 1: pull 1 * 0.2; push max(0, 0) * ... = 0           -> 0.2
    d = torch.tensor([0.5, 0.5, 1.5, 0.2])
    y = torch.tensor([2, 0, 0, 1])
    torch.testing.assert_close(graded_contrastive_loss(d, y), torch.tensor((2 + 0.75 + 0.2) / 4))
    # margin 2: the second pair pushes 2 - 0.25, the third 2 - 2.25 < 0 -> 0
    got = graded_contrastive_loss(d, y, margin=2.0)
    torch.testing.assert_close(got, torch.tensor((2 + 1.75 + 0.2) / 4))


def test_siamese_distance_is_between_normalised_rows():
    a = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[0.0, 5.0], [0.0, 7.0]])
    torch.testing.assert_close(
        siamese_distance(a, b), torch.tensor([math.sqrt(2.0), 0.0]), atol=1e-3, rtol=0
    )


RELEVANCE = {
    "q1": {"r1": 3, "r2": 0, "r3": 1},  # 2 positives, 1 negative -> one outside negative
    "q2": {"r1": 0, "r2": 0, "r4": 2},  # 1 positive, 2 negatives -> none added
}
IMAGES = ["q1", "q2", "r1", "r2", "r3", "r4", "r5"]


def test_pairs_as_the_official_code_builds_them():
    pairs = build_pairs(RELEVANCE, ["q1", "q2"], IMAGES, PairsConfig(), seed=0)
    q1 = [p for p in pairs if p.query == "q1"]
    assert [(p.other, p.grade) for p in q1[:3]] == [("r1", 3), ("r3", 1), ("r2", 0)]
    assert len(q1) == 4 and q1[3].grade == 0
    # the outside negative is neither the query nor in its judged list
    assert q1[3].other in {"q2", "r4", "r5"}
    q2 = [(p.other, p.grade) for p in pairs if p.query == "q2"]
    assert q2 == [("r4", 2), ("r1", 0), ("r2", 0)]
    assert pairs == build_pairs(RELEVANCE, ["q1", "q2"], IMAGES, PairsConfig(), seed=0)
    # no balancing when switched off; a reference cap keeps that many judged references
    plain = build_pairs(RELEVANCE, ["q1"], IMAGES, PairsConfig(balance_negatives=False), 0)
    assert len(plain) == 3
    capped = build_pairs(RELEVANCE, ["q2"], IMAGES, PairsConfig(max_references=2), 0)
    assert len(capped) == 2
    with pytest.raises(KeyError, match="q9"):
        build_pairs(RELEVANCE, ["q9"], IMAGES, PairsConfig(), 0)


def test_pairs_are_shuffled_with_a_seed_before_the_split():
    """The code's load_inputs shuffles the pairs (one seed for all three arrays) before fit,
    so the validation pairs are a random 10%, not the last training queries' pairs."""
    pairs = [Pair(f"q{i // 10}", f"r{i}", i % 4) for i in range(100)]
    shuffled = shuffle_pairs(pairs, seed=0)
    assert sorted(shuffled, key=pairs.index) == pairs and shuffled != pairs
    assert shuffled == shuffle_pairs(pairs, seed=0) and shuffled != shuffle_pairs(pairs, seed=1)
    _, val = split_validation(shuffled, 0.1)
    assert len({p.query for p in val}) > 1  # drawn from several queries, not the last one


def test_validation_split_is_the_last_fraction_as_keras():
    pairs = [Pair("q", f"r{i}", 0) for i in range(25)]
    train, val = split_validation(pairs, 0.1)
    # Keras: split_at = int(25 * 0.9) = 22 -> the last 3 pairs validate
    assert train == pairs[:22] and val == pairs[22:]
    assert split_validation(pairs, 0.0) == (pairs, [])
    with pytest.raises(ValueError, match="val_fraction"):
        split_validation(pairs, 1.0)


def test_query_level_validation_holds_out_whole_queries():
    """``train.val_split: queries``: the validation pairs belong to queries with no training
    pair, so early stopping sees how the fusion does on queries it never trained on."""
    queries = [f"q{i}" for i in range(40)]
    fit, val = split_queries(queries, 0.1, seed=0)
    assert len(val) == 4 and sorted(fit + val, key=queries.index) == queries
    assert not set(fit) & set(val)
    assert (fit, val) == split_queries(queries, 0.1, seed=0)
    assert val != split_queries(queries, 0.1, seed=1)[1]
    assert split_queries(queries, 0.0, 0) == (queries, [])
    assert len(split_queries(queries[:3], 0.1, 0)[1]) == 1  # at least one query validates
    with pytest.raises(ValueError, match="more than 1 training queries"):
        split_queries(queries[:1], 0.1, 0)
    with pytest.raises(ValueError, match="val_fraction"):
        split_queries(queries, 1.0, 0)


def test_the_datamodule_splits_by_query_when_asked():
    from capbench.data.records import CaptionedImage
    from capbench.methods.caption_fusion.config import CaptionFusionConfig
    from capbench.methods.caption_fusion.data import FusionPairs

    rng = np.random.default_rng(0)
    refs = [f"r{i}" for i in range(12)]
    relevance = {f"q{i}": {r: int(rng.integers(0, 4)) for r in refs} for i in range(10)}
    records = [
        CaptionedImage(image_id=q, image_path=f"{q}.jpg", captions=[], split="query",
                       meta={"relevance": rel}) for q, rel in relevance.items()
    ] + [CaptionedImage(image_id=r, image_path=f"{r}.jpg", captions=[], split="reference")
         for r in refs]  # fmt: skip
    features = {r.image_id: rng.normal(size=4).astype(np.float32) for r in records}
    from dataclasses import replace

    def config(split: str) -> CaptionFusionConfig:
        cfg = CaptionFusionConfig()
        return replace(cfg, train=replace(cfg.train, val_split=split))

    dm = FusionPairs(records, features, list(relevance), config("queries"), seed=0)
    index = {tuple(v.tolist()): k for k, v in features.items()}
    train_q = {index[tuple(a.tolist())] for a in dm.train_pairs["a"]}
    val_q = {index[tuple(a.tolist())] for a in dm.val_pairs["a"]}
    assert len(val_q) == 1 and len(train_q) == 9 and not train_q & val_q
    with pytest.raises(ValueError, match="val_split must be 'pairs' or 'queries'"):
        config("folds")  # refused when the config is built, before anything trains


def test_representation_is_the_chosen_layer_and_training_uses_the_last():
    torch.manual_seed(0)
    cfg = FusionModelConfig(in_dim=6, hidden=(8, 5, 3), relu_layers=(1, 2), representation_layer=2)
    model = CaptionFusion(model=cfg)
    x = torch.randn(4, 6)
    assert model(x).shape == (4, 3)
    rep = model.represent(x)
    want = torch.relu(model.mlp[1][0](torch.relu(model.mlp[0][0](x))))
    torch.testing.assert_close(rep, want)
    with pytest.raises(ValueError, match="representation_layer"):
        CaptionFusion(model=FusionModelConfig(in_dim=6, hidden=(8,), representation_layer=2))


def test_layers_have_a_relu_where_the_official_code_has_one():
    """siamese_regression_mkr_mlp.py: h0, h3, h4 have activation='relu', the two 2048-d layers
    h1, h2 none; the representation (X12, layer 2) is the linear h1's output, so it can be
    negative, which a ReLU output cannot."""
    torch.manual_seed(0)
    model = CaptionFusion(model=FusionModelConfig())
    kinds = [type(block).__name__ for block in model.mlp]
    assert kinds == ["Sequential", "Linear", "Linear", "Sequential", "Sequential"]
    assert all(isinstance(model.mlp[i][1], torch.nn.ReLU) for i in (0, 3, 4))
    x = torch.randn(3, 1024)
    rep = model.represent(x)
    assert rep.shape == (3, 2048) and (rep < 0).any()
    torch.testing.assert_close(rep, model.mlp[1](torch.relu(model.mlp[0][0](x))))
    with pytest.raises(ValueError, match=r"relu_layers must be in 1\.\.2, got \[3\]"):
        CaptionFusion(model=FusionModelConfig(in_dim=6, hidden=(8, 4), relu_layers=(1, 3)))


def test_feature_files_round_trip_and_name_bad_files(tmp_path):
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    path = save_features(tmp_path / "f.npz", ["a", "b", "c"], feats)
    loaded = load_features(path)
    assert list(loaded) == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded["c"], [4.0, 5.0])
    np.savez(tmp_path / "bad.npz", x=feats)
    with pytest.raises(ValueError, match=r"bad\.npz.*'ids' and 'features'"):
        load_features(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        load_features(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="2 ids but 3"):
        save_features(tmp_path / "g.npz", ["a", "b"], feats)


def test_trained_fusion_ranks_its_training_queries_better_than_untrained(tiny_scenes, tmp_path):
    """Learning is real: on the tiny graded benchmark (thumbnail features, every query used for
    training), the fusion's representation ranks the training queries' references by grade
    better after training than at its initialisation, and its pair loss falls."""
    from dataclasses import replace

    from capbench.data import read
    from capbench.eval.protocols.graded_retrieval import (
        build_graded_data,
        score_similarity,
        similarity,
    )
    from capbench.methods.caption_fusion.config import CaptionFusionConfig, FusionTrainConfig
    from capbench.methods.caption_fusion.data import FusionPairs
    from capbench.methods.caption_fusion.features import thumbnail_features
    from capbench.methods.caption_fusion.train import train_caption_fusion

    torch.set_num_threads(1)
    records = list(read("graded_retrieval", tiny_scenes / "graded_retrieval"))
    data = build_graded_data(records)
    feats = thumbnail_features(records)
    cfg = CaptionFusionConfig(
        model=FusionModelConfig(
            in_dim=192, hidden=(64, 64, 32), relu_layers=(1, 3), representation_layer=2
        ),
        train=replace(FusionTrainConfig(), lr=0.05, batch_size=32, max_epochs=80, val_fraction=0.0),
    )
    queries = [q.image_id for q in data.queries]
    dm = FusionPairs(records, feats, queries, cfg, seed=0)
    x = torch.tensor(np.stack([feats[r.image_id] for r in data.queries + data.references]))
    n_q = len(queries)

    def ndcg(model: CaptionFusion) -> float:
        rep = model.represent(x).numpy()
        return score_similarity(similarity(rep[:n_q], rep[n_q:]), data, (5, 10, 20))["ndcg_mean"]

    def pair_loss(model: CaptionFusion) -> float:
        p = dm.train_pairs
        with torch.no_grad():
            return float(model.pair_loss(p["a"], p["b"], p["grade"]))

    torch.manual_seed(0)
    untrained = CaptionFusion(model=cfg.model, train=cfg.train, pairs=cfg.pairs).eval()
    model, _ = train_caption_fusion(
        cfg, dm, tmp_path, seed=0, accelerator="cpu", devices=1, progress=False
    )
    assert pair_loss(model) < 0.7 * pair_loss(untrained), (pair_loss(model), pair_loss(untrained))
    assert ndcg(model) > ndcg(untrained) + 0.05, (ndcg(model), ndcg(untrained))


def test_captioner_folder_follows_the_training_data_content(tmp_path, monkeypatch):
    """One cached captioner per (config, seed, data): the same path with other content (scenes
    rewritten at another size) must train a new one, not load the old."""
    from capbench.methods.caption_fusion.config import row_config
    from capbench.methods.caption_fusion.rows import captioner_workdir
    from capbench.methods.protocol import RowContext

    monkeypatch.setenv("CAPBENCH_CACHE", str(tmp_path / "cache"))
    cfg = row_config({"row": {"kind": "fic"}})
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="scenes", data_root=tmp_path / "d")
    coco = tmp_path / "d" / cfg.captioning.coco
    coco.mkdir(parents=True)
    (coco / "dataset_coco.json").write_text('{"images": []}')
    before = captioner_workdir("show_and_tell", cfg, ctx)
    assert captioner_workdir("show_and_tell", cfg, ctx) == before
    assert captioner_workdir("region_captioner", cfg, ctx) != before
    (coco / "dataset_coco.json").write_text('{"images": [{"split": "train"}]}')
    assert captioner_workdir("show_and_tell", cfg, ctx) != before
    # the trunk enters by content: another file at the same path is another captioner
    weights = tmp_path / "trunk.pt"
    weights.write_bytes(b"one trunk")
    on_file = row_config(
        {"row": {"kind": "fic"}, "show_and_tell": {"backbone_weights": str(weights)}}
    )
    first = captioner_workdir("show_and_tell", on_file, ctx)
    assert first != captioner_workdir("show_and_tell", cfg, ctx)  # vs random init
    weights.write_bytes(b"another trunk")
    assert captioner_workdir("show_and_tell", on_file, ctx) != first


def test_fused_row_names_a_feature_width_that_does_not_match_model_in_dim():
    import numpy as np

    from capbench.methods.caption_fusion.config import row_config
    from capbench.methods.caption_fusion.rows import _fused

    cfg = row_config({"row": {"kind": "fused"}})  # in_dim 1024: [BoRD 512 ; FIC 512]
    with pytest.raises(ValueError, match=r"set model\.in_dim to 768"):
        _fused(cfg, None, None, np.zeros((4, 768), dtype=np.float32))  # type: ignore[arg-type]


def test_captioner_folder_follows_the_number_of_training_processes(tmp_path, monkeypatch):
    """A captioner trained with DDP over N processes saw N times the batch: another captioner,
    not one a one-process run of the same config may load. One process keeps the key it had."""
    from dataclasses import replace

    from capbench.methods.caption_fusion.config import row_config
    from capbench.methods.caption_fusion.rows import captioner_workdir
    from capbench.methods.protocol import RowContext

    monkeypatch.setenv("CAPBENCH_CACHE", str(tmp_path / "cache"))
    cfg = row_config({"row": {"kind": "fic"}})
    ctx = RowContext(workdir=tmp_path / "w", seed=0, profile="scenes", data_root=tmp_path / "d",
                     accelerator="cpu")  # fmt: skip
    coco = tmp_path / "d" / cfg.captioning.coco
    coco.mkdir(parents=True)
    (coco / "dataset_coco.json").write_text('{"images": []}')
    one = captioner_workdir("show_and_tell", cfg, ctx)
    assert ctx.training_world_size() == 1
    assert captioner_workdir("show_and_tell", cfg, replace(ctx, devices=1)) == one
    two = replace(ctx, devices=2)
    assert two.training_world_size() == 2
    assert captioner_workdir("show_and_tell", cfg, two) != one
    assert replace(ctx, devices="2", num_nodes=2).training_world_size() == 4
    # a list of GPU ids, read by Lightning's own parser on a node that shows two GPUs
    import lightning.fabric.accelerators.cuda as lightning_cuda

    monkeypatch.setattr(RowContext, "may_use_gpu", lambda self: True)
    monkeypatch.setattr(lightning_cuda, "_get_all_visible_cuda_devices", lambda: [0, 1])
    gpus = replace(ctx, accelerator="gpu", devices="0,1", num_nodes=2)
    assert gpus.training_world_size() == 4


def test_cached_scores_and_features_are_kept_apart_per_device(tmp_path, monkeypatch):
    """CPU and GPU float paths differ slightly: a GPU run's cached caption scores and features
    carry the device in their names, so they neither serve nor overwrite a CPU run's (whose
    names, and so the existing caches, stay as they were)."""
    import torch

    from capbench.methods.caption_fusion.rows import _device_tag
    from capbench.methods.protocol import RowContext

    ctx = RowContext(workdir=tmp_path, seed=0, profile="scenes", data_root=tmp_path,
                     accelerator="auto")  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _device_tag(ctx) == ""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _device_tag(ctx) == "-cuda"
    ctx.accelerator = "cpu"  # a GPU node asked to stay on the CPU
    assert _device_tag(ctx) == ""
