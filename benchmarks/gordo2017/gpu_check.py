"""GPU check of the paper profile: one mining round and a few training steps at the paper's
sizes on random images, with their throughput (images/s) and the GPU's peak memory.

The sizes come from a paper-profile row config (default ``proposed_vt_vt.paper.yaml``, the
heaviest: sextuples, V+T): ResNet-101, images 576 x 576 (longest side 576, padded square), R-MAC
at two scales, mining N = 500 queries x 9 positives (a pool of about 5,000 images, top 100 per
(query, positive)), batches of 64 triplets, bf16 autocast and channels_last. The trunk starts
from random weights (no checkpoint is needed: speed does not depend on the values). The
training set is ``--images`` random images (80k: Visual Genome's training split) with random
sparse tf-idf rows and random relevant sets; only the pool is ever rendered.

Two commands:

* ``step``: mining round + ``--steps`` optimizer steps through the same ``SemanticRetrieval``
  and Lightning ``Trainer`` the rows use; prints and writes (``--out``) a JSON summary.
* ``memory``: on the CPU, the bytes autograd saves for backward per image at the row's size and
  precision (bf16 autocast when the row uses bf16), and what one optimizer step would hold for
  each ``train.micro_batches``: why the paper profile sets ``micro_batches``.

Run on a GPU node (``make gpu-check-gordo``)::

    python benchmarks/gordo2017/gpu_check.py step --out results/gordo2017/gpu_check.json
    python benchmarks/gordo2017/gpu_check.py memory

``--preset smoke`` shrinks everything (resnet18, 64 px, a handful of queries) so the script
itself is tested on a CPU; ``--set key=value`` overrides any config value.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from capbench.bench.config import resolve_config
from capbench.data.relevance import TextRelevance
from capbench.methods.semantic_retrieval.config import SemanticRetrievalRow, row_config
from capbench.timing import synchronized_clock

HERE = Path(__file__).parent
DEFAULT_ROW = "proposed_vt_vt"
SMOKE = [
    "model.backbone=timm::resnet18",
    "model.longest_side=64",
    "model.channels_last=false",
    "mining.pool_queries=8",
    "mining.positives_per_query=3",
    "mining.top_per_pair=5",
    "mining.batch_size=8",
    "train.micro_batches=2",
    "train.precision=32-true",
    "train.num_workers=0",
    "train.embed_batch_size=8",
]
# training-set size (Visual Genome's 80k training images), tf-idf vocabulary, terms per row
PAPER_DATA = {"images": 80_000, "vocab": 20_000, "words": 30}
SMOKE_DATA = {"images": 200, "vocab": 300, "words": 8}


class RandomImages(Dataset):
    """``n`` square noise images of side ``side``, each drawn from its own seed (deterministic,
    rendered only when asked for)."""

    def __init__(self, n: int, side: int, seed: int = 0) -> None:
        self.n, self.side, self.seed = n, side, seed

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        image = torch.randn(3, self.side, self.side, generator=g)
        return {"image": image, "index": i, "image_id": str(i)}


def random_training_data(
    n: int, side: int, vocab: int, words: int, k: int, seed: int = 0
) -> tuple[RandomImages, TextRelevance]:
    """Random images, L2-normalised random tf-idf rows (``words`` terms each) and ``k`` random
    relevant images per image (never itself)."""
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(seed)
    cols = rng.integers(0, vocab, size=(n, words))
    rows = np.repeat(np.arange(n), words)
    vals = rng.random(n * words, dtype=np.float32) + 0.1
    tfidf = sp.csr_matrix((vals, (rows, cols.ravel())), shape=(n, vocab), dtype=np.float32)
    tfidf.sum_duplicates()
    tfidf = sp.csr_matrix(normalize(tfidf), dtype=np.float32)
    rel = rng.integers(0, n - 1, size=(n, k))
    rel += rel >= np.arange(n)[:, None]  # skip the image itself
    return RandomImages(n, side, seed), TextRelevance(tfidf, torch.from_numpy(rel))


def paper_row(row: str, preset: str, overrides: list[str]) -> SemanticRetrievalRow:
    """The paper-profile row config with random init allowed, the preset and ``--set``."""
    sets = ["model.backbone_weights=null", "model.allow_random_init=true"]
    sets += SMOKE if preset == "smoke" else []
    return row_config(resolve_config(HERE / f"{row}.paper.yaml", [*sets, *overrides]))


def _environment() -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0)
        if cuda
        else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "lightning": L.__version__,
        "cuda": torch.version.cuda if cuda else None,
    }


class StepClock(L.Callback):
    """Seconds per optimizer step (GPU work synchronised), counted from the first batch."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.losses: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self.marks:
            self.marks.append(synchronized_clock(pl_module.device))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches == 0:  # an optimizer step ended
            self.marks.append(synchronized_clock(pl_module.device))
            self.losses.append(float(trainer.callback_metrics["train/loss"]))

    @property
    def seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]


