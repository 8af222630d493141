"""The three files the bench trusts, declared once with pydantic: ``paper.yaml``, a row config,
and a run record (``RunRecord``, in ``record.py``, is a model built from the same parts).

Validation errors are turned into one message that names the key path (``tables.t1.rows.a.
reported.mean: must be a number, got '2.0'``); the callers prefix the file, so an error reads
as before: file, key, what was expected. The JSON Schema of each model is committed under
``json_schema/`` next to this file for the docs (``PAPER_SCHEMA.md``) and editors; a test keeps
it equal to the models, and ``python -m capbench.bench.schemas`` rewrites it.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

# ``ci`` is the scenes rows at a size that fits CI (tiny scenes data, short schedules).
Profile = Literal["scenes", "ci", "paper"]
PROFILES: tuple[str, ...] = get_args(Profile)
JSON_SCHEMA_DIR = Path(__file__).with_name("json_schema")


class At(ValueError):
    """A check that belongs to a key below the model that makes it (``loc`` relative to it),
    e.g. a reported number under a row whose metric the table does not have."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        self.loc = loc
        super().__init__(message)


def _none_as_empty(value: Any) -> Any:
    """``key:`` with nothing after it in YAML is null; for a mapping that means empty."""
    return {} if value is None else value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


TARGET_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
HEX64_PATTERN = r"^[0-9a-f]{64}$"
# what a pattern means, for error messages
_PATTERNS = {
    TARGET_PATTERN: "must be 'package.module:function'",
    HEX64_PATTERN: "must be 64 hex digits",
}

