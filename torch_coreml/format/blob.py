"""Weight blob files (`weights/weight.bin`, "blob storage v2"): a streaming writer and a reader.

File layout, all little-endian:

    offset 0     64-byte header: uint32 count, uint32 version (= 2), 56 zero bytes
    offset 64    blob 0: 64-byte metadata record, then its payload right after it
    ...          blob k: record at the first multiple of 64 after blob k-1's payload, zero gap bytes
                 the file ends right after the last payload (no trailing padding)

    record: uint32 sentinel 0xDEADBEEF, uint32 dtype code, uint64 payload size in bytes,
            uint64 absolute payload offset (= record offset + 64), uint64 unused bits in the last
            payload byte (sub-byte types only), 32 reserved zero bytes

A model's `BlobFileValue.offset` is the offset of the *record*, which is what `BlobWriter.write`
returns and `BlobReader.read` takes. Dtypes are named by short strings ("fp16", "int4", ...), the
same names the MIL dtype module uses; the numeric dtype codes are private to this file format and
differ from MIL's `DataType` numbers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from torch_coreml.errors import BlobError
from torch_coreml.format import subbyte

logger = logging.getLogger(__name__)

ALIGNMENT = 64
BLOB_VERSION = 2
SENTINEL = 0xDEADBEEF

_HEADER = struct.Struct("<II7Q")  # count, version, reserved
_RECORD = struct.Struct("<IIQQQ4Q")  # sentinel, dtype code, size, payload offset, padding bits, reserved
assert _HEADER.size == _RECORD.size == ALIGNMENT
_THREADED_HASH_BYTES = 1 << 20  # smaller payloads are hashed inline: the hand-off would cost more


@dataclass(frozen=True)
class BlobDType:
    """One storable element type.

    `numpy_dtype` is what `BlobReader.read` returns: the value type for ordinary types, the raw bit
    pattern (uint16 / uint8) for bf16 and fp8 which numpy lacks, and the unpacked container
    (int8 / uint8) for sub-byte types.
    """

    name: str
    code: int
    bits: int
    numpy_dtype: np.dtype

    @property
    def is_subbyte(self) -> bool:
        return self.bits < 8


def _dtypes(*rows: tuple[str, int, int, str]) -> dict[str, BlobDType]:
    return {name: BlobDType(name, code, bits, np.dtype(np_name)) for name, code, bits, np_name in rows}


BLOB_DTYPES: Mapping[str, BlobDType] = MappingProxyType(
    _dtypes(
        ("fp16", 1, 16, "<f2"),
        ("fp32", 2, 32, "<f4"),
        ("uint8", 3, 8, "u1"),
        ("int8", 4, 8, "i1"),
        ("bf16", 5, 16, "<u2"),
        ("int16", 6, 16, "<i2"),
        ("uint16", 7, 16, "<u2"),
        ("int4", 8, 4, "i1"),
        ("uint1", 9, 1, "u1"),
        ("uint2", 10, 2, "u1"),
        ("uint4", 11, 4, "u1"),
        ("uint3", 12, 3, "u1"),
        ("uint6", 13, 6, "u1"),
        ("int32", 14, 32, "<i4"),
        ("uint32", 15, 32, "<u4"),
        ("fp8e4m3fn", 16, 8, "u1"),
        ("fp8e5m2", 17, 8, "u1"),
    )
)
_BY_CODE = {d.code: d for d in BLOB_DTYPES.values()}

# Types numpy cannot compute with: stored and read back as raw bits. The value is the dtype's name
# in torch and in ml_dtypes, used to recognise tensors / arrays of that type.
RAW_BIT_TYPES: Mapping[str, str] = MappingProxyType(
    {"bf16": "bfloat16", "fp8e4m3fn": "float8_e4m3fn", "fp8e5m2": "float8_e5m2"}
)

# numpy dtype name -> our name, for inferring the blob type of an array.
_FROM_NUMPY = {
    "float16": "fp16",
    "float32": "fp32",
    "uint8": "uint8",
    "int8": "int8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "uint32": "uint32",
    **{numpy_name: name for name, numpy_name in RAW_BIT_TYPES.items()},
}


def blob_dtype(name: str) -> BlobDType:
    """The BlobDType called `name`; raises BlobError for names the blob format cannot store."""
    try:
        return BLOB_DTYPES[name]
    except KeyError:
        raise BlobError(f"unknown blob dtype {name!r}; expected one of {sorted(BLOB_DTYPES)}") from None


def _align(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


# ------------------------------------------------------------------------------------- writer ---


class BlobWriter:
    """Appends tensors to a new blob file, one at a time.

    The header's blob count is rewritten after every append, so the file is valid after each
    `write`. Deduplicating identical tensors is the caller's job.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = open(self.path, "wb")
        self._file.write(_HEADER.pack(0, BLOB_VERSION, *(0,) * 7))
        self._end = ALIGNMENT
        self._count = 0
        # Digest of every byte after the header, kept as we go so callers that need a content hash
        # (the package writer's manifest identifiers) never re-read a multi-gigabyte file.
        self._digest = hashlib.sha256()
        self._hasher: ThreadPoolExecutor | None = None

    @property
    def count(self) -> int:
        """Number of blobs written so far."""
        return self._count

    @property
    def digest(self) -> str:
        """Hex SHA-256 of the blobs written so far (records and payloads, not the header)."""
        return self._digest.hexdigest()

    def write(self, data, dtype: str | None = None) -> int:
        """Append one tensor and return the offset of its metadata record.

        `data` is a numpy array (or anything `np.asarray` accepts) or a torch tensor. `dtype` may be
        omitted when it follows from the data's own dtype. bf16 / fp8 data may also be given as raw
        bits in a uint16 / uint8 array; sub-byte types take integer arrays of in-range values.
        """
        if self._file.closed:
            raise BlobError(f"{self.path}: cannot write, the blob writer is closed")
        kind, payload, padding = _encode(data, dtype)
        record_offset = _align(self._end)
        gap = bytes(record_offset - self._end)
        record = _RECORD.pack(SENTINEL, kind.code, payload.nbytes, record_offset + ALIGNMENT, padding, 0, 0, 0, 0)
        pieces = (gap, record, payload)
        # The digest goes into a copy, kept only once the bytes are out. A large payload is hashed on a
        # helper thread while it is written: both release the GIL, so hashing hides behind the disk.
        digest = self._digest.copy()
        hashing = None
        if payload.nbytes >= _THREADED_HASH_BYTES:
            if self._hasher is None:
                self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-digest")
            hashing = self._hasher.submit(_update_all, digest, pieces)
        try:
            self._file.seek(self._end)
            for piece in pieces:
                self._file.write(piece)
        finally:
            if hashing is not None:
                hashing.result()  # also on failure: the thread must be done with the data
        if hashing is None:
            _update_all(digest, pieces)
        # Only count the blob once all its bytes are out; a failed write leaves the header valid.
        self._end = record_offset + ALIGNMENT + payload.nbytes
        self._digest = digest
        self._count += 1
        self._file.seek(0)
        self._file.write(struct.pack("<I", self._count))
        logger.debug("blob %d: %s, %d bytes at record offset %d", self._count - 1, kind.name,
                     payload.nbytes, record_offset)
        return record_offset

    def close(self) -> None:
        if not self._file.closed:
            self._file.truncate(self._end)  # drops the tail of a write that failed half-way
            self._file.close()
        if self._hasher is not None:
            self._hasher.shutdown()
            self._hasher = None

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _update_all(digest, pieces: tuple) -> None:
    for piece in pieces:
        digest.update(piece)


