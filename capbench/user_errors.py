"""The errors that are the user's to fix (a malformed dataset, a corrupt image, weights not
given or not loadable, a path that is not there): every command prints them as one line
``capbench <verb>: error: ...``, not as a traceback, and ``capbench reproduce`` reports a row
that fails on one by its FAILED line alone. Each one's message already names the file, the
record and what was expected."""

from __future__ import annotations


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes a command reports as one line (imported lazily: ``capbench --help``
    must not import torch)."""
    from capbench.bench.runner import WorkdirInUseError
    from capbench.data.errors import DatasetFormatError
    from capbench.data.images import CorruptImageError
    from capbench.methods.training import WeightsNotGiven
    from capbench.models.backbones import BackboneWeightsError
    from capbench.suite.encoder import EncoderOutputError

    # FileNotFoundError: a data root, checkpoint or weights path the user gave that is not there
    return (
        DatasetFormatError,
        CorruptImageError,
        WeightsNotGiven,
        BackboneWeightsError,
        EncoderOutputError,
        WorkdirInUseError,
        FileNotFoundError,
    )
