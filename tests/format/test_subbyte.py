"""Sub-byte packing: the exact bytes from FORMAT.md section 5.5, round trips and range checks."""

import numpy as np
import pytest

from torch_coreml.errors import BlobError
from torch_coreml.format import subbyte

# (dtype, values, packed bytes, padding bits), as verified against coremltools' writer.
FORMAT_EXAMPLES = [
    ("int4", [1, -2, 3, -8, 7], "e18307", 4),
    ("uint3", [1, 2, 3, 4, 5, 6, 7], "d1581f", 3),
    ("uint6", [1, 63, 5], "c15f00", 6),
    ("uint2", [0, 1, 2, 3, 1], "e401", 6),
    ("uint1", [1, 0, 1, 1, 0, 0, 0, 0, 1], "0d01", 7),
    ("uint4", [1, 15, 3], "f103", 4),
]


@pytest.mark.parametrize("dtype, values, packed, padding", FORMAT_EXAMPLES)
def test_format_examples(dtype, values, packed, padding):
    assert subbyte.pack(np.array(values), dtype).hex() == packed
    assert subbyte.packed_size(dtype, len(values)) == (len(packed) // 2, padding)
    assert subbyte.unpack(bytes.fromhex(packed), dtype, len(values)).tolist() == values


@pytest.mark.parametrize("dtype", sorted(subbyte.SUBBYTE_TYPES))
@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 33])
def test_round_trip_every_length(dtype, count):
    low, high = subbyte.value_range(dtype)
    values = np.random.default_rng(count).integers(low, high + 1, size=count)
    packed = subbyte.pack(values, dtype)
    assert len(packed) == subbyte.packed_size(dtype, count)[0]
    unpacked = subbyte.unpack(packed, dtype, count)
    assert unpacked.dtype == (np.int8 if dtype == "int4" else np.uint8)
    np.testing.assert_array_equal(unpacked, values)


@pytest.mark.parametrize("dtype", sorted(subbyte.SUBBYTE_TYPES))
def test_padding_bits_are_zero(dtype):
    _, high = subbyte.value_range(dtype)
    bits, _ = subbyte.SUBBYTE_TYPES[dtype]
    packed = subbyte.pack(np.full(5, -1 if dtype == "int4" else high), dtype)
    used_bits_in_last_byte = (5 * bits) % 8 or 8
    assert packed[-1] >> used_bits_in_last_byte == 0


@pytest.mark.parametrize("dtype, bad", [("int4", 8), ("int4", -9), ("uint1", 2), ("uint3", 8), ("uint6", -1)])
def test_out_of_range_values_are_refused(dtype, bad):
    with pytest.raises(BlobError, match=f"value {bad} does not fit {dtype}"):
        subbyte.pack(np.array([0, bad]), dtype)


def test_non_integer_input_is_refused():
    with pytest.raises(BlobError, match="must be integers"):
        subbyte.pack(np.array([0.5]), "uint4")


def test_unpack_refuses_short_data():
    with pytest.raises(BlobError, match="need 2 packed bytes, found 1"):
        subbyte.unpack(b"\x00", "uint4", 3)


def test_unknown_type_is_refused():
    with pytest.raises(BlobError, match="not a sub-byte type"):
        subbyte.pack(np.array([1]), "int8")


@pytest.mark.parametrize("dtype", ["uint3", "int4", "uint6"])
def test_chunk_boundaries(dtype, monkeypatch):
    monkeypatch.setattr(subbyte, "_CHUNK", 8)  # still a multiple of every group size
    low, high = subbyte.value_range(dtype)
    values = np.random.default_rng(0).integers(low, high + 1, size=37)
    packed = subbyte.pack(values, dtype)
    monkeypatch.undo()
    assert packed == subbyte.pack(values, dtype)
    np.testing.assert_array_equal(subbyte.unpack(packed, dtype, values.size), values)
