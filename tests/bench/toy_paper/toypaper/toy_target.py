"""Toy row target for tests/bench: real statistics of the numbers in the config.

``metrics.mean`` / ``metrics.max`` are the mean / max of ``data.values`` after adding
``model.noise * uniform(-1, 1)`` noise from ``random.Random(seed)``, so the tests can
recompute them independently. A "checkpoint" in the work dir counts attempts; with
``trainer.crash_once`` the first attempt dies after writing it (an interrupted run);
``trainer.metric_prefix`` renames the metrics (a target whose names are not its table's);
``trainer.relative_checkpoint`` returns the checkpoint relative to the current directory (as a
cache under ``./.capbench_cache`` gives it); ``trainer.corrupt_files`` reports those names as
corrupt images met (as a data loader does for a file it cannot decode); ``trainer.missing``
fails the row as a dataset reader does on a folder that is not there.
"""

from __future__ import annotations

import json
import os
import random
from itertools import accumulate

from capbench.methods.protocol import RowContext, RowResult


def run(config: dict, ctx: RowContext) -> RowResult:
    values = [float(v) for v in config["data"]["values"]]
    noise = float(config["model"].get("noise", 0.0))
    ckpt = ctx.workdir / "toy.ckpt"
    state = json.loads(ckpt.read_text()) if ckpt.exists() else {"attempts": 0}
    resumed = state["attempts"] > 0
    state["attempts"] += 1
    ckpt.write_text(json.dumps(state))
    if config["trainer"].get("crash_once") and state["attempts"] == 1:
        raise RuntimeError("simulated interruption after the first checkpoint")
    if config["trainer"].get("missing"):
        raise FileNotFoundError(f"toy data not found at {config['trainer']['missing']}")
    if config["trainer"].get("corrupt_files"):
        from capbench.data.views import report_skipped

        report_skipped(config["trainer"]["corrupt_files"])
    root = config["data"].get("root")
    rng = random.Random(ctx.seed)
    xs = [v + noise * rng.uniform(-1.0, 1.0) for v in values]
    prefix = [s / (i + 1) for i, s in enumerate(accumulate(xs))]
    prefix_ = config["trainer"].get("metric_prefix", "")
    return RowResult(
        metrics={f"{prefix_}mean": sum(xs) / len(xs), f"{prefix_}max": max(xs)},
        n_scored=len(xs),
        curves={"prefix_mean": {"x": list(range(1, len(xs) + 1)), "y": prefix}},
        checkpoint=os.path.relpath(ckpt)
        if config["trainer"].get("relative_checkpoint")
        else str(ckpt),
        # with data.root the runner fingerprints that folder; without, the toy names its own
        dataset={
            "name": "toy",
            "root": root,
            "fingerprint": None if root else f"toy-{len(values)}",
        },
        extra={"attempts": state["attempts"], "resumed": resumed, "seed_seen": ctx.seed},
    )
