"""How cached values are turned into bytes and back (no pickle anywhere).

A :class:`Payload` is what every tier stores: ``kind`` "json" (``data`` is UTF-8 JSON
text) or "array" (``data`` is the raw C-order bytes of a numpy array, ``meta`` holds
``{"dtype": "<f4", "shape": [2, 384]}``). Redis stores a payload as one value with a
small header (:func:`to_wire` / :func:`from_wire`).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

WIRE_MAGIC = b"RAG1"
_KIND_BYTE = {"json": b"J", "array": b"A"}
_BYTE_KIND = {v: k for k, v in _KIND_BYTE.items()}
MAX_NDIM = 32


class CorruptEntry(Exception):
    """A stored value that cannot be decoded (garbage, truncated, foreign writer)."""


@dataclass(frozen=True)
class Payload:
    kind: str  # "json" | "array"
    data: bytes
    meta: dict[str, Any] | None = None
    expires_at: float | None = None  # wall-clock seconds (time.time()); None: no expiry

    def with_expiry(self, expires_at: float | None) -> "Payload":
        return Payload(self.kind, self.data, self.meta, expires_at)


def encode_json(value: Any) -> Payload:
    """JSON-encode ``value`` (TypeError/ValueError if it is not JSON-serialisable)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Payload("json", text.encode("utf-8"))


def decode_json(p: Payload) -> Any:
    try:
        return json.loads(p.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CorruptEntry(f"invalid JSON payload: {e}") from None


def encode_array(arr: np.ndarray) -> Payload:
    """Raw bytes plus dtype/shape; object arrays are refused (TypeError)."""
    a = np.asarray(arr)
    if a.dtype.hasobject or a.dtype.kind == "V":
        raise TypeError(f"cannot cache an array of dtype {a.dtype}")
    if not a.flags.c_contiguous:
        a = a.copy(order="C")  # (np.ascontiguousarray would turn a 0-d array into 1-d)
    return Payload("array", a.tobytes(order="C"), {"dtype": a.dtype.str, "shape": list(a.shape)})


def decode_array(p: Payload) -> np.ndarray:
    meta = p.meta or {}
    try:
        dtype = np.dtype(str(meta["dtype"]))
        shape = tuple(int(x) for x in meta["shape"])
        if dtype.hasobject or len(shape) > MAX_NDIM or any(x < 0 for x in shape):
            raise ValueError("bad dtype/shape")
        n = math.prod(shape) * dtype.itemsize
        if n != len(p.data):
            raise ValueError(f"{len(p.data)} bytes for shape {shape} of {dtype}")
        return np.frombuffer(p.data, dtype=dtype).reshape(shape).copy()
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptEntry(f"invalid array payload: {e}") from None


def to_wire(p: Payload) -> bytes:
    """``RAG1`` + kind byte + (arrays: 4-byte header length + JSON header) + data."""
    if p.kind == "json":
        return WIRE_MAGIC + b"J" + p.data
    header = json.dumps(p.meta, separators=(",", ":")).encode()
    return WIRE_MAGIC + b"A" + struct.pack(">I", len(header)) + header + p.data


def from_wire(raw: bytes, expires_at: float | None = None) -> Payload:
    if not isinstance(raw, (bytes, bytearray)) or len(raw) < 5 or raw[:4] != WIRE_MAGIC:
        raise CorruptEntry("value without the rag header")
    kind = _BYTE_KIND.get(bytes(raw[4:5]))
    if kind == "json":
        return Payload("json", bytes(raw[5:]), None, expires_at)
    if kind == "array":
        if len(raw) < 9:
            raise CorruptEntry("truncated array header")
        (n,) = struct.unpack(">I", raw[5:9])
        if 9 + n > len(raw):
            raise CorruptEntry("truncated array header")
        try:
            meta = json.loads(raw[9 : 9 + n])
        except ValueError as e:
            raise CorruptEntry(f"bad array header: {e}") from None
        if not isinstance(meta, dict):
            raise CorruptEntry("bad array header")
        return Payload("array", bytes(raw[9 + n :]), meta, expires_at)
    raise CorruptEntry(f"unknown kind byte {raw[4:5]!r}")
