"""The generic registry behind readers, writers and methods."""

from __future__ import annotations

import pytest

from capbench.registry import Registry


def test_register_get_and_names_sorted():
    reg: Registry[int] = Registry("thing")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.get("a") == 1
    assert reg.names() == ["a", "b"]
    assert "b" in reg and "c" not in reg
    assert len(reg) == 2
    assert list(reg) == ["a", "b"]


def test_unknown_name_lists_known_ones():
    reg: Registry[int] = Registry("dataset reader")
    reg.register("coco")(1)
    with pytest.raises(KeyError, match=r"unknown dataset reader 'cocoo'; known: coco"):
        reg.get("cocoo")


def test_double_registration_of_a_different_object_fails():
    reg: Registry[object] = Registry("thing")
    reg.register("x")(len)
    reg.register("x")(len)  # same object again: harmless (module re-import)
    with pytest.raises(KeyError, match="already registered"):
        reg.register("x")(max)
