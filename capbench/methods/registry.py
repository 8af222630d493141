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


_discovered = False


def discover_methods() -> Registry[MethodSpec]:
    """Import every method package under ``capbench.methods`` and every entry point of the
    ``capbench.methods`` group once, so that each has registered itself; return ``METHODS``."""
    global _discovered
    if not _discovered:
        import capbench.methods as pkg

        for info in pkgutil.iter_modules(pkg.__path__):
            if info.ispkg:
                importlib.import_module(f"{pkg.__name__}.{info.name}")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()
        _discovered = True
    return METHODS


def get_method(name: str) -> MethodSpec:
    """The registered method ``name`` (an error lists the known names)."""
    return discover_methods().get(name)
