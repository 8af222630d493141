"""``capbench.methods.training.resolve_pretrain_data``: every method's row resolves the scenes
trunk's pretraining section through it, so its two rules are tested once here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capbench.methods.training import resolve_pretrain_data


@dataclass(frozen=True)
class _Cfg:
    pretrain: dict[str, Any] = field(default_factory=dict)


def test_pretrain_data_is_made_absolute_under_the_data_root(tmp_path: Path):
    cfg = resolve_pretrain_data(_Cfg({"data": "scenes_pretrain"}), tmp_path)
    assert cfg.pretrain["data"] == str(tmp_path / "scenes_pretrain")
    absolute = _Cfg({"data": "/elsewhere/pretrain"})
    assert resolve_pretrain_data(absolute, tmp_path) is absolute  # nothing to change


def test_the_row_seed_seeds_the_pretraining_unless_the_config_does(tmp_path: Path):
    # another seed must mean another trunk: golden tolerances are measured over seeds and must
    # include the trunk's spread (another CPU pretrains another trunk)
    seeds = [resolve_pretrain_data(_Cfg({"epochs": 6}), tmp_path, s).pretrain for s in (0, 1, 2)]
    assert [p["seed"] for p in seeds] == [0, 1, 2]
    assert all(p["epochs"] == 6 for p in seeds)
    pinned = resolve_pretrain_data(_Cfg({"seed": 7}), tmp_path, 2)
    assert pinned.pretrain["seed"] == 7
    assert "seed" not in resolve_pretrain_data(_Cfg({}), tmp_path).pretrain  # no row seed given
