"""Our blob files and coremltools' (its C++ MIL blob storage) read each other, byte for byte."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from torch_coreml.format import subbyte
from torch_coreml.format.blob import BlobReader, BlobWriter

import coremltools.libmilstoragepython as storage

# our dtype name -> suffix of coremltools' write_<x>_data / read_<x>_data
CT_METHODS = {
    "fp16": "fp16", "fp32": "float", "uint8": "uint8", "int8": "int8", "int16": "int16",
    "uint16": "uint16", "int32": "int32", "uint32": "uint32", "int4": "int4", "uint1": "uint1",
    "uint2": "uint2", "uint3": "uint3", "uint4": "uint4", "uint6": "uint6",
}


def sample(name: str, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if subbyte.is_subbyte(name):
        low, high = subbyte.value_range(name)
        return rng.integers(low, high + 1, size=count).astype(np.int8 if low < 0 else np.uint8)
    if name in ("fp16", "fp32"):
        return rng.standard_normal(count).astype(np.float16 if name == "fp16" else np.float32)
    info = np.iinfo(np.dtype(name))
    return rng.integers(info.min, info.max, size=count, endpoint=True, dtype=np.dtype(name))


# Several lengths per dtype so that every sub-byte padding amount appears.
CASES = [(name, count) for name in CT_METHODS for count in (1, 5, 13, 64)]


def _ct_view(name: str, array: np.ndarray) -> np.ndarray:
    # coremltools moves fp16 as uint16 bit patterns.
    return array.view(np.uint16) if name == "fp16" else array


def test_coremltools_reads_our_file(tmp_path):
    path = tmp_path / "ours.bin"
    arrays = [sample(name, count, i) for i, (name, count) in enumerate(CASES)]
    with BlobWriter(path) as writer:
        offsets = [writer.write(array, name) for array, (name, _) in zip(arrays, CASES)]
    reader = storage._BlobStorageReader(str(path))
    for offset, array, (name, _) in zip(offsets, arrays, CASES):
        got = getattr(reader, f"read_{CT_METHODS[name]}_data")(offset)
        np.testing.assert_array_equal(got, _ct_view(name, array), err_msg=name)


def test_we_read_coremltools_file_and_write_the_same_bytes(tmp_path):
    theirs, ours = tmp_path / "theirs.bin", tmp_path / "ours.bin"
    arrays = [sample(name, count, i) for i, (name, count) in enumerate(CASES)]
    writer = storage._BlobStorageWriter(str(theirs))
    their_offsets = [getattr(writer, f"write_{CT_METHODS[name]}_data")(_ct_view(name, array))
                     for array, (name, _) in zip(arrays, CASES)]
    del writer
    gc.collect()  # the C++ writer flushes when destroyed

    reader = BlobReader(theirs)
    assert list(reader.records) == their_offsets
    for offset, array, (name, _) in zip(their_offsets, arrays, CASES):
        np.testing.assert_array_equal(reader.read(offset, name), array, err_msg=name)

    with BlobWriter(ours) as writer:
        our_offsets = [writer.write(array, name) for array, (name, _) in zip(arrays, CASES)]
    assert our_offsets == their_offsets
    assert ours.read_bytes() == theirs.read_bytes()
