"""GPU check of the malali2022 paper profile: a few training steps of the full Malali model
(ResNet-152 fine-tuned, 224 px images, GRU text tower, product quantizer, center loss, adaptive
margin) at the paper profile's batch on random inputs, with image-caption pairs per second and
the GPU's peak memory.

The sizes come from the paper-profile row config (default ``malali.paper.yaml``); the trunk
starts from random weights (speed does not depend on the values), the vocabulary and the
number of training concepts are COCO-sized (``--vocab``, ``--concepts``), captions are random
token ids of ``model.max_len`` words at most. The steps run the module's own loss
(``QuantizedEmbedding.batch_losses``) and optimizer, under bf16 autocast when the row's
precision is bf16.

    python benchmarks/malali2022/gpu_check.py --out results/malali2022/gpu_check.json

``--preset smoke`` shrinks everything (resnet18, 32 px, batch 8) so the script itself is tested
on a CPU; ``--set key=value`` overrides any config value.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from capbench.bench.config import resolve_config
from capbench.methods.quantized_embedding.config import QuantizedEmbeddingRow, row_config
from capbench.timing import report_json, synchronized_clock

HERE = Path(__file__).parent
DEFAULT_ROW = "malali"
SMOKE = [
    "model.backbone=timm::resnet18",
    "model.image_size=32",
    "model.embed_dim=32",
    "model.word_dim=16",
    "quantizer.subspaces=4",
    "quantizer.codewords=16",
    "train.batch_size=8",
    "train.precision=32-true",
]


def paper_row(row: str, preset: str, overrides: list[str]) -> QuantizedEmbeddingRow:
    """The paper-profile row config with random init allowed, the preset and ``--set``."""
    sets = ["model.backbone_weights=null", "model.allow_random_init=true"]
    sets += SMOKE if preset == "smoke" else []
    return row_config(resolve_config(HERE / f"{row}.paper.yaml", [*sets, *overrides]))


def random_batch(
    cfg: QuantizedEmbeddingRow, vocab: int, concepts: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """A batch as the ``pairs`` view serves it: images, token ids (0 = padding), lengths and
    the training-image index of each pair."""
    b, side, n = cfg.train.batch_size, cfg.model.image_size, cfg.model.max_len
    lengths = torch.randint(4, n + 1, (b,), generator=generator)
    tokens = torch.randint(5, vocab, (b, n), generator=generator)
    tokens[torch.arange(n).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return {
        "image": torch.randn(b, 3, side, side, generator=generator),
        "tokens": tokens,
        "length": lengths,
        "index": torch.randperm(concepts, generator=generator)[:b],
    }


def run_steps(
    cfg: QuantizedEmbeddingRow, steps: int, vocab: int, concepts: int, device: str
) -> dict[str, Any]:
    """``steps`` optimizer steps on random batches: seconds and loss per step, peak memory."""
    from capbench.methods.quantized_embedding.module import QuantizedEmbedding

    torch.manual_seed(0)
    model = QuantizedEmbedding(
        model=cfg.model,
        loss=cfg.loss,
        quantizer=cfg.quantizer,
        train=cfg.train,
        text_vocab_size=vocab,
        n_concepts=concepts,
    ).to(device)
    model.train()
    opt = model.configure_optimizers()["optimizer"]
    bf16 = cfg.train.precision.startswith("bf16") and device == "cuda"
    gen = torch.Generator().manual_seed(0)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds, losses = [], []
    for _ in range(steps):
        batch = {k: v.to(device) for k, v in random_batch(cfg, vocab, concepts, gen).items()}
        start = synchronized_clock(device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = model.batch_losses(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        seconds.append(synchronized_clock(device) - start)
        losses.append(float(loss.detach()))
    timed = seconds[1:] or seconds  # the first step pays for kernel selection
    return {
        "row_batch": cfg.train.batch_size,
        "image_size": cfg.model.image_size,
        "backbone": cfg.model.backbone,
        "precision": cfg.train.precision,
        "step_seconds": seconds,
        "step_losses": losses,
        "pairs_per_s": cfg.train.batch_size * len(timed) / sum(timed),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30
        if device == "cuda"
        else None,
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", default=DEFAULT_ROW)
    parser.add_argument("--preset", choices=("paper", "smoke"), default="paper")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=10_000, help="COCO's word vocabulary ~10k")
    parser.add_argument("--concepts", type=int, default=113_287, help="COCO Karpathy train")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    cfg = paper_row(args.row, args.preset, args.set)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = {"row": args.row, "preset": args.preset}
    out.update(run_steps(cfg, args.steps, args.vocab, args.concepts, device))
    report_json(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
