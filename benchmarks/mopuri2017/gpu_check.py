"""GPU check of the paper profile: training throughput (images/s) and peak memory of both
captioners at the paper's sizes on random inputs.

* Show-and-Tell: GoogLeNet at 299 px, batch 32, captions of 20 words, LSTM 512 (im2txt's
  sizes; the trunk frozen, as its first phase).
* Region captioner: ResNet-101 cut at stride 16, images of 720 px (longest side, 720 x 540),
  one image per step with 50 random region boxes and phrases of 15 words (Visual Genome has
  ~50 regions per image), RPN + 256 sampled boxes + 4096-d recognition layers.

The same LightningModules the rows train, stepped by hand (forward, loss, backward, optimizer)
after ``--warmup`` untimed steps, the forward and loss under bf16 autocast as the paper profile
trains (``--precision 32-true`` for float32). No data or weights are read (random trunks). ``--image-size``
scales both models' inputs down and ``--fc-dim`` the region captioner's recognition layers for
the CPU smoke test.

    python benchmarks/mopuri2017/gpu_check.py --out results/mopuri2017/gpu_check.json
    python benchmarks/mopuri2017/gpu_check.py --steps 1 --warmup 0 --device cpu --image-size 64 --fc-dim 256
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from capbench.methods.caption_fusion.captioning import RegionCaptionerModule, ShowAndTellModule
from capbench.methods.caption_fusion.config import RegionCaptionerConfig, ShowAndTellConfig
from capbench.models.captioners.region_captioner import weighted_loss
from capbench.timing import report_json

VOCAB = [f"w{i}" for i in range(10_000)]  # ~COCO / VG vocabularies at their min counts
REGIONS_PER_IMAGE = 50


def _vocab() -> list[str]:
    from capbench.data.text import DEFAULT_SPECIALS

    return [*DEFAULT_SPECIALS, *VOCAB]


def _time(step: Callable[[], float], steps: int, warmup: int, cuda: bool) -> tuple[float, float]:
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    last = float("nan")
    for _ in range(steps):
        last = step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, last


@torch.no_grad()
def _estimate_batchnorm(trunk: torch.nn.Module, images: torch.Tensor) -> None:
    """Give a random-init trunk the BatchNorm statistics of the check's own inputs, then freeze
    it again (eval mode, as the captioners hold their trunk). With the initial statistics (mean
    0, variance 1) a random ResNet's activations grow stage after stage into the thousands and
    overflow bf16: the loss came out NaN on a GPU. A pretrained trunk has real statistics; the
    check measures speed and memory, but its loss should be a number."""
    for m in trunk.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: one pass sets the batch's statistics
    trunk.train()
    trunk(images)
    trunk.eval()


def _stepper(
    module: Any, loss_fn: Callable[[], torch.Tensor], device: str, precision: str
) -> Callable[[], float]:
    opt = module.configure_optimizers()
    bf16 = precision.startswith("bf16")

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def measure_show_and_tell(
    steps: int, warmup: int, device: str, image_size: int | None, precision: str = "bf16-mixed"
) -> dict[str, Any]:
    cfg = replace(ShowAndTellConfig(), allow_random_init=True)
    size = image_size or cfg.image_size
    module = ShowAndTellModule(model=cfg, vocab=_vocab()).to(device).train()
    module.net.trunk.eval()
    images = torch.randn(cfg.batch_size, 3, size, size, device=device)
    _estimate_batchnorm(module.net.trunk, images)
    tokens = torch.randint(5, len(VOCAB), (cfg.batch_size, cfg.max_len), device=device)
    step = _stepper(module, lambda: module.net.loss(images, tokens), device, precision)
    out = _summary("show_and_tell", cfg.batch_size, size, steps, warmup, device, step)
    return {**out, "precision": precision}


def measure_region_captioner(
    steps: int,
    warmup: int,
    device: str,
    image_size: int | None,
    precision: str = "bf16-mixed",
    fc_dim: int | None = None,
) -> dict[str, Any]:
    cfg = replace(RegionCaptionerConfig(), allow_random_init=True)
    if fc_dim is not None:
        cfg = replace(cfg, fc_dim=fc_dim)
    size = image_size or cfg.image_size
    h, w = size * 3 // 4, size
    module = RegionCaptionerModule(model=cfg, vocab=_vocab()).to(device).train()
    module.net.trunk.eval()
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(REGIONS_PER_IMAGE, 2, generator=gen) * torch.tensor([w * 0.7, h * 0.7])
    wh = (0.1 + 0.2 * torch.rand(REGIONS_PER_IMAGE, 2, generator=gen)) * torch.tensor([w, h])
    boxes = [torch.cat([xy, xy + wh], dim=1).to(device)]
    tokens = [
        torch.randint(5, len(VOCAB), (REGIONS_PER_IMAGE, cfg.max_len), generator=gen).to(device)
    ]
    images = module.image_list(torch.randn(1, 3, h, w, device=device))
    _estimate_batchnorm(module.net.trunk, images.tensors)

    def loss() -> torch.Tensor:
        return weighted_loss(module.net.loss(images, boxes, tokens), module.cfg.loss_weights)

    step = _stepper(module, loss, device, precision)
    out = _summary("region_captioner", 1, size, steps, warmup, device, step)
    return {**out, "precision": precision, "fc_dim": cfg.fc_dim}


def _summary(
    name: str, batch: int, size: int, steps: int, warmup: int, device: str, step: Any
) -> dict[str, Any]:
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds, last = _time(step, steps, warmup, cuda)
    return {
        "captioner": name,
        "batch": batch,
        "image_size": size,
        "steps": steps,
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or device,
        "seconds": seconds,
        "images_per_s": steps * batch / seconds,
        "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "last_loss": last,
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--captioner", choices=("both", "show_and_tell", "region_captioner"), default="both"
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image-size", type=int, default=None, help="override (CPU smoke)")
    # the region captioner's 4096-d recognition layers over a 7 x 7 x 1024 pooled region are 220 M
    # weights; a CPU step through them under bf16 autocast took ~25 s
    parser.add_argument(
        "--fc-dim", type=int, default=None, help="override the region captioner's (CPU smoke)"
    )
    parser.add_argument(
        "--precision", choices=("bf16-mixed", "32-true"), default="bf16-mixed",
        help="as the paper profile trains (base_paper.yaml)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    if args.captioner in ("both", "show_and_tell"):
        result["show_and_tell"] = measure_show_and_tell(
            args.steps, args.warmup, args.device, args.image_size, args.precision
        )
    if args.captioner in ("both", "region_captioner"):
        result["region_captioner"] = measure_region_captioner(
            args.steps, args.warmup, args.device, args.image_size, args.precision, args.fc_dim
        )
    report_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
