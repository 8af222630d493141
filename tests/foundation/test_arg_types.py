"""Numeric options are checked by the parser (``capbench.commands.arg_types``): ``--top -3``
listed every result but three, ``--alpha nan`` ranked by NaN, ``--top 0`` on ``caption``
still printed the regions."""

from __future__ import annotations

import argparse

import pytest

from capbench.cli import main
from capbench.commands.arg_types import finite_float, non_negative_int, positive_int


def test_the_types():
    assert positive_int("3") == 3 and finite_float("-0.5") == -0.5
    assert non_negative_int("0") == 0  # --gpus-per-node 0: a CPU partition
    with pytest.raises(argparse.ArgumentTypeError):
        non_negative_int("-1")
    for bad in ("0", "-3", "x", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)
    for bad in ("nan", "inf", "-inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            finite_float(bad)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["query", "im.jpg", "--index", "idx", "--top", "-3"],
            "argument --top: must be at least 1",
        ),
        (
            ["query", "im.jpg", "+red", "--alpha", "nan"],
            "argument --alpha: must be a finite number",
        ),
        (["caption", "im.jpg", "--checkpoint", "c", "--top", "0"], "argument --top: must be at"),
        (["explain", "a.jpg", "b.jpg", "--out", "o.png", "--k", "0"], "argument --k: must be at"),
    ],
)
def test_commands_refuse_out_of_range_numbers(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
