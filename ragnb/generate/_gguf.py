"""A small, fast GGUF header reader: metadata scalars, tensor names, types and extents.

Why not ``gguf.GGUFReader``: it builds a numpy view per vocabulary entry (35 s for Gemma's
262k tokens on a busy 2-core VM); this skips arrays and reads only what the checks need.
Why check at all: ``mx.load`` segfaults on a corrupt or truncated GGUF, taking the notebook
kernel with it.

Layout (little-endian), GGUF v2/v3:

    b"GGUF", u32 version, u64 n_tensors, u64 n_kv
    n_kv    x (string key, u32 value_type, value)        strings are u64 length + bytes
    n_tensors x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset)
    padding to `general.alignment` (32), then tensor data at data_start + offset
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# value_type -> struct format of the scalar types
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i",
    6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type_id: int
    shape: tuple[int, ...]  # GGUF order: fastest-varying dimension first
    offset: int  # from the start of the data section


@dataclass(frozen=True)
class Header:
    version: int
    metadata: dict[str, Any]  # scalars and strings; arrays as their length
    tensors: list[TensorInfo]
    data_start: int


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.data):
            raise ValueError(f"string of {n} bytes runs past the end of the file")
        text = self.data[self.pos : self.pos + n].decode("utf-8", errors="replace")
        self.pos += n
        return text

    def value(self, kind: int, keep: bool = True) -> Any:
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, n = self.take("<I"), self.take("<Q")
            if item in _SCALARS:  # fixed-size items: jump over them
                self.pos += n * struct.calcsize(_SCALARS[item])
                if self.pos > len(self.data):
                    raise ValueError("array runs past the end of the file")
            else:
                for _ in range(n):
                    self.value(item, keep=False)
            return n
        raise ValueError(f"unknown GGUF value type {kind}")


def read_header(path: Path) -> Header:
    """Parse the header of a GGUF file (SmolLM2's: 0.1 s). Raises ValueError, struct.error
    or OSError when the file is malformed."""
    import mmap

    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        cur = _Cursor(data)  # type: ignore[arg-type]
        if data[:4] != b"GGUF":
            raise ValueError(f"bad magic {bytes(data[:4])!r}")
        cur.pos = 4
        version = cur.take("<I")
        if version not in (2, 3):
            raise ValueError(f"unsupported GGUF version {version}")
        n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
        if n_tensors > len(data) or n_kv > len(data):
            raise ValueError(f"implausible counts: {n_tensors} tensors, {n_kv} keys")
        metadata = {}
        for _ in range(n_kv):
            key = cur.string()
            metadata[key] = cur.value(cur.take("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.take("<I")
            if n_dims > 4:
                raise ValueError(f"tensor {name!r} has {n_dims} dimensions")
            shape = tuple(cur.take("<Q") for _ in range(n_dims))
            tensors.append(TensorInfo(name, cur.take("<I"), shape, cur.take("<Q")))
        align = int(metadata.get("general.alignment", 32))
        data_start = -(-cur.pos // align) * align
    return Header(version, metadata, tensors, data_start)


def tensor_nbytes(tensor: TensorInfo) -> int:
    """Bytes a tensor's data takes: elements / block size * bytes per block.

    >>> tensor_nbytes(TensorInfo("w", 3, (576, 192), 0))   # Q4_1: 32 values in 20 bytes
    69120
    """
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType(tensor.type_id)]
    n = 1
    for dim in tensor.shape:
        n *= dim
    return n // block * size


def type_name(type_id: int) -> str:
    """The GGML type name of a tensor type id (2 -> "Q4_0")."""
    from gguf import GGMLQuantizationType

    return GGMLQuantizationType(type_id).name
