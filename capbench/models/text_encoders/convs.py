"""Temporal convolution stacks, the front of Reed's CNN and CNN-RNN text encoders.

Torch7's ``TemporalConvolution(in, out, k)`` is ``Conv1d(in, out, k)`` (no padding, stride 1),
``Threshold()`` is a ReLU (it zeroes values <= 1e-6), and ``TemporalMaxPooling(k, s)`` is
``MaxPool1d(k, s)`` with floor rounding. A stack is described as data (``ConvSpec`` per layer) so
the encoders list their layers the way the Lua modules do, and the number of time steps that
come out (8 for the CNN-RNNs, the flattened width for the CNNs) is computed, not hard-coded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from torch import Tensor, nn

from capbench.models.text_encoders.base import one_hot


@dataclass(frozen=True)
class ConvSpec:
    """One ``TemporalConvolution -> Threshold [-> TemporalMaxPooling]`` block."""

    channels: int
    kernel: int
    pool: tuple[int, int] | None = None  # (kernel, stride)


def with_channels(
    specs: Sequence[ConvSpec], channels: Sequence[int] | None
) -> tuple[ConvSpec, ...]:
    """``specs`` with each layer's output channels replaced by ``channels`` (same kernels and
    pooling, so the same number of steps): a narrower stack for a CPU-sized stand-in. ``None``
    keeps the paper's layers."""
    if channels is None:
        return tuple(specs)
    if len(channels) != len(specs) or any(int(c) < 1 for c in channels):
        raise ValueError(
            f"channels must give {len(specs)} positive layer widths (one per conv layer), "
            f"got {list(channels)}"
        )
    return tuple(replace(spec, channels=int(c)) for spec, c in zip(specs, channels, strict=True))


def conv_layers(in_channels: int, specs: Sequence[ConvSpec]) -> nn.Sequential:
    """The blocks as one ``nn.Sequential`` over ``(B, C, T)``."""
    layers: list[nn.Module] = []
    channels = in_channels
    for spec in specs:
        layers += [nn.Conv1d(channels, spec.channels, spec.kernel), nn.ReLU()]
        if spec.pool is not None:
            layers.append(nn.MaxPool1d(spec.pool[0], spec.pool[1]))
        channels = spec.channels
    return nn.Sequential(*layers)


def conv_steps(seq_len: int, specs: Sequence[ConvSpec]) -> int:
    """Time steps left after the stack, for an input of ``seq_len`` steps (0 if none)."""
    steps = seq_len
    for spec in specs:
        steps -= spec.kernel - 1
        if spec.pool is not None and steps >= spec.pool[0]:
            steps = (steps - spec.pool[0]) // spec.pool[1] + 1
        elif spec.pool is not None:
            return 0
        if steps < 1:
            return 0
    return steps


class OneHotConvs(nn.Module):
    """ids ``(B, L)`` -> one-hot -> conv stack -> features ``(B, T, C)`` (time-major, as Torch's
    TemporalConvolution lays them out, which is what its ``Reshape`` flattens)."""

    def __init__(self, vocab_size: int, seq_len: int, specs: Sequence[ConvSpec]) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.convs = conv_layers(vocab_size - 1, specs)
        self.steps = conv_steps(seq_len, specs)
        if self.steps < 1:
            raise ValueError(f"an input of {seq_len} steps is too short for the conv stack {specs}")
        self.channels = specs[-1].channels

    def forward(self, ids: Tensor) -> Tensor:
        x = one_hot(ids, self.vocab_size).transpose(1, 2)  # (B, V-1, L)
        return self.convs(x).transpose(1, 2)  # (B, T, C)
