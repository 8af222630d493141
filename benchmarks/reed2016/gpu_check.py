"""GPU check of the paper profile: Char-CNN-RNN training throughput (captions/s) and peak memory
at the paper's sizes on random inputs.

The sizes are the paper's: batch 40 (one image per class), 201 characters of Reed's 70-symbol
alphabet, 1024-d image features (the fixed GoogLeNet side is a no-op, so a batch is 40 random
feature vectors), DS-SJE, RMSprop at lr 0.0007: the same ``FineGrainedSJE`` module the rows train,
stepped by hand (forward, loss, backward, optimizer) after ``--warmup`` untimed steps. No data or
weights are read. Table 1 is 18 models x 200 epochs x ~8.8k CUB images (221 steps an epoch);
the script prints the hours that throughput implies for one model.

    python benchmarks/reed2016/gpu_check.py --out results/reed2016/gpu_check.json
    python benchmarks/reed2016/gpu_check.py --steps 3 --warmup 1 --device cpu   # the CPU smoke
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import torch

from capbench.data.text import CharAlphabet
from capbench.methods.fine_grained_sje.config import ModelConfig, TrainConfig
from capbench.methods.fine_grained_sje.module import FineGrainedSJE
from capbench.models.text_encoders.base import CHAR_SEQ_LEN, EMBED_DIM
from capbench.timing import report_json

CUB_TRAINVAL_IMAGES = 8855  # the 150 train+val classes of CUB-200-2011


def measure(
    encoder: str, batch: int, steps: int, warmup: int, device: str, seed: int = 0
) -> dict[str, Any]:
    """Time ``steps`` training steps of ``encoder`` on random inputs; captions/s and peak memory."""
    torch.manual_seed(seed)
    vocab = CharAlphabet().vocab_size
    model = FineGrainedSJE(
        model=ModelConfig(encoder=encoder), train=TrainConfig(), vocab_size=vocab
    ).to(device)
    model.train()
    opt = model.configure_optimizers()["optimizer"]
    feats = torch.randn(batch, EMBED_DIM, device=device)
    tokens = torch.randint(1, vocab, (batch, CHAR_SEQ_LEN), device=device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = model.loss(feats, tokens)
        loss.backward()
        opt.step()
        return float(loss.detach())

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        last = step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    per_s = steps * batch / seconds
    epoch_steps = -(-CUB_TRAINVAL_IMAGES // batch)
    return {
        "encoder": encoder,
        "batch": batch,
        "steps": steps,
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or device,
        "seconds": seconds,
        "captions_per_s": per_s,
        "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "hours_per_model_200_epochs": 200 * epoch_steps * batch / per_s / 3600,
        "last_loss": last,
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="char_cnn_rnn")
    parser.add_argument("--batch", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure(args.encoder, args.batch, args.steps, args.warmup, args.device)
    report_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
