"""``benchmarks/reed2016/gpu_check.py`` on the CPU at a few steps: the paper-size throughput
check must run where it is kept, before a GPU is lent."""

from __future__ import annotations

import json


def test_gpu_check_trains_char_cnn_rnn_at_batch_40_and_writes_its_summary(
    benchmark_script, tmp_path
):
    check = benchmark_script("reed2016/gpu_check.py")
    out = tmp_path / "check.json"
    result = check.main(["--steps", "2", "--warmup", "1", "--device", "cpu", "--out", str(out)])
    assert result["encoder"] == "char_cnn_rnn" and result["batch"] == 40
    assert result["captions_per_s"] > 0 and result["hours_per_model_200_epochs"] > 0
    assert result["peak_memory_mib"] is None  # measured on CUDA only
    assert 0 < result["last_loss"] < 10  # DS-SJE of random inputs: about 2 x margin
    assert json.loads(out.read_text()) == result