# Numbers are JSON/YAML numbers only: "2.0" (a string) or true (a bool) is an error, not 2.0.
Number = Annotated[float, Field(strict=True)]
NonNegative = Annotated[float, Field(strict=True, ge=0)]
Finite = Annotated[float, Field(strict=True), AfterValidator(_finite)]
Count = Annotated[int, Field(strict=True, ge=0)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def _mapping(value_type: Any) -> Any:
    return Annotated[dict[str, value_type], BeforeValidator(_none_as_empty)]


class StrictSpec(BaseModel):
    """Unknown keys are errors (a typo must not be ignored); numbers in text keys are text."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


# ---------------------------------------------------------------- paper.yaml


class MetricSpec(StrictSpec):
    """One column of a table: how it is shown and how far a reproduction may be from it."""

    label: str | None = None
    higher_is_better: Annotated[bool, Field(strict=True)] = True
    tolerance: NonNegative | None = Field(
        None, description="absolute, in the unit of `reported` (paper profile)"
    )
    tolerance_why: str = Field("", description="required whenever `tolerance` is given")
    unit: str = ""
    scale: Number = Field(1.0, description="reproduced = record value * scale")
    scenes_tolerance: NonNegative | None = Field(
        None, description="golden tolerance (scenes and ci profiles), same unit"
    )

    @model_validator(mode="after")
    def _justified(self) -> MetricSpec:
        if self.tolerance is not None and not self.tolerance_why.strip():
            raise At(("tolerance_why",), "tolerance_why is required to justify the tolerance")
        return self


class RowSpec(StrictSpec):
    """One row of a table: what the paper reports and which configs reproduce it."""

    label: str | None = None
    reported: _mapping(Number | None) = Field(
        default_factory=dict, description="metric -> number; null = not reported"
    )
    reported_std: _mapping(Number | None) = Field(default_factory=dict)
    source: str = ""
    pending: str | None = Field(None, description="why the row is listed but not run")
    configs: Annotated[dict[Profile, str | None], BeforeValidator(_none_as_empty)] = Field(
        default_factory=dict,
        description="profile -> config file (default <row>.<profile>.yaml); null = this row "
        "does not run on that profile, even where the default file exists",
    )


class TableSpec(StrictSpec):
    title: str | None = None
    source: str = ""
    layout: Literal["rows", "matrix"] = Field(
        "rows",
        description="rows: a line per row and metric (a paper's table); matrix: rows x metrics, "
        "best per column marked (the cross-method suite)",
    )
    metrics: Annotated[_mapping(MetricSpec), Field(min_length=1)]
    rows: _mapping(RowSpec) = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reported_metrics_exist(self) -> TableSpec:
        for rid, row in self.rows.items():
            for name in ("reported", "reported_std"):
                for mkey in getattr(row, name):
                    if mkey not in self.metrics:
                        raise At(
                            ("rows", rid, name, mkey),
                            f"not a metric of this table ({', '.join(self.metrics)})",
                        )
        return self


class FigureSpec(StrictSpec):
    title: str | None = None
    source: str = ""
    table: str
    curves: list[str] = Field(default_factory=list, description="keys of RowResult.curves")


class PaperSpec(StrictSpec):
    """``benchmarks/<paper>/paper.yaml``: what a paper reports (see ``PAPER_SCHEMA.md``)."""

    model_config = ConfigDict(title="paper.yaml")

    schema_version: Literal[1] = Field(1, alias="schema")
    key: NonEmptyStr | None = Field(None, description="default: the folder name")
    title: str | None = None
    authors: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = (
        Field(default_factory=list)
    )
    venue: str = ""
    year: int | None = None
    arxiv: str | None = None
    url: str | None = None
    bibtex: str = ""
    tables: Annotated[_mapping(TableSpec), Field(min_length=1)]
    figures: _mapping(FigureSpec) = Field(default_factory=dict)

    @model_validator(mode="after")
    def _figures_plot_known_tables(self) -> PaperSpec:
        for fid, fig in self.figures.items():
            if fig.table not in self.tables:
                raise At(("figures", fid, "table"), f"unknown table {fig.table!r}")
        return self


# ---------------------------------------------------------------- row configs


class BenchSection(StrictSpec):
    """Where a user-added row shows up (``PAPER_SCHEMA.md``, "Rows a user adds")."""

    paper: str | None = None
    table: str | None = None
    row: str | None = None
    label: str | None = None


class RowConfigSpec(BaseModel):
    """A resolved row config (bases merged, overrides applied). Sections other than these
    (``model``, ``data``, ``trainer``, ...) pass through to the method untouched."""

    model_config = ConfigDict(
        extra="allow",
        title="row config",
        json_schema_extra={"oneOf": [{"required": ["target"]}, {"required": ["method"]}]},
    )

    target: Annotated[str, Field(pattern=TARGET_PATTERN)] | None = Field(
        None, description="'package.module:function', called (config, ctx) -> RowResult"
    )
    method: NonEmptyStr | None = Field(None, description="a registered method name")
    requires: _mapping(str) = Field(
        default_factory=dict, description="dotted config key -> why the row needs it"
    )
    slurm: _mapping(Any) = Field(default_factory=dict)
    bench: BenchSection | None = None
    scenes_data: str | None = Field(None, description="scenes data size the row reads")

    @model_validator(mode="after")
    def _one_entry_point(self) -> RowConfigSpec:
        if (self.target is None) == (self.method is None):
            both = "both" if self.target is not None else "neither"
            raise At(
                ("target",),
                f"a row config names exactly one of 'target: package.module:function' and "
                f"'method: NAME' ({both} given)",
            )
        return self


# ---------------------------------------------------------------- run records


def _curve(value: dict[str, list[float]]) -> dict[str, list[float]]:
    if set(value) != {"x", "y"}:
        raise ValueError("must be {'x': [...], 'y': [...]}")
    if len(value["x"]) != len(value["y"]):
        raise ValueError("x and y must be lists of equal length")
    return value


_NUMBERS = {"type": "array", "items": {"type": "number"}}
# A plain mapping (readers index it as curve["x"]), checked as {"x": [...], "y": [...]}.
CurveData = Annotated[
    dict[str, list[Number]],
    AfterValidator(_curve),
    WithJsonSchema(
        {
            "type": "object",
            "properties": {"x": _NUMBERS, "y": _NUMBERS},
            "required": ["x", "y"],
            "additionalProperties": False,
        }
    ),
]


# ---------------------------------------------------------------- errors

_MESSAGES = {
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "greater_than_equal": "must be >= {ge}",
    "literal_error": "must be {expected}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "list_type": "must be a list",
    "too_short": "must be non-empty",
    "string_too_short": "must be a non-empty string",
}


def _got(value: Any) -> str:
    return type(value).__name__ if isinstance(value, dict | list) else repr(value)


def describe(err: ValidationError, limit: int = 5) -> str:
    """One line for up to ``limit`` errors: ``key.path: what was expected, got what``."""
    parts = []
    for e in err.errors(include_url=False):
        exc = (e.get("ctx") or {}).get("error")
        loc = [str(x) for x in (*e["loc"], *getattr(exc, "loc", ()))]
        if loc and loc[-1] == "[key]":  # a mapping's key itself is wrong: name it, not its path
            loc = loc[:-1]
            loc[-1:] = [f"key {loc[-1]!r}"] if loc else []
        where = ".".join(loc) or "top level"
        if e["type"] == "extra_forbidden":
            parts.append(f"{'.'.join(loc[:-1]) or 'top level'}: unknown key {loc[-1]!r}")
        elif e["type"] == "missing":
            parts.append(f"{'.'.join(loc[:-1]) or 'top level'}: missing key {loc[-1]!r}")
        elif exc is not None:
            parts.append(f"{where}: {exc}")
        elif e["type"] == "string_pattern_mismatch":
            pattern = (e.get("ctx") or {}).get("pattern", "")
            text = _PATTERNS.get(pattern, f"must match {pattern}")
            parts.append(f"{where}: {text}, got {_got(e['input'])}")
        elif e["type"] in _MESSAGES:
            text = _MESSAGES[e["type"]].format(**(e.get("ctx") or {}))
            parts.append(f"{where}: {text}, got {_got(e['input'])}")
        else:
            parts.append(f"{where}: {e['msg']}, got {_got(e['input'])}")
    more = len(parts) - limit
    return "; ".join(parts[:limit]) + (f"; and {more} more" if more > 0 else "")


def validate(model: type[BaseModel], raw: Any) -> Any:
    """``model`` from ``raw``; a ``ValueError`` with :func:`describe`'s message otherwise."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"top level: must be a mapping, got {_got(raw)}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ValueError(describe(err)) from None


# ---------------------------------------------------------------- JSON Schema for the docs


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema of each declared file."""
    from capbench.bench.record import RunRecord  # record.py builds on the parts above

    return {
        "paper.schema.json": PaperSpec.model_json_schema(by_alias=True),
        "row_config.schema.json": RowConfigSpec.model_json_schema(by_alias=True),
        "run_record.schema.json": RunRecord.model_json_schema(by_alias=True),
    }


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_json_schemas(folder: Path = JSON_SCHEMA_DIR) -> list[Path]:
    from capbench.atomic import atomic_write_text

    return [
        atomic_write_text(folder / name, schema_text(schema))
        for name, schema in json_schemas().items()
    ]


if __name__ == "__main__":
    for path in write_json_schemas():
        print(f"wrote {path}", file=sys.stderr)