def run_step_check(
    cfg: SemanticRetrievalRow, images: int, vocab: int, words: int, steps: int, seed: int = 0
) -> dict[str, Any]:
    """One mining round and ``steps`` optimizer steps of ``SemanticRetrieval`` on random data,
    served by the same ``triplets`` view of ``CaptionDataModule`` as the rows."""
    from capbench.methods.semantic_retrieval.train import build_datamodule, build_module

    row, model_cfg, train = cfg.row, cfg.model, cfg.train
    side = model_cfg.longest_side
    L.seed_everything(seed, workers=True, verbose=False)
    dm = build_datamodule(cfg.method, {"records": {"train": []}})
    dm.set_triplet_source(*random_training_data(images, side, vocab, words, train.k_relevant, seed))
    model = build_module(cfg.method, row.train_mode, vocab, seed)
    if cfg.mining.remine_every < steps:
        raise ValueError(f"--steps {steps} would mine again (mining.remine_every is smaller)")
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator == "gpu":
        model.to("cuda")
        torch.cuda.reset_peak_memory_stats()
    model.init_whitening_from(dm.train_images())  # fp32, before the timed part
    clock = StepClock()
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        max_steps=steps,
        precision=train.precision,  # type: ignore[arg-type]
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
    )
    trainer.fit(model, datamodule=dm)
    per_triplet = 1 if model.train_mode == "WSABIE" else 3
    step_images = per_triplet * cfg.mining.batch_size
    seconds = clock.seconds
    steady = seconds[1:] or seconds  # the first step pays cuDNN autotuning and warm-up
    mining = dm.mining_stats
    return {
        **_environment(),
        "row": row.name,
        "mode": model.train_mode,
        "backbone": model_cfg.backbone,
        "image_side": side,
        "scales": list(model_cfg.scales),
        "precision": str(trainer.precision),
        "channels_last": model_cfg.channels_last,
        "micro_batches": train.micro_batches,
        "triplets_per_step": cfg.mining.batch_size,
        "images_per_step": step_images,
        "training_images": images,
        "mining": {
            **mining,
            "images_per_s": mining["pool"] / mining["embed_seconds"],
        },
        "step_seconds": seconds,
        "step_losses": clock.losses,
        "train_images_per_s": step_images / float(np.mean(steady)),
        "peak_memory_gib": (
            torch.cuda.max_memory_allocated() / 2**30 if accelerator == "gpu" else None
        ),
    }


def saved_bytes_per_image(cfg: SemanticRetrievalRow) -> dict[str, float]:
    """Bytes autograd keeps for backward, per image, at the row's size and precision (CPU):
    measured for 1 and 2 images, so weights saved once per pass do not count per image."""
    from capbench.methods.semantic_retrieval.train import build_module

    model = build_module(cfg.method, "V", None, 0).train()
    side = cfg.model.longest_side
    bf16 = cfg.train.precision.startswith("bf16")

    def saved(n: int) -> int:
        storages: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        x = torch.randn(n, 3, side, side)
        with (
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16),
        ):
            model.embed_images(x)
        return sum(storages.values())

    one, two = saved(1), saved(2)
    return {"per_image": float(two - one), "per_pass": float(2 * one - two)}


