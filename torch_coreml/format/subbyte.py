"""Bit packing for the sub-byte integer types (int4, uint1, uint2, uint3, uint4, uint6).

Core ML stores these LSB-first: element i occupies bits [i*b, i*b + b) of a little-endian bit
stream, so element 0 sits in the low bits of byte 0, and a 3- or 6-bit element may straddle two
bytes. The last byte is zero-padded. The same packing is used for weight blob payloads and for
immediate `bytes` literals in the model proto, which is why these helpers live on their own.

Packing works on groups of values that fill a whole number of bytes (8 one-bit values make one
byte, 8 three-bit values make three bytes, ...), so it is vectorized without expanding every value
into eight separate bits.
"""

from __future__ import annotations

import math

import numpy as np

from torch_coreml.errors import BlobError

# name -> (bit width, signed)
SUBBYTE_TYPES: dict[str, tuple[int, bool]] = {
    "int4": (4, True),
    "uint1": (1, False),
    "uint2": (2, False),
    "uint3": (3, False),
    "uint4": (4, False),
    "uint6": (6, False),
}


def is_subbyte(dtype: str) -> bool:
    return dtype in SUBBYTE_TYPES


def value_range(dtype: str) -> tuple[int, int]:
    """Inclusive (low, high) bounds of the values a sub-byte type can hold."""
    bits, signed = _lookup(dtype)
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def packed_size(dtype: str, count: int) -> tuple[int, int]:
    """(size in bytes, unused padding bits in the last byte) for `count` packed elements."""
    bits, _ = _lookup(dtype)
    total_bits = count * bits
    size = -(-total_bits // 8)
    return size, size * 8 - total_bits


def pack(values, dtype: str) -> bytes:
    """Pack integer `values` (any shape, flattened in C order) into the LSB-first byte stream.

    Raises BlobError if a value does not fit the type's range.
    """
    bits, _ = _lookup(dtype)
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "biu":
        raise BlobError(f"{dtype} values must be integers, got an array of {flat.dtype}")
    _check_range(flat, dtype)
    size, _ = packed_size(dtype, flat.size)
    out = np.empty(size, dtype=np.uint8)
    # Chunks start on whole bytes because _CHUNK is a multiple of every group size.
    for start in range(0, flat.size, _CHUNK):
        chunk = _pack_chunk(flat[start : start + _CHUNK], bits)
        first = start * bits // 8
        out[first : first + chunk.size] = chunk
    return out.tobytes()


def unpack(data, dtype: str, count: int) -> np.ndarray:
    """Unpack `count` elements from the LSB-first byte stream `data` (bytes or a uint8 array).

    Returns int8 values for int4 and uint8 values for the unsigned types, as a flat array.
    Raises BlobError if `data` holds fewer than `count` elements.
    """
    bits, signed = _lookup(dtype)
    raw = data.reshape(-1) if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    if raw.dtype != np.uint8:
        raise BlobError(f"packed {dtype} data must be bytes or a uint8 array, got {raw.dtype}")
    size, _ = packed_size(dtype, count)
    if raw.size < size:
        raise BlobError(f"{count} {dtype} values need {size} packed bytes, found {raw.size}")
    out = np.empty(count, dtype=np.int8 if signed else np.uint8)
    for start in range(0, count, _CHUNK):
        n = min(_CHUNK, count - start)
        first = start * bits // 8
        codes = _unpack_chunk(raw[first : first + -(-n * bits // 8)], bits, n)
        if signed:
            sign = 1 << (bits - 1)
            codes = (codes.astype(np.int16) ^ sign) - sign  # sign-extend the two's complement code
        out[start : start + n] = codes
    return out


# Values handled per step: bounds the temporaries (about 8 bytes per value) for huge tensors.
_CHUNK = 1 << 20


def _pack_chunk(values: np.ndarray, bits: int) -> np.ndarray:
    per_group, group_bytes = _group_geometry(bits)
    padded = np.zeros(-(-values.size // per_group) * per_group, dtype=np.uint32)
    # Masking keeps the two's complement low bits of signed values: -1 in int4 is 0b1111.
    padded[: values.size] = values.astype(np.int64) & ((1 << bits) - 1)
    shifts = np.arange(per_group, dtype=np.uint32) * bits
    words = np.bitwise_or.reduce(padded.reshape(-1, per_group) << shifts, axis=1).astype("<u4")
    packed = words.view(np.uint8).reshape(-1, 4)[:, :group_bytes].reshape(-1)
    return packed[: -(-values.size * bits // 8)]


def _unpack_chunk(raw: np.ndarray, bits: int, count: int) -> np.ndarray:
    per_group, group_bytes = _group_geometry(bits)
    n_groups = -(-count // per_group)
    padded = np.zeros(n_groups * group_bytes, dtype=np.uint32)
    padded[: raw.size] = raw
    columns = padded.reshape(n_groups, group_bytes)
    words = np.zeros(n_groups, dtype=np.uint32)
    for k in range(group_bytes):
        words |= columns[:, k] << np.uint32(8 * k)
    shifts = np.arange(per_group, dtype=np.uint32) * bits
    return ((words[:, None] >> shifts) & np.uint32((1 << bits) - 1)).reshape(-1)[:count]


def _lookup(dtype: str) -> tuple[int, bool]:
    try:
        return SUBBYTE_TYPES[dtype]
    except KeyError:
        raise BlobError(
            f"{dtype!r} is not a sub-byte type; expected one of {sorted(SUBBYTE_TYPES)}"
        ) from None


def _group_geometry(bits: int) -> tuple[int, int]:
    """How many values fill a whole number of bytes, and how many bytes that is (at most 3)."""
    group_bits = math.lcm(bits, 8)
    return group_bits // bits, group_bits // 8


def _check_range(flat: np.ndarray, dtype: str) -> None:
    if flat.size == 0:
        return
    low, high = value_range(dtype)
    smallest, largest = int(flat.min()), int(flat.max())
    if smallest < low or largest > high:
        bad = smallest if smallest < low else largest
        raise BlobError(f"value {bad} does not fit {dtype}: expected a value in [{low}, {high}]")
