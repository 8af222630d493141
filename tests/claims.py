"""A claim an issue makes that does not hold yet, kept as a test.

``claim_not_met(reason)`` marks a test strict xfail expecting an ``AssertionError`` only: the
claim's assertions failing is expected, a crash is a failure, and the day the claim starts to hold
the test fails (strict), so the README that says it does not hold gets updated then.
"""

from __future__ import annotations

import pytest


def claim_not_met(reason: str) -> pytest.MarkDecorator:
    """The strict xfail of an unmet claim; ``reason`` says what was measured and where."""
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)