def _encode(data, dtype: str | None) -> tuple[BlobDType, np.ndarray, int]:
    """(blob type, payload as a flat uint8 array, padding bits) for one tensor."""
    array, inferred = _as_numpy(data)
    name = dtype if dtype is not None else inferred
    if name is None:
        raise BlobError(f"cannot store an array of {array.dtype} in a blob; pass dtype= explicitly")
    kind = blob_dtype(name)

    if kind.is_subbyte:
        if array.dtype.kind not in "biu":
            raise BlobError(f"{name} blob data must be an integer array, got {array.dtype}")
        packed = subbyte.pack(array, name)
        _, padding = subbyte.packed_size(name, array.size)
        return kind, np.frombuffer(packed, dtype=np.uint8), padding

    if name in RAW_BIT_TYPES:
        raw_ok = array.dtype.kind in "iu" and array.dtype.itemsize == kind.bits // 8
        if inferred != name and not raw_ok:
            raise BlobError(
                f"{name} blob data must be a {RAW_BIT_TYPES[name]} tensor or raw bits as "
                f"{kind.numpy_dtype}, got {array.dtype}"
            )
        array = array.view(kind.numpy_dtype.newbyteorder("="))
    elif inferred != name:
        raise BlobError(f"{name} blob data must be an array of {kind.numpy_dtype}, got {array.dtype}")

    little = np.ascontiguousarray(array, dtype=kind.numpy_dtype)
    return kind, little.reshape(-1).view(np.uint8), 0


