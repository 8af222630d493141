"""GPU check of the paper profile: training steps of ICMLM at the paper's sizes on random
inputs, with their throughput (images/s) and the GPU's peak memory.

The sizes come from a paper-profile row config (default ``icmlm_tfm.paper.yaml``): ResNet-50 from
scratch at 224 px, batch 256, K = 1000 concepts, 80 object categories, bf16 autocast, and the
frozen text encoder, here a randomly initialised BERT-base (``transformers.BertConfig()``'s
defaults are BERT-base: 12 layers, 768-d): speed and memory do not depend on the weights, so no
checkpoint is needed. Captions are random ids of ``--caption-len`` tokens with one masked.
The steps go through the same ``Icmlm`` module and its ``losses`` as the rows.

Run on a GPU node::

    python benchmarks/sariyildiz2020/gpu_check.py --out results/sariyildiz2020/gpu_check.json
    python benchmarks/sariyildiz2020/gpu_check.py --row icmlm_att_fc.paper.yaml

``--preset smoke`` shrinks everything (resnet18, 64 px, batch 4, a 2-layer BERT) so the script
itself is tested on a CPU; ``--set key=value`` overrides any config value.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from capbench.bench.config import resolve_config
from capbench.methods.icmlm.config import IcmlmRow, row_config
from capbench.timing import report_json, synchronized_clock

HERE = Path(__file__).parent
DEFAULT_ROW = "icmlm_tfm.paper.yaml"
SMOKE = [
    "model.backbone=torchvision::resnet18",
    "model.image_size=64",
    "model.dim=32",
    "model.tfm_heads=4",
    "model.attfc_hidden=32",
    "train.batch_size=4",
    "train.precision=32-true",
]
PAPER_SIZES = {"concepts": 1000, "categories": 80, "bert": {}}  # COCO: 80 object categories
SMOKE_SIZES = {
    "concepts": 20,
    "categories": 5,
    "bert": {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2,
             "intermediate_size": 128},
}  # fmt: skip


class RandomBert:
    """A frozen BERT with random weights, with ``FrozenTextEncoder``'s interface."""

    def __init__(self, options: dict[str, Any], device: torch.device) -> None:
        from transformers import BertConfig, BertModel

        self.model = BertModel(BertConfig(**options)).to(device).eval().requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self.vocab = int(self.model.config.vocab_size)

    def to(self, device: Any) -> RandomBert:
        return self

    @torch.no_grad()
    def encode(self, input_ids: Tensor, attention: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention).last_hidden_state.float()


def build(row: str, overrides: list[str], sizes: dict[str, Any], device: torch.device) -> Any:
    """The row's Icmlm module with the random BERT and heads for ``sizes``."""
    from capbench.methods.icmlm.module import Icmlm

    cfg: IcmlmRow = row_config(resolve_config(HERE / row, overrides=overrides))
    model = Icmlm(model=cfg.model, concepts=cfg.concepts, train=cfg.train)
    model._text = RandomBert(sizes["bert"], device)
    cats = [f"category{i}" for i in range(sizes["categories"])]
    model.build_heads([f"concept{i}" for i in range(sizes["concepts"])], cats)
    return cfg, model.to(device)


def random_batch(cfg: IcmlmRow, model: Any, caption_len: int, device: torch.device) -> dict:
    b, s = cfg.train.batch_size, cfg.model.image_size
    k, c = len(model.concept_words), len(model.categories)
    return {
        "image": torch.randn(b, 3, s, s, device=device),
        "input_ids": torch.randint(1000, model.text_encoder.vocab, (b, caption_len), device=device),
        "attention": torch.ones(b, caption_len, dtype=torch.long, device=device),
        "position": torch.randint(1, caption_len - 1, (b,), device=device),
        "target": torch.randint(0, k, (b,), device=device),
        "postags": (torch.rand(b, k, device=device) < 0.01).float(),
        "labels": (torch.rand(b, c, device=device) < 0.05).float(),
    }


def step_check(args: argparse.Namespace) -> dict[str, Any]:
    """``--steps`` optimizer steps after ``--warmup`` ones; images/s and peak memory."""
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    smoke = args.preset == "smoke"
    overrides = (SMOKE if smoke else []) + list(args.set or [])
    cfg, model = build(args.row, overrides, SMOKE_SIZES if smoke else PAPER_SIZES, device)
    bf16 = cfg.train.precision.startswith("bf16") and device.type == "cuda"
    opt = torch.optim.SGD(model.parameters(), lr=cfg.train.lr, momentum=cfg.train.momentum)
    batch = random_batch(cfg, model, args.caption_len, device)
    model.train()

    def one_step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.losses(batch)["loss"]
        loss.backward()
        opt.step()
        return float(loss.detach())

    for _ in range(args.warmup):
        one_step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = synchronized_clock(device)
    losses = [one_step() for _ in range(args.steps)]
    seconds = synchronized_clock(device) - start
    images = args.steps * cfg.train.batch_size
    out = {
        "row": args.row,
        "preset": args.preset,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor(),
        "mode": cfg.train.mode,
        "backbone": cfg.model.backbone,
        "image_size": cfg.model.image_size,
        "batch_size": cfg.train.batch_size,
        "precision": "bf16-mixed" if bf16 else "32-true",
        "steps": args.steps,
        "images_per_s": images / seconds,
        "seconds_per_step": seconds / args.steps,
        "peak_memory_gib": (torch.cuda.max_memory_allocated(device) / 2**30)
        if device.type == "cuda"
        else None,
        "loss_finite": all(torch.isfinite(torch.tensor(losses)).tolist()),
        "epoch_hours_coco": 118_287 / (images / seconds) / 3600,  # train2017 images per epoch
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", default=DEFAULT_ROW, help="a paper-profile row config")
    parser.add_argument("--preset", choices=["paper", "smoke"], default="paper")
    parser.add_argument("--set", action="append", help="override a config value (key=value)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--caption-len", type=int, default=20)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even with a GPU")
    parser.add_argument("--out", type=Path, default=None, help="write the summary here (JSON)")
    args = parser.parse_args(argv)
    if "model.text_encoder" not in " ".join(args.set or []):  # the random BERT stands in
        args.set = [*(args.set or []), "model.text_encoder=random-bert"]
    result = step_check(args)
    report_json(result, args.out, indent=1)
    return 0 if result["loss_finite"] else 1


if __name__ == "__main__":
    sys.exit(main())
