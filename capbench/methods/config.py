"""Typed method configs: one dataclass tree per method, whose defaults are the paper's values.

A row config's sections (``model:``, ``train:``, ``mining:``...) and ``capbench fit``'s
LightningCLI arguments are the fields of the same dataclasses, so a default is written once, in
the dataclass, with a comment saying where the value comes from. :func:`build_config` turns a
row's YAML mapping into that tree: an unknown key (a typo) is an error naming the section, and
strings that YAML leaves unparsed (``1e-5``) are converted to the field's type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

C = TypeVar("C")


def _is_dataclass_type(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _optional_inner(hint: Any) -> Any | None:
    """``X`` for ``X | None`` / ``Optional[X]``, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and type(None) in typing.get_args(hint):
            return args[0]
    return None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as ``hint`` (int, float, bool, str, tuples, optionals, nested dataclasses)."""
    inner = _optional_inner(hint)
    if inner is not None:
        return None if value is None else _coerce(value, inner, where)
    if _is_dataclass_type(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return build_config(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    try:
        if hint is float and isinstance(value, int | float | str) and not isinstance(value, bool):
            return float(value)
        if hint is int and isinstance(value, int | str) and not isinstance(value, bool):
            return int(value)
        if hint is bool and isinstance(value, bool):
            return value
        if hint is str and isinstance(value, str):
            return value
    except ValueError:
        pass
    if hint in (float, int, bool, str):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value  # Any, dict[...] and other open types are taken as given


def build_config(cls: type[C], values: Mapping[str, Any] | None, where: str = "config") -> C:
    """An instance of the dataclass ``cls`` from a mapping: missing keys take the defaults,
    unknown keys fail naming ``where`` and the known ones, and a field without a default that
    is not given fails naming it (not as the dataclass's ``__init__`` TypeError, which names no
    file or section)."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in values.items()}
    required = sorted(
        name
        for name, f in known.items()
        if f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and name not in values
    )
    if required:
        raise ValueError(f"{where}: missing key(s) {', '.join(required)}")
    return cls(**kwargs)


def config_dict(obj: Any) -> dict[str, Any]:
    """A dataclass tree as plain JSON-able data (tuples become lists), e.g. for hparams."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(obj)


def as_config(cls: type[C], value: C | Mapping[str, Any] | None, where: str) -> C:
    """``value`` if it already is a ``cls``, else :func:`build_config` of the mapping (what a
    checkpoint's hyperparameters hold) or the defaults for None."""
    if isinstance(value, cls):
        return value
    return build_config(cls, value, where)  # type: ignore[arg-type]