def _as_numpy(data) -> tuple[np.ndarray, str | None]:
    """The data as a numpy array, plus the blob type its own dtype implies (None if none does)."""
    if type(data).__module__.split(".")[0] == "torch":
        return _torch_as_numpy(data)
    array = np.asarray(data)
    return array, _FROM_NUMPY.get(array.dtype.name)


def _torch_as_numpy(tensor) -> tuple[np.ndarray, str | None]:
    import torch  # only callers that pass tensors pay for importing torch

    tensor = tensor.detach().cpu().contiguous()
    torch_name = str(tensor.dtype).removeprefix("torch.")
    for name, raw_name in RAW_BIT_TYPES.items():
        if torch_name == raw_name:
            raw = torch.int16 if tensor.element_size() == 2 else torch.uint8
            return tensor.view(raw).numpy(), name
    array = tensor.numpy()
    return array, _FROM_NUMPY.get(array.dtype.name)


# ------------------------------------------------------------------------------------- reader ---


@dataclass(frozen=True)
class BlobRecord:
    """One blob's metadata as found in the file."""

    offset: int  # of the metadata record: what BlobFileValue.offset holds
    dtype: str
    size_in_bytes: int
    data_offset: int
    padding_bits: int

    @property
    def count(self) -> int:
        """Number of elements stored."""
        bits = BLOB_DTYPES[self.dtype].bits
        return (self.size_in_bytes * 8 - self.padding_bits) // bits


