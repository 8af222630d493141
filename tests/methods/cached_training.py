"""The check both captioners' trunk caches share: training on the frozen trunk's output
computed once must end with the weights of running the trunk at every step, from one seed, with
the trunk where it started and the named layers far from it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from capbench.methods.caption_fusion.captioning import CAPTIONERS, train_captioner


def assert_cache_trains_the_same_weights(
    kind: str,
    config: Callable[[bool], Any],
    records: Sequence[Any],
    workdir: Path,
    seed: int,
    trained_layers: Sequence[str],
    atol: float,
) -> None:
    """``config(cache)`` builds the captioner's config with the cache on or off."""
    torch.set_num_threads(1)
    kw = {"accelerator": "cpu", "devices": 1, "progress": False, "seed": seed}
    cached, _ = train_captioner(kind, config(True), records, workdir / "c", **kw)
    direct, _ = train_captioner(kind, config(False), records, workdir / "d", **kw)
    L.seed_everything(seed, workers=True, verbose=False)  # as train_captioner does
    start = CAPTIONERS[kind](model=config(True), vocab=cached.vocab.itos)

    trained = dict(direct.net.named_parameters())
    initial = dict(start.net.named_parameters())
    for name, p in cached.net.named_parameters():
        torch.testing.assert_close(p, trained[name], atol=atol, rtol=1e-4, msg=name)
        if name.startswith("trunk."):
            torch.testing.assert_close(p, initial[name], msg=f"{name}: the frozen trunk moved")
    for name in trained_layers:
        moved = float((trained[name] - initial[name]).abs().max().detach())
        assert moved > 1e-3, f"{name} did not train"
