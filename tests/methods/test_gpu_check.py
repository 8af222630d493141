"""``benchmarks/gordo2017/gpu_check.py`` at its smoke size on the CPU: the paper-profile check
(mining round + training steps + memory table) must run where it is kept, before a GPU is lent."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="module")
def check(benchmark_script):
    return benchmark_script("gordo2017/gpu_check.py")


def test_paper_sizes_come_from_the_paper_row_config(check):
    cfg = check.paper_row("proposed_vt_vt", "paper", [])
    assert cfg.model.backbone == "torchvision::resnet101"
    assert cfg.model.longest_side == 576 and cfg.model.allow_random_init
    assert cfg.mining.pool_queries == 500 and cfg.mining.batch_size == 64
    assert cfg.train.precision == "bf16-mixed" and cfg.train.micro_batches > 1
    assert (
        check.paper_row("proposed_vt_vt", "smoke", ["mining.pool_queries=5"]).mining.pool_queries
        == 5
    )


def test_random_training_data_never_counts_an_image_relevant_to_itself(check):
    images, relevance = check.random_training_data(n=50, side=8, vocab=20, words=4, k=6, seed=1)
    assert relevance.relevant.shape == (50, 6)
    assert not (relevance.relevant == torch.arange(50)[:, None]).any()
    assert int(relevance.relevant.min()) >= 0 and int(relevance.relevant.max()) < 50
    norms = torch.from_numpy(relevance.tfidf.multiply(relevance.tfidf).sum(1).A1)
    torch.testing.assert_close(norms, torch.ones(50))
    a, b = images[3]["image"], images[3]["image"]
    assert a.shape == (3, 8, 8) and torch.equal(a, b)


def test_step_check_mines_once_and_times_each_update(check, tmp_path):
    torch.set_num_threads(1)
    out_file = tmp_path / "gpu_check.json"
    assert check.main(["step", "--preset", "smoke", "--steps", "2", "--out", str(out_file)]) == 0
    out = json.loads(out_file.read_text())
    assert out["row"] == "proposed_vt_vt" and out["mode"] == "V+T"
    assert out["micro_batches"] == 2 and out["images_per_step"] == 3 * 8
    assert len(out["step_seconds"]) == 2 and len(out["step_losses"]) == 2
    assert all(s > 0 for s in out["step_seconds"]) and out["train_images_per_s"] > 0
    mining = out["mining"]
    # 8 queries with 3 positives each, drawn from 200 images: a pool of up to 32
    assert 8 < mining["pool"] <= 32 and mining["candidates"] > 0
    assert mining["images_per_s"] == pytest.approx(mining["pool"] / mining["embed_seconds"])
    assert out["peak_memory_gib"] is None  # no GPU here


def test_memory_table_scales_with_the_images_of_one_micro_batch(check, capsys):
    cfg = check.paper_row("proposed_v_v", "smoke", [])
    table = check.memory_table(cfg)
    gib = table["saved_gib_per_micro_batches"]
    assert table["images_per_step"] == 3 * 8 and set(gib) == {1, 2, 4, 8}
    assert table["saved_mib_per_image"] > 0
    per_image = table["saved_mib_per_image"] / 1024
    assert gib[1] - gib[2] == pytest.approx(per_image * 24 / 2)
    assert gib[4] - gib[8] == pytest.approx(per_image * 24 / 8)
    assert check.main(["memory", "--preset", "smoke"]) == 0
    assert "<- configured" in capsys.readouterr().out
