"""Every shipped row config, of every profile, reads as its method's typed row.

Most paper-profile configs never run in the tests (they need the real datasets), so a misspelled
key in one would only show when a user ran it on a GPU node. ``capbench reproduce`` checks a
row's reading when it plans (``check_row_entry``); here it is checked for all of them, with each
key the row ``requires`` (a dataset path, weights the user gives) set to a stand-in path, as the
user's ``--set`` would."""

from __future__ import annotations

import pytest

from capbench.bench.catalog import Catalog, builtin_benchmarks_dirs
from capbench.bench.config import (
    EXECUTABLE,
    check_row_entry,
    deep_merge,
    missing_requirements,
    resolve_config,
)

CATALOG = Catalog.discover(builtin=True)
_ROOTS = set(builtin_benchmarks_dirs())
SHIPPED = sorted(
    {
        (ref.row.configs[profile], profile)
        for ref in CATALOG.rows(None, None, None)
        if ref.paper.dir.resolve().parent in _ROOTS
        for profile in ref.row.configs
    }
)


def _given(key: str) -> dict:
    """``{"a": {"b": "/stand-in/a.b"}}`` for the dotted key ``a.b``."""
    node: dict = {}
    tree = node
    parts = key.split(".")
    for part in parts[:-1]:
        tree = tree.setdefault(part, {})
    tree[parts[-1]] = f"/stand-in/{key}"
    return node


def test_every_profile_of_every_method_is_among_the_shipped_configs():
    methods = {(resolve_config(p).get("method"), profile) for p, profile in SHIPPED}
    for method in (
        "semantic_retrieval",
        "caption_fusion",
        "icmlm",
        "fine_grained_sje",
        "quantized_embedding",
    ):
        assert {(method, profile) for profile in ("ci", "scenes", "paper")} <= methods, method


@pytest.mark.parametrize(("path", "profile"), SHIPPED, ids=lambda v: str(v).split("/")[-1])
def test_a_shipped_row_config_reads_as_its_method(path, profile):
    cfg = resolve_config(path)
    for key, _ in missing_requirements(cfg):
        if not key.startswith(EXECUTABLE):
            cfg = deep_merge(cfg, _given(key))
    check_row_entry(path, cfg)
