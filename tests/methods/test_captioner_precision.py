"""Both captioners follow their config's ``precision``: under ``bf16-mixed`` the LSTM runs in
bfloat16 (what makes the scenes profile's captioners cheaper on these CPUs) while the weights
stay float32 and finite; the default runs it in float32."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch

from capbench.data import read
from capbench.methods.caption_fusion.captioning import train_captioner
from capbench.methods.caption_fusion.config import RegionCaptionerConfig, ShowAndTellConfig


class LstmDtypes(L.Callback):
    """The dtype of the decoder LSTM's output at every training step."""

    def __init__(self) -> None:
        self.seen: set[torch.dtype] = set()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        def hook(module: Any, args: Any, output: Any) -> None:
            self.seen.add(output[0].dtype)

        pl_module.net.decoder.lstm.register_forward_hook(hook)


def _records(kind: str, tiny_scenes):
    if kind == "show_and_tell":
        return read("coco", tiny_scenes / "coco", "train", splits="karpathy")
    return read("visual_genome", tiny_scenes / "visual_genome", "train")[:16]


def _config(kind: str, precision: str) -> Any:
    if kind == "show_and_tell":
        return ShowAndTellConfig(
            backbone="timm::resnet18", allow_random_init=True, image_size=32, min_count=1,
            optimizer="adam", lr=1e-3, epochs=1, batch_size=8, max_len=8, precision=precision,
        )  # fmt: skip
    return RegionCaptionerConfig(
        backbone="timm::resnet18", allow_random_init=True, image_size=64, min_count=1,
        anchor_sizes=(16, 32), fc_dim=32, fc_layers=1, sample_size=16, train_proposals=40,
        proposals=20, pool_size=1, feature_norm="batchnorm", dim=32, lr=2e-3, batch_size=4,
        epochs=1, max_len=8, cache_trunk_features=True, precision=precision,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["show_and_tell", "region_captioner"])
@pytest.mark.parametrize(
    ("precision", "lstm_dtype"), [("bf16-mixed", torch.bfloat16), ("32-true", torch.float32)]
)
def test_the_lstm_runs_at_the_configured_precision(
    kind, precision, lstm_dtype, tiny_scenes, tmp_path
):
    dtypes = LstmDtypes()
    module, _ = train_captioner(
        kind, _config(kind, precision), _records(kind, tiny_scenes), tmp_path,
        seed=0, accelerator="cpu", devices=1, progress=False, callbacks=[dtypes],
    )  # fmt: skip
    assert dtypes.seen == {lstm_dtype}
    out = module.net.decoder.out.weight
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