def memory_table(cfg: SemanticRetrievalRow) -> dict[str, Any]:
    """Activation memory of one optimizer step for micro_batches 1, 2, 4, 8."""
    measured = saved_bytes_per_image(cfg)
    batch = cfg.mining.batch_size
    images = (1 if cfg.row.train_mode.upper() == "WSABIE" else 3) * batch
    table = {
        m: (measured["per_pass"] + measured["per_image"] * images / m) / 2**30
        for m in (1, 2, 4, 8)
        if batch % m == 0
    }
    return {
        "row": cfg.row.name,
        "image_side": cfg.model.longest_side,
        "precision": cfg.train.precision,
        "images_per_step": images,
        "saved_mib_per_image": measured["per_image"] / 2**20,
        "saved_gib_per_micro_batches": table,
        "configured_micro_batches": cfg.train.micro_batches,
    }


def _print_step(out: dict[str, Any]) -> None:
    m = out["mining"]
    print(f"{out['device']} | {out['row']} ({out['mode']}) {out['backbone']} at "
          f"{out['image_side']} px, {out['precision']}, channels_last={out['channels_last']}")  # fmt: skip
    print(f"mining round: pool {int(m['pool'])} images embedded in {m['embed_seconds']:.1f} s "
          f"({m['images_per_s']:.0f} images/s), selection {m['select_seconds']:.2f} s, "
          f"{int(m['candidates'])} candidates")  # fmt: skip
    steps = ", ".join(f"{s:.2f}" for s in out["step_seconds"])
    print(f"training: {out['triplets_per_step']} triplets ({out['images_per_step']} images) per "
          f"step in {out['micro_batches']} micro-batches; steps {steps} s; "
          f"{out['train_images_per_s']:.0f} images/s")  # fmt: skip
    if out["peak_memory_gib"] is not None:
        print(f"peak GPU memory: {out['peak_memory_gib']:.1f} GiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["step", "memory"])
    ap.add_argument("--row", default=DEFAULT_ROW, help="paper-profile row (config stem)")
    ap.add_argument("--preset", choices=["paper", "smoke"], default="paper")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument(
        "--images", type=int, help=f"training-set size (default {PAPER_DATA['images']})"
    )
    ap.add_argument("--vocab", type=int, help=f"tf-idf vocabulary (default {PAPER_DATA['vocab']})")
    ap.add_argument(
        "--words", type=int, help=f"terms per tf-idf row (default {PAPER_DATA['words']})"
    )
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--out", type=Path, help="write the JSON summary here (atomically)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = paper_row(args.row, args.preset, args.set)
    sizes = SMOKE_DATA if args.preset == "smoke" else PAPER_DATA
    if args.command == "memory":
        out = memory_table(config)
        print(f"{out['row']} at {out['image_side']} px, {out['precision']}: autograd keeps "
              f"{out['saved_mib_per_image']:.0f} MiB per image; one step = "
              f"{out['images_per_step']} images")  # fmt: skip
        for m, gib in out["saved_gib_per_micro_batches"].items():
            mark = "  <- configured" if m == out["configured_micro_batches"] else ""
            print(f"  micro_batches {m}: {gib:6.1f} GiB saved for backward per micro-batch{mark}")
    else:
        out = run_step_check(
            config,
            args.images or sizes["images"],
            args.vocab or sizes["vocab"],
            args.words or sizes["words"],
            args.steps,
        )
        _print_step(out)
    if args.out:
        from capbench.atomic import atomic_write_text

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(out, indent=1, default=str) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
