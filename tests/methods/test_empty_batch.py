"""A batch with nothing to learn from (every image corrupt) on one DDP rank: the fit goes on.

Returning None from ``training_step`` there makes Lightning stop the fit with a RuntimeError
(measured with this test's module: "Skipping the `training_step` by returning None in
distributed training is not supported"); :func:`empty_batch_loss` makes that rank contribute
zero gradients instead. The DDP case runs a real two-process Lightning fit (gloo, CPU) and
checks the step exactly."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from capbench.methods.empty_batch import empty_batch_loss

LR = 0.5
X = torch.tensor([[1.0, 2.0, -1.0]])


class _OneLinear(L.LightningModule):
    """Rank 0 learns from ``X``; every other rank's only batch is empty."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1, bias=False)
        self.frozen = nn.Linear(3, 1)  # not trainable: must not enter the zero loss
        self.frozen.requires_grad_(False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.1, -0.2, 0.3]]))

    def training_step(self, batch, batch_idx):
        if self.global_rank != 0:
            return empty_batch_loss(self)
        return self.lin(X).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.lin.parameters(), lr=LR)

    def on_train_end(self) -> None:
        torch.save(
            self.lin.weight.detach().clone(),
            f"{self.trainer.default_root_dir}/w{self.global_rank}.pt",
        )

    def teardown(self, stage: str) -> None:
        """Close the gloo process group in each spawned rank before it exits. Lightning destroys
        only NCCL's at exit; a rank that exited with gloo's still open aborted once in CI
        ("terminate called without an active exception", SIGABRT) after both ranks had saved
        their weights. The barrier keeps one rank from closing while the other still talks."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


class _AlwaysEmpty(_OneLinear):
    def training_step(self, batch, batch_idx):
        return empty_batch_loss(self)


def test_one_process_skips_the_step(tmp_path):
    assert empty_batch_loss(_OneLinear()) is None  # not attached to a Trainer: one process
    model = _AlwaysEmpty()
    before = model.lin.weight.detach().clone()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(tmp_path))  # fmt: skip
    trainer.fit(model, DataLoader(range(3), batch_size=1))
    assert model.lin.weight.grad is None  # None: Lightning ran no backward for these batches
    torch.testing.assert_close(model.lin.weight.detach(), before, atol=0, rtol=0)


def test_the_zero_loss_reaches_every_trainable_parameter_and_no_frozen_one(monkeypatch):
    import capbench.methods.empty_batch as eb

    monkeypatch.setattr(eb, "_world_size", lambda module: 2)
    model = _OneLinear()
    loss = empty_batch_loss(model)
    assert loss is not None and float(loss) == 0.0
    loss.backward()
    assert model.lin.weight.grad is not None and not model.lin.weight.grad.any()
    assert model.frozen.weight.grad is None


def test_ddp_rank_with_an_empty_batch_takes_the_same_step(tmp_path, monkeypatch):
    # Lightning's ddp_spawn launcher hands rank 0's weights back through a fresh
    # ``tempfile.mkdtemp()`` folder and deletes only the file in it: the spawned ranks read
    # TMPDIR, so the empty folder is left here instead of in /tmp after every test run.
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    model = _OneLinear()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, DataLoader(range(2), batch_size=1))  # one batch per rank
    w0, w1 = (torch.load(tmp_path / f"w{r}.pt") for r in (0, 1))
    # d(sum(w x))/dw = x on rank 0, zeros on rank 1: the all-reduce averages them to x / 2
    expected = torch.tensor([[0.1, -0.2, 0.3]]) - LR * X / 2
    torch.testing.assert_close(w0, expected)
    torch.testing.assert_close(w1, expected)
