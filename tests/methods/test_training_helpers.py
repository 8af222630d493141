"""``capbench.methods.training.resolve_pretrain_data``: every method's row resolves the scenes
trunk's pretraining section through it, so its two rules are tested once here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from capbench.methods.training import fit_resumable, resolve_pretrain_data
from tests.distributed import run_gloo


@dataclass(frozen=True)
class _Cfg:
    pretrain: dict[str, Any] = field(default_factory=dict)


def test_pretrain_data_is_made_absolute_under_the_data_root(tmp_path: Path):
    cfg = resolve_pretrain_data(_Cfg({"data": "scenes_pretrain"}), tmp_path)
    assert cfg.pretrain["data"] == str(tmp_path / "scenes_pretrain")
    absolute = _Cfg({"data": "/elsewhere/pretrain"})
    assert resolve_pretrain_data(absolute, tmp_path) is absolute  # nothing to change


def test_the_row_seed_seeds_the_pretraining_unless_the_config_does(tmp_path: Path):
    # another seed must mean another trunk: golden tolerances are measured over seeds and must
    # include the trunk's spread (another CPU pretrains another trunk)
    seeds = [resolve_pretrain_data(_Cfg({"epochs": 6}), tmp_path, s).pretrain for s in (0, 1, 2)]
    assert [p["seed"] for p in seeds] == [0, 1, 2]
    assert all(p["epochs"] == 6 for p in seeds)
    pinned = resolve_pretrain_data(_Cfg({"seed": 7}), tmp_path, 2)
    assert pinned.pretrain["seed"] == 7
    assert "seed" not in resolve_pretrain_data(_Cfg({}), tmp_path).pretrain  # no row seed given


class _BatchNormNet(L.LightningModule):
    """A BatchNorm and a linear layer: after a fit on a rank's own data its running mean is that
    data's, as each DDP rank's is after its last local batch."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(2)
        self.lin = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.lin(self.norm(batch)).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit_on_rank_data(rank: int, world: int) -> dict:
    """A real Lightning DDP fit over the gloo group, each rank on data of its own (shifted by
    its rank). ``LOCAL_RANK`` tells Lightning the processes were launched outside it, so it
    joins the existing group instead of spawning ranks."""
    import os
    import tempfile

    os.environ["LOCAL_RANK"] = str(rank)

    class _Data(L.LightningDataModule):
        def train_dataloader(self):
            g = torch.Generator().manual_seed(rank)
            return DataLoader(torch.randn(8, 2, generator=g) + 3.0 * rank, batch_size=4)

    torch.manual_seed(0)
    module = _BatchNormNet()
    with tempfile.TemporaryDirectory() as workdir:
        fit_resumable(module, _Data(), workdir, max_epochs=1, accelerator="cpu", devices=world,
                      strategy="ddp", loggers=False, progress=False)  # fmt: skip
    return {k: v.tolist() for k, v in module.state_dict().items()}


def test_after_a_fit_every_rank_holds_rank_zeros_state():
    """``fit_resumable`` ends with rank 0's parameters and buffers on every rank (what its
    checkpoint holds), although each rank trained on batches of its own."""
    zero, one = run_gloo(_fit_on_rank_data, world=2)
    assert zero["norm.running_mean"] != _BatchNormNet().state_dict()["norm.running_mean"].tolist()
    for key in zero:
        torch.testing.assert_close(torch.tensor(one[key]), torch.tensor(zero[key]))
