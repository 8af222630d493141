"""Convolutional trunks by self-describing name ("torchvision::resnet101", "timm::resnet18").

A trunk maps images ``(B, 3, H, W)`` to the last convolutional feature map ``(B, C, h, w)``: the
pooling on top (R-MAC, GeM, global average) belongs to the method, and Grad-CAM needs that map.

Weights never come from the network (nothing can be downloaded where capbench runs, and a silent
download would make runs irreproducible): a trunk is randomly initialised unless ``weights`` names
a LOCAL file, either a plain state dict (torchvision / timm ImageNet checkpoints, our own
``capbench pretrain-backbone`` output) or a Lightning checkpoint whose ``state_dict`` holds the
trunk under some prefix (``backbone.``, ``trunk.``, ``model.``, ...). Classifier heads in the file
(``fc.*``, ``head.*``, ``classifier.*``) are dropped; any other mismatch is an error that names the
file and lists the missing / unexpected keys.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

_HEAD_PREFIXES = ("fc.", "head.", "classifier.", "last_linear.", "aux1.", "aux2.")


class BackboneWeightsError(RuntimeError):
    """A weights file that cannot be loaded into the requested trunk."""


def _torchvision_trunk(arch: str) -> tuple[nn.Module, int]:
    import torchvision

    try:
        factory = getattr(torchvision.models, arch)
    except AttributeError:
        raise KeyError(f"torchvision has no model {arch!r}") from None
    if arch == "googlenet":
        return _googlenet_trunk()
    net = factory(weights=None)
    if not arch.startswith(("resnet", "resnext", "wide_resnet")):
        raise KeyError(f"torchvision::{arch}: only ResNet-family trunks are supported")
    # Keep torchvision's own module names so its ImageNet state dicts load key for key.
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    trunk = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in names))
    return trunk, int(net.fc.in_features)


class _GoogLeNetInput(nn.Module):
    """torchvision's ``GoogLeNet._transform_input``: its ImageNet weights were trained on inputs
    normalised with mean = std = 0.5, so ImageNet-normalised images are mapped there first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        return torch.cat(
            [x[:, i : i + 1] * (std[i] / 0.5) + (mean[i] - 0.5) / 0.5 for i in range(3)], dim=1
        )


def _googlenet_trunk() -> tuple[nn.Module, int]:
    """torchvision's GoogLeNet (with batch normalisation, as Reed et al.'s Torch model) up to
    ``inception5b``: a 1024-channel map whose average is the 1024 pooling units. Its auxiliary
    heads are training-only and left out (their keys in an ImageNet file are ignored)."""
    import torchvision

    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    names = (
        "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b",
        "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d", "inception4e",
        "maxpool4", "inception5a", "inception5b",
    )  # fmt: skip
    layers = [("transform_input", _GoogLeNetInput())]
    layers += [(n, getattr(net, n)) for n in names]
    return nn.Sequential(OrderedDict(layers)), 1024


def _timm_trunk(arch: str) -> tuple[nn.Module, int]:
    import timm

    # num_classes=0 + global_pool="" makes forward() return the unpooled last feature map,
    # and keeps timm's key names so timm checkpoints load directly.
    net = timm.create_model(arch, pretrained=False, num_classes=0, global_pool="")
    return net, int(net.num_features)


_FAMILIES = {"torchvision": _torchvision_trunk, "timm": _timm_trunk}


def backbone_names() -> list[str]:
    """Examples of accepted names (any torchvision ResNet or any timm model works)."""
    return [
        "torchvision::resnet18",
        "torchvision::resnet50",
        "torchvision::resnet101",
        "timm::resnet18",
        "timm::resnet50",
        "timm::resnet101",
    ]


def parse_name(name: str) -> tuple[str, str]:
    family, sep, arch = name.partition("::")
    if not sep or family not in _FAMILIES or not arch:
        raise KeyError(
            f"backbone name {name!r} must look like 'torchvision::resnet101' or 'timm::resnet18' "
            f"(families: {', '.join(sorted(_FAMILIES))})"
        )
    return family, arch


def _load_failure(err: Exception) -> str:
    """What ``torch.load(weights_only=True)`` found wrong, without its advice to retry with
    ``weights_only=False`` (which would run whatever code the file holds)."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    return " ".join(text.split()) or type(err).__name__


def read_state_dict(path: str | Path, mmap: bool = False) -> dict[str, torch.Tensor]:
    """Tensors of a local weights file: a state dict, or a checkpoint holding one. ``mmap``:
    the tensors are mapped, not read (checking a file whole costs its index, not its bytes)."""
    path = Path(path)
    if not path.is_file():
        raise BackboneWeightsError(f"{path}: backbone weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        raise BackboneWeightsError(
            f"{path}: not a torch checkpoint of tensors ({_load_failure(err)}); capbench reads "
            "weights without running pickled code: give a state dict saved with "
            "torch.save(model.state_dict(), path), or a checkpoint holding one"
        ) from err
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackboneWeightsError(
            f"{path}: expected a state dict of tensors (or a checkpoint with 'state_dict')"
        )
    return dict(obj)


def _strip_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Find the prefix under which the trunk sits (``backbone.trunk.``, ``module.``, ...)."""
    if expected & state.keys():
        return state
    votes: Counter[str] = Counter()
    for key in state:
        for exp in expected:
            if key.endswith("." + exp):
                votes[key[: len(key) - len(exp)]] += 1
    if not votes:
        return state
    prefix = votes.most_common(1)[0][0]
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_trunk_weights(trunk: nn.Module, path: str | Path) -> None:
    """Load a local weights file into ``trunk``, strictly except for classifier heads."""
    expected = set(trunk.state_dict())
    state = _strip_prefix(read_state_dict(path), expected)
    state = {k: v for k, v in state.items() if k in expected or not k.startswith(_HEAD_PREFIXES)}
    missing = sorted(expected - state.keys())
    unexpected = sorted(state.keys() - expected)
    if missing or unexpected:
        raise BackboneWeightsError(
            f"{path}: weights do not match the {type(trunk).__name__} trunk; "
            f"missing keys ({len(missing)}): {missing[:10]}{' ...' if len(missing) > 10 else ''}; "
            f"unexpected keys ({len(unexpected)}): {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )
    own = trunk.state_dict()
    bad = [k for k, v in state.items() if tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        k = bad[0]
        raise BackboneWeightsError(
            f"{path}: {len(bad)} tensors have the wrong shape, e.g. {k}: file {tuple(state[k].shape)} "
            f"vs model {tuple(own[k].shape)}"
        )
    trunk.load_state_dict(state, strict=True)


def create_backbone(
    name: str, weights: str | Path | None = None, *, channels_last: bool = False
) -> tuple[nn.Module, int]:
    """``(trunk, out_channels)`` for ``name``; random init unless ``weights`` is a local file."""
    family, arch = parse_name(name)
    trunk, channels = _FAMILIES[family](arch)
    if weights is not None:
        load_trunk_weights(trunk, weights)
    if channels_last:
        trunk = trunk.to(memory_format=torch.channels_last)
    return trunk, channels
