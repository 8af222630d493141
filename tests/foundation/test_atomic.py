"""Atomic writes: the target is replaced whole or not at all, and no temp file is left behind."""

from __future__ import annotations

import os
import stat

import pytest

from capbench.atomic import atomic_path, atomic_savefig, atomic_write_text


def test_write_replaces_whole_file_and_is_world_readable(tmp_path):
    target = tmp_path / "sub" / "record.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert list(target.parent.iterdir()) == [target]
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode & stat.S_IRGRP  # not mkstemp's private 0600


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "ckpt.pt"
    target.write_text("complete")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "complete"
    assert list(tmp_path.iterdir()) == [target]


def test_savefig_writes_the_format_of_the_suffix_and_leaves_no_temp(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = atomic_savefig(fig, tmp_path / "a" / "plot.png")
    svg = atomic_savefig(fig, tmp_path / "a" / "plot.svg")
    plt.close(fig)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in svg.read_bytes()[:500]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["plot.png", "plot.svg"]
