"""Reading IDX files (the MNIST file format) into uint8 tensors.

An IDX file is a 4-byte magic number ``00 00 <dtype> <ndim>``, then ``ndim`` big-endian
int32 sizes, then the data in C order. MNIST uses dtype 0x08 (unsigned byte) throughout.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch


class IDXError(ValueError):
    """An IDX file that cannot be parsed: bad magic number, wrong dtype or truncated data."""


def parse_idx(raw: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Parse the bytes of an unsigned-byte IDX file into a uint8 tensor of the stored shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IDXError(f"{name}: not an IDX file (bad magic number {raw[:4].hex() or 'empty file'})")
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise IDXError(f"{name}: IDX dtype 0x{dtype:02x} is not unsigned byte (0x08)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{name}: truncated header ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) if shape else 0
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise IDXError(f"{name}: {what}: shape {shape} needs {expected} data bytes, found {found}")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)
    return torch.from_numpy(data.copy())


def read_idx(path: str | Path) -> torch.Tensor:
    """Read a raw or gzip-compressed (``.gz``) IDX file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    return parse_idx(raw, name=str(path))


def encode_idx(array: np.ndarray | torch.Tensor) -> bytes:
    """The IDX bytes of a uint8 array (used to write small fake data sets in tests)."""
    a = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + np.asarray(a.shape, dtype=">i4").tobytes()
    return header + a.tobytes()
