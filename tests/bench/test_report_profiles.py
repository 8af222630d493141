"""Which profiles a paper's page shows: the one whose records there are, scenes first; the
golden scenes numbers before anything ran; never a profile of "not run" rows over one that ran."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from capbench.bench.report import profiles_to_show


def _summaries(*ran: str) -> list:
    ref = SimpleNamespace(paper=SimpleNamespace(key="p"))
    return [SimpleNamespace(ref=ref, profile=prof, records=[object()]) for prof in ran]


@pytest.mark.parametrize(
    ("ran", "has_golden", "shown"),
    [
        ((), False, ["paper"]),
        ((), True, ["scenes", "paper"]),  # what a run should give, before any run
        (("scenes",), False, ["scenes", "paper"]),
        (("scenes", "ci"), True, ["scenes", "paper"]),
        (("ci",), False, ["ci", "paper"]),
        (("ci",), True, ["ci", "paper"]),  # make-test-sized runs: their numbers, not "not run"
    ],
)
def test_profiles_shown(ran, has_golden, shown):
    assert profiles_to_show(_summaries(*ran), "p", has_golden) == shown
