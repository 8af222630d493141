"""Read the Torch7 ``.t7`` files of Reed et al.'s ``cvpr2016_cub`` / ``cvpr2016_flowers`` release.

Per class ``<class>.t7`` (class names as in ``allclasses.txt``; ``manifest.txt`` lists them with
the suffix):

- ``images/<class>.t7``: GoogLeNet features, an N x 1024 x 10 float tensor (N images, 1024
  pooling units, 10 crops: ``util/MultimodalMinibatchLoaderCaption.lua`` lines 66-80 index
  ``[image, :, view]``);
- ``text_c10/<class>.t7``: character codes, an N x 201 x 10 tensor (image, character, caption),
  0 = padding, else an index into the Lua alphabet below (the loader, lines 83-100).

Parsing is the ``torchfile`` package's; this module checks what comes out and names the file and
the expected shape when it is not what the release has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capbench.data.errors import DatasetFormatError

IMAGE_DIM = 1024
IMAGE_VIEWS = 10
TEXT_LENGTH = 201
CAPTIONS = 10
# The alphabet string of the Lua code (MultimodalMinibatchLoaderCaption.lua line 13,
# classify_sje_tcnn.lua line 13). It holds "-" twice: the dictionary it builds keeps the later
# index (60) for "-", so code 37 never occurs, and there are 70 codes (1..70). capbench's
# CharAlphabet (capbench/data/text.py) has "-" once, so its ids after "+" differ by one.
REED_LUA_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+-=<>()[]{} "


_STORAGE_DTYPES = {
    "Byte": np.uint8,
    "Char": np.int8,
    "Short": np.int16,
    "Int": np.int32,
    "Long": np.int64,
    "Float": np.float32,
    "Double": np.float64,
}
_checked = False


def _check_storage_reads() -> None:
    """Make torchfile refuse a storage cut short. Its own storage readers take whatever
    ``np.fromfile`` returns, and a tensor then strides past the end of that buffer (a truncated
    download reads as garbage, not as an error). Handlers are torchfile's extension point
    (``register_handler``); these are its readers plus the length check."""
    global _checked
    if _checked:
        return
    import torchfile

    for kind, dtype in _STORAGE_DTYPES.items():
        for prefix in ("torch.", "torch.Cuda"):
            name = f"{prefix}{kind}Storage".replace("CudaFloat", "Cuda").encode()
            torchfile.register_handler(name)(_storage_reader(np.dtype(dtype)))
    _checked = True


def _storage_reader(dtype: np.dtype):
    def read(reader: Any, version: Any) -> np.ndarray:
        size = reader.read_long()
        data = np.fromfile(reader.f, dtype=dtype, count=size)
        if data.size != size:
            raise EOFError(f"a storage of {size} values ends after {data.size}")
        return data

    return read


def read_t7(path: str | Path) -> Any:
    """The object stored in a ``.t7`` file: tensors become numpy arrays, tables dicts (or lists
    when their keys are 1..n), strings ``str``, whole numbers ``int`` (torchfile's conventions).
    A missing or unreadable file raises ``DatasetFormatError``."""
    import torchfile

    _check_storage_reads()
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, "missing Torch7 file: expected a .t7 file at this path")
    try:
        return _plain(torchfile.load(str(path), utf8_decode_strings=True))
    except Exception as err:  # struct.error, T7ReaderException, ValueError... on a bad file
        raise DatasetFormatError(
            path, f"not a readable Torch7 binary file ({type(err).__name__}: {err})"
        ) from None


def _plain(obj: Any) -> Any:
    """torchfile's tables (dicts that compare by identity, as Lua tables do) as plain dicts and
    lists; other objects (arrays, nn modules as ``TorchObject``) as they are."""
    if isinstance(obj, dict):
        return {_plain(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _class_files(folder: Path, classes: Iterable[str] | None) -> dict[str, Path]:
    if not folder.is_dir():
        raise DatasetFormatError(folder, "missing directory of <class>.t7 files")
    if classes is None:
        files = {p.stem: p for p in sorted(folder.glob("*.t7"))}
        if not files:
            raise DatasetFormatError(folder, "no <class>.t7 files in this directory")
        return files
    names = [c.removesuffix(".t7") for c in classes]
    return {name: folder / f"{name}.t7" for name in names}


def _read_class_tensor(path: Path, name: str, trailing: tuple[int, ...]) -> np.ndarray:
    data = read_t7(path)
    expected = "N x " + " x ".join(str(s) for s in trailing)
    if not isinstance(data, np.ndarray):
        raise DatasetFormatError(
            path, f"expected a {expected} tensor, found a {type(data).__name__}", name
        )
    if data.ndim != 1 + len(trailing) or tuple(data.shape[1:]) != trailing or data.shape[0] < 1:
        shape = " x ".join(str(s) for s in data.shape) or "empty"
        raise DatasetFormatError(path, f"expected a {expected} tensor, found {shape}", name)
    return np.ascontiguousarray(data)


def read_image_features(
    folder: str | Path,
    classes: Sequence[str] | None = None,
    dim: int = IMAGE_DIM,
    views: int = IMAGE_VIEWS,
) -> dict[str, torch.Tensor]:
    """``images/<class>.t7`` files -> {class: (N, dim, views) float32 tensor}, in ``classes``
    order (default: every ``.t7`` in ``folder``, sorted)."""
    out: dict[str, torch.Tensor] = {}
    for name, path in _class_files(Path(folder), classes).items():
        data = _read_class_tensor(path, name, (dim, views))
        if not np.issubdtype(data.dtype, np.floating):
            raise DatasetFormatError(
                path, f"expected float image features, found {data.dtype} values", name
            )
        out[name] = torch.from_numpy(data.astype(np.float32, copy=False))
    return out


def read_char_codes(
    folder: str | Path,
    classes: Sequence[str] | None = None,
    length: int = TEXT_LENGTH,
    captions: int = CAPTIONS,
) -> dict[str, torch.Tensor]:
    """``text_c10/<class>.t7`` files -> {class: (N, length, captions) int64 tensor of Lua
    alphabet codes}; every code must be an integer in 0..70."""
    out: dict[str, torch.Tensor] = {}
    top = len(REED_LUA_ALPHABET)
    for name, path in _class_files(Path(folder), classes).items():
        data = _read_class_tensor(path, name, (length, captions))
        codes = data.astype(np.int64)
        if (codes != data).any() or codes.min() < 0 or codes.max() > top:
            raise DatasetFormatError(
                path, f"character codes must be integers in 0..{top}, found {data.dtype} "
                f"values in [{data.min()}, {data.max()}]", name,
            )  # fmt: skip
        out[name] = torch.from_numpy(codes)
    return out


def decode_char_codes(codes: Iterable[int]) -> str:
    """One caption's codes (0 = padding, which ends the text as in the Lua loader) -> text."""
    chars = []
    for code in codes:
        code = int(code)
        if code == 0:
            break
        chars.append(REED_LUA_ALPHABET[code - 1])
    return "".join(chars)


def encode_char_codes(text: str, length: int = TEXT_LENGTH) -> list[int]:
    """The Lua codes of ``text`` (lowercased; characters outside the alphabet dropped), cut or
    zero-padded to ``length``: how the release's ``text_c10`` tensors encode a caption."""
    index = {ch: i + 1 for i, ch in enumerate(REED_LUA_ALPHABET)}  # later "-" wins, as in Lua
    codes = [index[ch] for ch in text.lower() if ch in index][:length]
    return codes + [0] * (length - len(codes))
