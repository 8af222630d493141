"""``tests.claims.claim_not_met``: the marker an issue's unmet claim is kept under must expect the
claim's assertion failing and nothing else, and must fail the day the claim holds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


class _Outcomes:
    """Collects each test's call-phase outcome of an inner pytest run."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            xfail = hasattr(report, "wasxfail")
            name = report.nodeid.rsplit("::", 1)[-1]
            self.seen[name] = f"{report.outcome}{'-xfail' if xfail else ''}"


def test_an_unmet_claim_xfails_a_met_one_and_a_crash_fail(tmp_path: Path):
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            from tests.claims import claim_not_met

            @claim_not_met("measured: 1 is not 2")
            def test_unmet():
                assert 1 == 2

            @claim_not_met("measured: it did not hold")
            def test_met():
                assert 1 == 1

            @claim_not_met("a crash is not the expected failure")
            def test_crash():
                raise KeyError("boom")
            """
        )
    )
    outcomes = _Outcomes()
    code = pytest.main(
        [
            str(tmp_path / "test_inner.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
        ],
        plugins=[outcomes],
    )
    assert code == pytest.ExitCode.TESTS_FAILED
    assert outcomes.seen == {
        "test_unmet": "skipped-xfail",  # pytest reports an xfail as skipped with wasxfail
        "test_met": "failed",  # XPASS(strict)
        "test_crash": "failed",
    }
