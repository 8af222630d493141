"""What every protocol module shares: where its dataset is, and a clear error when it is not."""

from __future__ import annotations

from pathlib import Path


def resolve_dataset_root(root: str | Path, data_root: Path, what: str, card: str) -> Path:
    """``root`` (absolute, or under ``data_root``); a missing folder names ``what`` and the data
    card that says how to obtain and lay it out."""
    path = Path(root)
    if not path.is_absolute():
        path = Path(data_root) / path
    if not path.is_dir():
        raise FileNotFoundError(
            f"{what} not found at {path}: see {card} for how to obtain and lay it out "
            "(or run the scenes profile, which generates its own data)"
        )
    return path