class BlobReader:
    """Reads a blob file through a read-only memory map, validating its whole structure on open.

    `read` returns numpy views into the map for byte-sized types (so they are read-only and cost no
    copy) and freshly unpacked arrays for sub-byte types. bf16 / fp8 come back as their raw bits
    (uint16 / uint8); `read_torch` returns them as real torch tensors.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
        except OSError as exc:
            raise BlobError(f"{self.path}: cannot open weight blob: {exc}") from exc
        if size < ALIGNMENT:
            raise BlobError(f"{self.path}: expected at least a {ALIGNMENT}-byte header, file has {size} bytes")
        self._size = size
        self._bytes = np.asarray(np.memmap(self.path, dtype=np.uint8, mode="r"))
        count, version = struct.unpack_from("<II", self._bytes, 0)
        if version != BLOB_VERSION:
            raise BlobError(f"{self.path}: expected blob storage version {BLOB_VERSION}, found {version}")
        self._records = MappingProxyType(self._walk(count))

    @property
    def records(self) -> Mapping[int, BlobRecord]:
        """Every blob in file order, keyed by record offset."""
        return self._records

    def __len__(self) -> int:
        return len(self._records)

    def record(self, offset: int) -> BlobRecord:
        """The record at `offset`; raises BlobError naming what is there instead."""
        if self._bytes is None:
            raise BlobError(f"{self.path}: cannot read, the blob reader is closed")
        found = self._records.get(offset)
        if found is not None:
            return found
        if offset % ALIGNMENT:
            problem = f"offset is not a multiple of {ALIGNMENT}"
        elif offset < ALIGNMENT:
            problem = "offset points into the file header"
        elif offset >= self._size:
            problem = f"offset is outside the file ({self._size} bytes)"
        else:
            problem = "no blob record starts there"
        starts = ", ".join(str(o) for o in list(self._records)[:8]) or "none"
        raise BlobError(f"{self.path}: no blob at offset {offset}: {problem} (records start at: {starts})")

    def read(self, offset: int, expected_dtype: str | None = None, shape=None) -> np.ndarray:
        """The tensor whose record is at `offset`, reshaped to `shape` (flat if None).

        Raises BlobError if the stored dtype is not `expected_dtype` or the element count does not
        match `shape`.
        """
        rec = self.record(offset)
        if expected_dtype is not None and rec.dtype != expected_dtype:
            raise BlobError(f"{self.path}: blob at offset {offset}: expected dtype {expected_dtype}, found {rec.dtype}")
        count = rec.count
        target = (count,) if shape is None else tuple(int(d) for d in shape)
        if shape is not None and int(np.prod(target, dtype=np.int64)) != count:
            raise BlobError(
                f"{self.path}: blob at offset {offset}: expected shape {list(target)}, "
                f"found {count} {rec.dtype} elements"
            )
        payload = self._bytes[rec.data_offset : rec.data_offset + rec.size_in_bytes]
        if BLOB_DTYPES[rec.dtype].is_subbyte:
            return subbyte.unpack(payload, rec.dtype, count).reshape(target)
        return payload.view(BLOB_DTYPES[rec.dtype].numpy_dtype).reshape(target)

    def read_torch(self, offset: int, expected_dtype: str | None = None, shape=None):
        """Like `read`, but a torch tensor (a copy), with bf16 / fp8 as their real torch dtypes."""
        import torch  # only callers that want tensors pay for importing torch

        array = self.read(offset, expected_dtype, shape)
        dtype = self._records[offset].dtype
        if dtype in RAW_BIT_TYPES:
            # torch has no uint16 view for bf16 in every version; int16 carries the same bits.
            raw = array.view(np.int16) if array.dtype.itemsize == 2 else array
            return torch.from_numpy(raw.copy()).view(getattr(torch, RAW_BIT_TYPES[dtype]))
        return torch.from_numpy(array.copy())

    def close(self) -> None:
        """Drop this reader's map; arrays already returned keep their own reference to it."""
        self._bytes = None

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _walk(self, count: int) -> dict[int, BlobRecord]:
        records: dict[int, BlobRecord] = {}
        position = ALIGNMENT
        for index in range(count):
            if position + ALIGNMENT > self._size:
                raise BlobError(
                    f"{self.path}: header declares {count} blobs, but the file ({self._size} bytes) ends "
                    f"before the metadata record of blob {index} at offset {position}"
                )
            rec = self._parse_record(position)
            records[position] = rec
            position = _align(rec.data_offset + rec.size_in_bytes)
        end = max((r.data_offset + r.size_in_bytes for r in records.values()), default=ALIGNMENT)
        if end < self._size:
            logger.debug("%s: %d bytes after the last blob are ignored", self.path, self._size - end)
        return records

    def _parse_record(self, offset: int) -> BlobRecord:
        sentinel, code, size, data_offset, padding, *_ = _RECORD.unpack_from(self._bytes, offset)
        where = f"{self.path}: blob record at offset {offset}"
        if sentinel != SENTINEL:
            raise BlobError(f"{where}: expected sentinel 0x{SENTINEL:08X}, found 0x{sentinel:08X}")
        kind = _BY_CODE.get(code)
        if kind is None:
            raise BlobError(f"{where}: expected a dtype code in {sorted(_BY_CODE)}, found {code}")
        if data_offset != offset + ALIGNMENT:
            raise BlobError(f"{where}: expected the payload at offset {offset + ALIGNMENT}, found {data_offset}")
        if data_offset + size > self._size:
            raise BlobError(
                f"{where}: {size}-byte payload at {data_offset} runs past the end of the file ({self._size} bytes)"
            )
        _check_payload_size(where, kind, size, padding)
        return BlobRecord(offset, kind.name, size, data_offset, padding)


def _check_payload_size(where: str, kind: BlobDType, size: int, padding: int) -> None:
    """Size and padding must describe a whole number of elements, with no slack."""
    if not kind.is_subbyte:
        if padding:
            raise BlobError(f"{where}: expected 0 padding bits for {kind.name}, found {padding}")
        if size % (kind.bits // 8):
            raise BlobError(f"{where}: {size} bytes is not a whole number of {kind.name} elements")
        return
    if padding >= 8 or (size == 0 and padding):
        raise BlobError(f"{where}: expected fewer than 8 padding bits inside a {size}-byte payload, found {padding}")
    if (size * 8 - padding) % kind.bits or (kind.bits in (1, 2, 4) and padding % kind.bits):
        raise BlobError(
            f"{where}: {size} bytes minus {padding} padding bits is not a whole number of {kind.bits}-bit "
            f"{kind.name} elements"
        )
