"""Row configs: YAML with ``base:`` inheritance, CLI overrides, a stable hash, target lookup.

The hash decides whether a row has already been run, so it covers exactly what can change a
result (the resolved config minus ``NON_HASHED_KEYS``) and is independent of key
order and of which base file a value came from.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from capbench.bench.paper import PaperSpecError
from capbench.bench.schemas import RowConfigSpec, validate

# Keys that describe where a row shows up, which machine runs it or whether it can run at all,
# not what it computes: excluded from the hash (a method that trains with DDP must fix its global
# batch itself).
NON_HASHED_KEYS = ("bench", "slurm", "requires")


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else (lists included) in ``over`` replaces. An
    empty mapping replaces too: ``reader_options: {}`` in a layer clears the base's options (a
    Flickr layer over a COCO base must drop COCO's ``splits``); merging it would keep them."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and value and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise PaperSpecError(path, f"cannot read config: {err}") from err
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PaperSpecError(path, f"a config must be a mapping, got {type(raw).__name__}")
    return raw


def load_config(path: Path | str, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Load a config and its ``base:`` chain (relative paths, a string or a list)."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise PaperSpecError(path, f"circular base: {chain}")
    raw = _read_yaml(path)
    bases = raw.pop("base", None)
    if bases is None:
        return raw
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise PaperSpecError(path, "base must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for b in bases:
        bpath = path.parent / b
        if not bpath.is_file():
            raise PaperSpecError(path, f"base config {bpath} does not exist")
        merged = deep_merge(merged, load_config(bpath, (*_seen, path)))
    return deep_merge(merged, raw)


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["model.margin=0.2", "trainer.max_steps=10"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value (dotted key), got {item!r}")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r} conflicts with another override")
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {item!r}: the value is not YAML ({_one_line(err)})") from None
    return out


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def resolve_config(path: Path | str, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The config a row runs with: base chain, the file itself, then ``--set`` overrides."""
    cfg = deep_merge(load_config(path), parse_overrides(overrides))
    # JSON round trip: YAML dates etc. become strings now, so the record and the hash agree
    cfg = json.loads(json.dumps(cfg, default=str))
    try:
        validate(RowConfigSpec, cfg)  # the schema: capbench.bench.schemas.RowConfigSpec
    except ValueError as err:
        raise PaperSpecError(path, str(err)) from None
    if "method" in cfg:
        from capbench.methods.registry import discover_methods, unknown_method_message

        if cfg["method"] not in discover_methods():
            raise PaperSpecError(path, unknown_method_message(str(cfg["method"])))
    return cfg


def check_row_entry(
    path: Path | str, cfg: Mapping[str, Any], search_paths: Iterable[Path | str] = ()
) -> None:
    """What runs the row can run it: a ``method:`` row's config reads as its method's typed row
    (the method's ``row_config``: a misspelled key or a value of the wrong type), and a
    ``target:`` imports and is callable. Checked when the rows are planned, so the error names
    the file before any row runs, not when the row starts (on a cluster, after its wait in the
    queue). Run after the ``requires:`` check: a required key left null is a skip, not an error.
    """
    if "method" in cfg:
        from capbench.methods.registry import get_method

        try:
            get_method(str(cfg["method"])).load("row_config")(dict(cfg))
        except (ValueError, TypeError) as err:
            raise PaperSpecError(path, str(err)) from None
    elif "target" in cfg:
        try:
            resolve_target(str(cfg["target"]), [Path(p) for p in search_paths])
        except (ImportError, SyntaxError) as err:
            raise PaperSpecError(path, f"target {cfg['target']}: {err}") from None
        except (AttributeError, TypeError, ValueError) as err:  # their messages name the target
            raise PaperSpecError(path, str(err)) from None


def row_target_name(config: Mapping[str, Any]) -> str:
    """How error messages name what runs a row: ``method NAME`` or ``target module:function``."""
    if "method" in config:
        return f"method {config['method']}"
    return f"target {config.get('target')}"


def resolve_row_target(
    config: Mapping[str, Any], search_paths: Iterable[Path] = ()
) -> Callable[..., Any]:
    """The function that runs a row: the registered method's row target, or ``target``."""
    if "method" in config:
        from capbench.methods.registry import get_method

        return get_method(str(config["method"])).load("rows")
    return resolve_target(str(config["target"]), search_paths)


EXECUTABLE = "executable:"


def requirement_text(key: str, why: str) -> str:
    """How a skipped row says what it needs."""
    if key.startswith(EXECUTABLE):
        return f"{key[len(EXECUTABLE) :]} is not on PATH ({why})"
    return f"{key} is not set ({why})"


def missing_requirements(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(dotted key, why)`` for each entry of the config's ``requires:`` mapping whose value is
    unset (missing or null): such a row is skipped with that reason instead of failing, e.g. a
    row that needs a file the paper never released until the user points ``--set`` at one. A key
    ``executable:NAME`` requires the program NAME on PATH (e.g. ``executable:java``)."""
    requires = config.get("requires") or {}
    if not isinstance(requires, Mapping):
        raise ValueError(f"requires must map dotted config keys to reasons, got {requires!r}")
    missing = []
    for key, why in requires.items():
        if str(key).startswith(EXECUTABLE):  # "executable:java": a program on PATH
            if shutil.which(str(key)[len(EXECUTABLE) :]) is None:
                missing.append((str(key), str(why)))
            continue
        node: Any = config
        for part in str(key).split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            missing.append((str(key), str(why)))
    return missing


def hashable_view(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NON_HASHED_KEYS}


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the config (sorted keys, no whitespace)."""
    text = json.dumps(hashable_view(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_target(spec: str, search_paths: Iterable[Path] = ()) -> Callable[..., Any]:
    """Import ``"package.module:function"``; if the module is not importable, retry with the
    config's own folders on ``sys.path`` so an external folder can carry its method module."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"target must be 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is None or not module_name.startswith(err.name.split(".")[0]):
            raise
        added = [str(p) for p in search_paths if str(p) not in sys.path]
        if not added:
            raise
        sys.path[:0] = added
        module = importlib.import_module(module_name)
    try:
        fn = getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"target {spec!r}: module {module_name} has no {attr!r}") from None
    if not callable(fn):
        raise TypeError(f"target {spec!r} is not callable")
    return fn
