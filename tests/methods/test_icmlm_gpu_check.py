"""The ICMLM GPU check runs (smoke preset, on the CPU) through the rows' module and losses."""

from __future__ import annotations

import json

import torch

torch.set_num_threads(1)


def test_smoke_preset_reports_throughput_and_finite_losses(benchmark_script, tmp_path):
    gpu_check = benchmark_script("sariyildiz2020/gpu_check.py")
    out = tmp_path / "gpu.json"
    for row in ("icmlm_tfm.paper.yaml", "icmlm_att_fc.paper.yaml"):
        assert gpu_check.main(["--preset", "smoke", "--cpu", "--steps", "1", "--warmup", "1",
                               "--row", row, "--out", str(out)]) == 0  # fmt: skip
        doc = json.loads(out.read_text())
        assert doc["loss_finite"] and doc["images_per_s"] > 0
        assert doc["batch_size"] == 4 and doc["image_size"] == 64
    assert doc["mode"] == "att-fc" and doc["precision"] == "32-true"
