"""Training steps under CPU autocast to bfloat16 (``bf16-mixed``) vs float32, in one process.

Why: the scenes profiles of sariyildiz2020 and mopuri2017 train under ``bf16-mixed`` to fit
their CPU budgets; this measures what that buys on the machine at hand. Two workloads, each one
training step (forward, backward and a fused AdamW step; median of ``--repeat`` after warm-up):

* ``trunk``: capbench's ResNet-18 trunk (``torchvision::resnet18``) at 80 px, batch 32, as the
  ICMLM and TP rows train it (the trunk's map summed as a stand-in loss);
* ``lstm``: the captioners' 512-d LSTM decoder (``CaptionDecoder``), batch 160, 14 words and a
  231-word vocabulary, teacher-forced, as Show-and-Tell trains on scenes.

**Gate** (only where oneDNN reports native bfloat16, e.g. AVX512-BF16 / AMX): bf16 at least
``--min-speedup`` x faster than float32 on both. On a CPU without it the ratios are printed
and not gated (bfloat16 is then emulated and slower; keep ``32-true`` there).

Run: ``python benchmarks/perf/bf16_training.py [--threads 1]``; exits 1 below the gate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from capbench.models.backbones import create_backbone
from capbench.models.captioners.decoder import CaptionDecoder, SpecialIds


def _step_time(
    model: nn.Module, loss_fn: Callable[[], torch.Tensor], bf16: bool, repeat: int
) -> float:
    """Median seconds of one forward + backward + fused AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    times = []
    for i in range(repeat + 2):  # two warm-up steps
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn()
        loss.float().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _trunk() -> tuple[nn.Module, Callable[[], torch.Tensor]]:
    trunk, _ = create_backbone("torchvision::resnet18")
    images = torch.randn(32, 3, 80, 80)
    return trunk, lambda: trunk(images).float().mean()


def _lstm() -> tuple[nn.Module, Callable[[], torch.Tensor]]:
    decoder = CaptionDecoder(231, SpecialIds(pad=0, bos=1, eos=2), dim=512, dropout=0.3)
    code = torch.randn(160, 512)
    tokens = torch.randint(3, 231, (160, 14))
    return decoder, lambda: decoder.loss(code, tokens)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min-speedup", type=float, default=1.3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    print(f"threads {args.threads}; native bfloat16 (oneDNN): {native}")
    ok = True
    for name, build in (("trunk", _trunk), ("lstm", _lstm)):
        model, loss_fn = build()
        fp32 = _step_time(model, loss_fn, False, args.repeat)
        bf16 = _step_time(model, loss_fn, True, args.repeat)
        speedup = fp32 / bf16
        gate = "" if not native else ("  ok" if speedup >= args.min_speedup else "  BELOW GATE")
        print(f"{name:6s} float32 {fp32:.3f} s  bf16-mixed {bf16:.3f} s  x{speedup:.2f}{gate}")
        ok &= not native or speedup >= args.min_speedup
    if not native:
        print(
            "not gated: this CPU has no native bfloat16 (the scenes profiles' bf16-mixed is slow here)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
