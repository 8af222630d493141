"""The shipped golden numbers were written from the configs that ship beside them.

``capbench leaderboard check`` compares the records of each row's current config with its golden
numbers; a config edited after they were written (a new key in a shared base file included)
leaves references that no current command reproduces. Rerun the row from 3 seeds and write its
golden again (`capbench leaderboard golden PAPER --profile PROFILE`)."""

from __future__ import annotations

import pytest

from capbench.bench.catalog import Catalog, builtin_benchmarks_dirs
from capbench.bench.check import stale_golden_rows
from capbench.bench.golden import load_golden

CATALOG = Catalog.discover(builtin=True)
_ROOTS = set(builtin_benchmarks_dirs())
SHIPPED = [  # the papers that ship with capbench, not ones added by $CAPBENCH_BENCHMARKS
    (key, profile)
    for key, paper in sorted(CATALOG.papers.items())
    if paper.dir.resolve().parent in _ROOTS
    for profile in ("ci", "scenes")
    if load_golden(paper, profile)
]


def test_there_are_shipped_goldens_to_check():
    assert {"gordo2017", "suite"} <= {key for key, _ in SHIPPED}, SHIPPED


@pytest.mark.parametrize(("paper", "profile"), SHIPPED)
def test_golden_rows_match_the_current_configs(paper, profile):
    assert stale_golden_rows(CATALOG, CATALOG.paper(paper), profile) == []
