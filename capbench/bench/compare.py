"""Explain a delta between two run records: what differs besides the numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capbench.bench.record import RunRecord

_MISSING = "<absent>"


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay whole (they replace, never merge)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def diff_mappings(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    fa, fb = flatten(a), flatten(b)
    return [
        (k, fa.get(k, _MISSING), fb.get(k, _MISSING))
        for k in sorted(set(fa) | set(fb))
        if fa.get(k, _MISSING) != fb.get(k, _MISSING)
    ]


def compare(a: RunRecord, b: RunRecord) -> list[str]:
    """Human-readable lines, grouped: identity, metrics, config, dataset, code, packages, device."""
    lines: list[str] = []

    def section(title: str, rows: list[tuple[str, Any, Any]]) -> None:
        if rows:
            lines.append(f"{title}:")
            lines.extend(f"  {k}: {va!r} -> {vb!r}" for k, va, vb in rows)
        else:
            lines.append(f"{title}: same")

    ident = [
        (k, getattr(a, k), getattr(b, k))
        for k in ("paper", "table", "row", "profile", "seed")
        if getattr(a, k) != getattr(b, k)
    ]
    section("run", ident)
    metric_rows = []
    for k in sorted(set(a.metrics) | set(b.metrics)):
        va, vb = a.metrics.get(k), b.metrics.get(k)
        if va != vb:
            delta = f" (delta {vb - va:+.6g})" if va is not None and vb is not None else ""
            metric_rows.append((k + delta, va, vb))
    section("metrics", metric_rows)
    if a.n_scored != b.n_scored:
        lines.append(f"n_scored: {a.n_scored} -> {b.n_scored}")
    cfg = diff_mappings(a.config, b.config)
    if a.config_hash != b.config_hash and not cfg:
        cfg = [("config_hash", a.config_hash[:8], b.config_hash[:8])]
    section("config", cfg)
    section("dataset", diff_mappings(a.dataset, b.dataset))
    code = [(k, va, vb) for k, va, vb in diff_mappings(a.git, b.git)]
    if a.capbench_version != b.capbench_version:
        code.append(("capbench_version", a.capbench_version, b.capbench_version))
    section("code (git)", code)
    section("packages", diff_mappings(a.packages, b.packages))
    section("device", diff_mappings(a.device, b.device))
    section("extra", diff_mappings(a.extra, b.extra))
    lines.append(f"wall time: {a.wall_time_s:.1f}s -> {b.wall_time_s:.1f}s")
    return lines
