"""The method registry: ``METHODS`` maps a name to a :class:`MethodSpec`.

A method package registers itself in its ``__init__`` (``register_method(MethodSpec(...))``),
naming its parts by import path so that listing methods imports neither torch nor Lightning.
``capbench fit --model NAME``, ``capbench reproduce`` (rows with ``method: NAME``),
``capbench methods`` and the tests parametrized over every method all resolve through it.
Methods outside capbench register the same way from a package named in the ``capbench.methods``
entry-point group.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from capbench.registry import Registry, import_object

METHODS: Registry[MethodSpec] = Registry("method")

ENTRY_POINT_GROUP = "capbench.methods"


@dataclass(frozen=True)
class MethodSpec:
    """Everything the suite needs to know of a method, as ``"package.module:attribute"`` paths.

    ``module``: the LightningModule, whose init arguments are the config's sections (plus the
    method's own, e.g. a mode and the seed); ``config``: its typed config (a dataclass whose
    fields are the row config's sections); ``rows``: the row target ``run_row(config, ctx) ->
    RowResult``; ``datamodule``: ``build(config, data) -> LightningDataModule`` for a config and
    a ``CaptionDataModule`` keyword mapping; ``fit``: ``fit(config, datamodule, workdir,
    seed=..., accelerator=..., devices=..., progress=..., callbacks=...) -> (module,
    checkpoint)``, training that resumes exactly from the workdir's last checkpoint;
    ``smoke``: ``{"config": overrides, "data": CaptionDataModule keywords}`` that make a few
    steps on the tiny scenes data cheap (data roots relative to the scenes folder; the
    registry-wide tests use it); ``cli``: ``configure(parser)``, called by
    ``capbench fit --model NAME`` to link the module's fields to the Trainer's and the
    DataModule's arguments (one value per field) and to set the DataModule defaults the method
    needs; ``row_config``: ``row_config(config) -> typed row``, the row target's own reading of
    a resolved row config, which ``capbench reproduce`` also runs when it plans, so that a
    misspelled key stops the plan naming the file instead of failing the row when it starts
    (on a cluster, after the queue); ``encoder`` (optional): ``suite_encoder(config, checkpoint,
    data_root, seed) -> capbench.suite.encoder.Encoder``, the method's learned image encoder
    (and text tower, if it has one) rebuilt from a row's run, which the cross-method suite
    scores; ``shared_models``
    (optional): ``shared_models(config) -> [key]``, the cached models (under
    ``$CAPBENCH_CACHE``, not the row's workdir) that a row config trains on first use or reads,
    one key per model and its training config: on a cluster, rows sharing a key start after the
    first of them, so that two jobs never train one model in one folder at once.
    """

    name: str
    paper: str
    summary: str
    module: str
    config: str
    rows: str
    datamodule: str
    fit: str
    smoke: str
    cli: str
    row_config: str
    encoder: str | None = None
    shared_models: str | None = None

    def load(self, part: str) -> Any:
        """The object a part names, imported now (``spec.load("module")``)."""
        return import_object(getattr(self, part))


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to ``METHODS`` (a second, different registration of a name is a bug)."""
    return METHODS.register(spec.name)(spec)


class MethodEntryPointWarning(UserWarning):
    """An installed package's ``capbench.methods`` entry point did not register a method."""


_discovered = False

#: Entry points of the ``capbench.methods`` group that registered nothing, as one line each
#: naming the distribution, the entry point and what went wrong.
ENTRY_POINT_FAILURES: list[str] = []


def _entry_point_origin(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    where = f"{dist.name} {dist.version}" if dist is not None else "an unnamed distribution"
    return f"entry point {ep.name!r} = {ep.value!r} of {where} (group {ENTRY_POINT_GROUP!r})"


def _load_entry_point(ep: Any) -> None:
    """Import one plugin. A plugin that fails is reported, not raised: an unrelated broken
    package installed beside capbench must not stop every command, and the error of a run that
    names the missing method says why it is missing (``get_method``)."""
    before = len(METHODS)
    try:
        ep.load()
    except Exception as err:  # any error of a third-party import is reported, not raised
        problem = f"{_entry_point_origin(ep)} failed to load: {type(err).__name__}: {err}"
    else:
        if len(METHODS) > before:
            return
        problem = (
            f"{_entry_point_origin(ep)} loaded but registered no method: its module should call "
            "capbench.methods.registry.register_method(MethodSpec(...)) when imported"
        )
    ENTRY_POINT_FAILURES.append(problem)
    warnings.warn(problem, MethodEntryPointWarning, stacklevel=3)


def discover_methods() -> Registry[MethodSpec]:
    """Import every method package under ``capbench.methods`` and every entry point of the
    ``capbench.methods`` group once, so that each has registered itself; return ``METHODS``."""
    global _discovered
    if not _discovered:
        import capbench.methods as pkg

        for info in pkgutil.iter_modules(pkg.__path__):
            if info.ispkg:
                importlib.import_module(f"{pkg.__name__}.{info.name}")
        # set before the plugins load: one that builds on a capbench method (``get_method``)
        # then finds the registry as it stands, instead of starting discovery over
        _discovered = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _load_entry_point(ep)
    return METHODS


def unknown_method_message(name: str) -> str:
    """Why ``name`` is not a method: the registered names and any plugin that failed to load."""
    known = ", ".join(discover_methods()) or "none"
    message = f"unknown method {name!r}; registered: {known}"
    if ENTRY_POINT_FAILURES:
        message += "; not registered: " + "; ".join(ENTRY_POINT_FAILURES)
    return message


def get_method(name: str) -> MethodSpec:
    """The registered method ``name`` (an error lists the known names, and the plugins that
    failed to load)."""
    methods = discover_methods()
    if name not in methods:
        raise KeyError(unknown_method_message(name))
    return methods.get(name)
