"""Write Lua Torch7's binary serialisation (what ``torch.save`` wrote to ``.t7`` files).

Reed et al.'s release stores its GoogLeNet features (``images/<class>.t7``, N x 1024 x 10
FloatTensors) and character codes (``text_c10/<class>.t7``) this way. capbench only reads those
files (``capbench.data.sources.torch7``); this serializer is the inverse, so tests write their
``.t7`` fixtures in the real format instead of shipping binaries.

The format, as torch7's ``File.lua`` (``writeObject``), ``generic/Tensor.c`` and
``generic/Storage.c`` (``write``) lay it out, with the sizes of a 64-bit Linux build (little
endian; int 4 bytes, long 8, double 8)::

    object  := int type, payload
      0 nil      (no payload)
      1 number   double
      5 boolean  int 1 or 0
      2 string   int length, bytes
      3 table    int reference, int entries, (key object, value object) * entries
      4 torch    int reference, string "V 1", string class name, class data
    Tensor  := int ndim, long size[ndim], long stride[ndim], long offset (1-based), storage object
    Storage := long n, n raw elements

References number each table and torch object in write order from 1 (Torch writes an object
met a second time as its reference alone; this writer never shares objects).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capbench.atomic import atomic_write_bytes

TYPE_NIL, TYPE_NUMBER, TYPE_STRING, TYPE_TABLE, TYPE_TORCH, TYPE_BOOLEAN = 0, 1, 2, 3, 4, 5

# numpy dtype -> Torch7 tensor type prefix ("Float" -> torch.FloatTensor / torch.FloatStorage)
TENSOR_TYPES = {
    np.dtype(np.uint8): "Byte",
    np.dtype(np.int8): "Char",
    np.dtype(np.int16): "Short",
    np.dtype(np.int32): "Int",
    np.dtype(np.int64): "Long",
    np.dtype(np.float32): "Float",
    np.dtype(np.float64): "Double",
}


class _Writer:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.references = 0

    def int(self, value: int) -> None:
        self.parts.append(struct.pack("<i", value))

    def long(self, value: int) -> None:
        self.parts.append(struct.pack("<q", value))

    def raw_string(self, value: bytes) -> None:
        self.int(len(value))
        self.parts.append(value)

    def reference(self) -> None:
        self.references += 1
        self.int(self.references)

    def object(self, obj: Any) -> None:
        if obj is None:
            self.int(TYPE_NIL)
        elif isinstance(obj, bool | np.bool_):
            self.int(TYPE_BOOLEAN)
            self.int(1 if obj else 0)
        elif isinstance(obj, int | float | np.integer | np.floating):
            self.int(TYPE_NUMBER)
            self.parts.append(struct.pack("<d", float(obj)))
        elif isinstance(obj, str | bytes):
            self.int(TYPE_STRING)
            self.raw_string(obj.encode("utf-8") if isinstance(obj, str) else obj)
        elif isinstance(obj, Mapping):
            self.table(list(obj.items()))
        elif isinstance(obj, list | tuple):
            self.table([(i + 1, v) for i, v in enumerate(obj)])  # Lua arrays are 1-based
        elif isinstance(obj, np.ndarray):
            self.tensor(obj)
        elif isinstance(obj, torch.Tensor):
            self.tensor(obj.detach().cpu().numpy())
        else:
            raise TypeError(f"cannot write a {type(obj).__name__} as a Torch7 object")

    def table(self, entries: list[tuple[Any, Any]]) -> None:
        self.int(TYPE_TABLE)
        self.reference()
        self.int(len(entries))
        for key, value in entries:
            self.object(key)
            self.object(value)

    def torch_header(self, class_name: str) -> None:
        self.int(TYPE_TORCH)
        self.reference()
        self.raw_string(b"V 1")
        self.raw_string(class_name.encode("ascii"))

    def tensor(self, array: np.ndarray) -> None:
        kind = TENSOR_TYPES.get(array.dtype)
        if kind is None:
            known = ", ".join(str(d) for d in TENSOR_TYPES)
            raise TypeError(f"no Torch7 tensor type for dtype {array.dtype} (have {known})")
        if array.ndim == 0:
            raise ValueError("Torch7 tensors have at least one dimension; got a 0-d array")
        self.torch_header(f"torch.{kind}Tensor")
        if array.size == 0:  # an empty tensor: no dimensions and no storage
            self.int(0)
            self.long(1)
            self.int(TYPE_NIL)
            return
        array = np.ascontiguousarray(array)
        self.int(array.ndim)
        for size in array.shape:
            self.long(size)
        for stride in array.strides:
            self.long(stride // array.itemsize)  # Torch strides count elements, not bytes
        self.long(1)  # storage offset, 1-based
        self.torch_header(f"torch.{kind}Storage")
        self.long(array.size)
        self.parts.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


def t7_bytes(obj: Any) -> bytes:
    """``obj`` (None, bool, number, str/bytes, dict, list/tuple, numpy array or torch tensor,
    nested) in Torch7's binary format."""
    writer = _Writer()
    writer.object(obj)
    return b"".join(writer.parts)


def write_t7(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` to ``path`` as a ``.t7`` file (atomically)."""
    return atomic_write_bytes(path, t7_bytes(obj))
