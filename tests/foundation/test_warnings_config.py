"""The test configuration hides third-party deprecation noise but not capbench's own: a
deprecated call made from a capbench module fails the test that makes it."""

from __future__ import annotations

import warnings

import pytest


def test_deprecation_from_a_capbench_module_is_an_error():
    with pytest.raises(DeprecationWarning, match="old API"):
        warnings.warn_explicit(
            "old API", DeprecationWarning, "capbench/bench/x.py", 1, module="capbench.bench.x"
        )


def test_deprecation_inside_a_library_stays_hidden():
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit("its own business", DeprecationWarning, "lib.py", 1, module="lib")
    assert seen == []
