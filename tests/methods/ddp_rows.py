"""A ci row run on one rank of a gloo process group, counting the work it does: what the DDP row
tests (tests/methods/test_*_ddp.py) assert on. Runs inside spawned ranks (tests.distributed)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.methods.ci_rows import run_ci_row


def count_calls(owner: Any, name: str, calls: dict[str, Any]) -> None:
    """Replace ``owner.name`` by a wrapper that counts its calls in ``calls[name]``."""
    original = getattr(owner, name)
    calls[name] = 0

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)


def record_embedded_items(calls: dict[str, Any]) -> None:
    """Record, per shared embedding (each ``gather_in_order`` call: ``embed_in_order`` and the
    modules' own loops end in it), its item count and the items whose rows this rank brought, in
    ``calls["embedded"]``; count the fits that ended distributed (``fit_resumable`` shares rank
    0's state after those only) in ``calls["share_rank_zero_state"]``."""
    import capbench.eval.extract as ex

    gather = ex.gather_in_order
    calls["embedded"] = []

    def recorded(rows: Any, share: Any, n_items: int) -> Any:
        calls["embedded"].append((n_items, list(share)))
        return gather(rows, share, n_items)

    ex.gather_in_order = recorded
    count_calls(ex, "share_rank_zero_state", calls)


def run_counted_row(
    run_row: Callable, paper: str, row: str, rank: int, world: int, ddp_fit: bool
) -> dict[str, Any]:
    """The ci ``row`` on this rank, on the data at ``$DDP_ROW_DATA`` in ``$DDP_ROW_WORKDIR``;
    with ``ddp_fit`` its training is a real Lightning DDP fit over the group (``LOCAL_RANK``
    makes Lightning join it instead of spawning ranks), else one device per rank."""
    if ddp_fit:
        os.environ["LOCAL_RANK"] = str(rank)
    _, _, result = run_ci_row(
        run_row, paper, row, Path(os.environ["DDP_ROW_DATA"]), Path(os.environ["DDP_ROW_WORKDIR"]),
        devices=world if ddp_fit else 1,
    )  # fmt: skip
    return {"metrics": result.metrics, "n_scored": result.n_scored, "extra": sorted(result.extra)}


def assert_each_item_embedded_once(zero: dict[str, Any], one: dict[str, Any], calls: int) -> None:
    """Both ranks made ``calls`` shared embeddings, each covering its items exactly once
    between them, both ranks doing part of it."""
    assert len(zero["embedded"]) == len(one["embedded"]) == calls
    for (n, seen0), (_, seen1) in zip(zero["embedded"], one["embedded"]):
        assert sorted(seen0 + seen1) == list(range(n))
        assert seen0 and seen1


def run_ranks(worker: Callable[[int, int], dict], data: Path, workdir: Path, monkeypatch: Any):
    """``worker`` on two gloo ranks, the ci data at ``data``, the row's work in ``workdir``:
    ``(rank 0's result, rank 1's)``."""
    from tests.distributed import run_gloo

    monkeypatch.setenv("DDP_ROW_DATA", str(data))
    monkeypatch.setenv("DDP_ROW_WORKDIR", str(workdir))
    zero, one = run_gloo(worker, world=2, timeout=150)
    return zero, one


def assert_one_complete_row(zero: dict[str, Any], one: dict[str, Any], paper: str, row: str):
    """Both ranks report the same row, with every metric its ci golden gates."""
    import yaml

    from tests.methods.ci_rows import ROOT

    assert zero["metrics"] == one["metrics"] and zero["n_scored"] == one["n_scored"]
    assert zero["extra"] == one["extra"]
    golden = yaml.safe_load((ROOT / "benchmarks" / paper / "golden_ci.yaml").read_text())
    gated = {m for table in golden["tables"].values() for m in table.get(row, {})}
    assert gated and gated <= set(zero["metrics"])
