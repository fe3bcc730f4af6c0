"""Weight blob writer and reader: exact layout, round trips for every dtype, and hostile files."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from torch_coreml.errors import BlobError, TorchCoreMLError
from torch_coreml.format import subbyte
from torch_coreml.format.blob import BLOB_DTYPES, RAW_BIT_TYPES, BlobReader, BlobWriter

BYTE_ALIGNED = {name: d.numpy_dtype for name, d in BLOB_DTYPES.items() if not d.is_subbyte}


def write_blobs(path: Path, *tensors) -> list[int]:
    """Write (data, dtype) pairs; returns their record offsets."""
    with BlobWriter(path) as writer:
        return [writer.write(data, dtype) for data, dtype in tensors]


def raw_bits(array: np.ndarray) -> np.ndarray:
    """Compare floats by bit pattern so NaNs and signed zeros count too."""
    if array.dtype.kind == "f":
        return array.view(f"u{array.dtype.itemsize}")
    return array


# ------------------------------------------------------------------------------- exact layout ---


def test_one_fp16_tensor_layout(tmp_path):
    """FORMAT.md 5.4: one fp16 [3, 4] tensor gives a 152-byte file."""
    path = tmp_path / "weight.bin"
    values = np.arange(12, dtype=np.float16).reshape(3, 4)
    assert write_blobs(path, (values, None)) == [64]
    data = path.read_bytes()
    assert len(data) == 152
    assert struct.unpack_from("<II", data, 0) == (1, 2)
    assert data[8:64] == bytes(56)
    assert data[64:68] == bytes.fromhex("efbeadde")
    assert struct.unpack_from("<IQQQ", data, 68) == (1, 24, 128, 0)
    assert data[96:128] == bytes(32)
    assert data[128:] == values.tobytes()


def test_alignment_gaps_are_zero_and_no_trailing_padding(tmp_path):
    path = tmp_path / "weight.bin"
    offsets = write_blobs(path, (np.ones(3, np.float32), None), (np.ones(1, np.int8), None), (np.ones(2, np.uint16), None))
    assert offsets == [64, 192, 320]
    data = path.read_bytes()
    assert data[140:192] == bytes(52)  # after 12 payload bytes at 128
    assert data[257:320] == bytes(63)
    assert len(data) == 320 + 64 + 4
    assert struct.unpack_from("<I", data, 0) == (3,)


def test_subbyte_record_has_padding_bits(tmp_path):
    path = tmp_path / "weight.bin"
    write_blobs(path, (np.array([1, -2, 3, -8, 7]), "int4"))
    data = path.read_bytes()
    assert struct.unpack_from("<IIQQQ", data, 64) == (0xDEADBEEF, 8, 3, 128, 4)
    assert data[128:] == bytes.fromhex("e18307")


def test_header_count_is_valid_after_every_write(tmp_path):
    path = tmp_path / "weight.bin"
    with BlobWriter(path) as writer:
        for expected in range(1, 4):
            writer.write(np.zeros(5, np.float32))
            writer._file.flush()
            assert len(BlobReader(path)) == expected == writer.count


# -------------------------------------------------------------------------------- round trips ---


def subbyte_arrays(dtype: str):
    low, high = subbyte.value_range(dtype)
    return hnp.arrays(np.int16, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7),
                      elements=st.integers(low, high))


def byte_aligned_arrays(dtype: str):
    # bf16 / fp8 are drawn as raw uint16 / uint8 bits: every bit pattern must survive.
    return hnp.arrays(BYTE_ALIGNED[dtype], hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7))


def tensors():
    return st.sampled_from(sorted(BLOB_DTYPES)).flatmap(
        lambda name: st.tuples(subbyte_arrays(name) if BLOB_DTYPES[name].is_subbyte else byte_aligned_arrays(name),
                               st.just(name))
    )


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tensors(), min_size=1, max_size=4))
def test_round_trip_any_dtype_and_shape(items):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "weight.bin"
        offsets = write_blobs(path, *items)
        with BlobReader(path) as reader:
            assert list(reader.records) == offsets
            for offset, (array, dtype) in zip(offsets, items):
                got = reader.read(offset, expected_dtype=dtype, shape=array.shape)
                assert got.shape == array.shape
                assert got.dtype == BLOB_DTYPES[dtype].numpy_dtype
                np.testing.assert_array_equal(raw_bits(got), raw_bits(array.astype(got.dtype)))


@pytest.mark.parametrize("name", sorted(BLOB_DTYPES))
def test_every_dtype_by_name(tmp_path, name):
    kind = BLOB_DTYPES[name]
    if kind.is_subbyte:
        low, high = subbyte.value_range(name)
        values = np.arange(low, high + 1).reshape(1, -1)
    else:
        values = np.arange(24).astype(kind.numpy_dtype).reshape(2, 3, 4)
    (offset,) = write_blobs(tmp_path / "w.bin", (values, name))
    record = BlobReader(tmp_path / "w.bin").records[offset]
    assert (record.dtype, record.count, record.data_offset) == (name, values.size, offset + 64)
    np.testing.assert_array_equal(BlobReader(tmp_path / "w.bin").read(offset, name, values.shape), values)


def test_read_returns_read_only_views(tmp_path):
    (offset,) = write_blobs(tmp_path / "w.bin", (np.ones(16, np.float32), None))
    array = BlobReader(tmp_path / "w.bin").read(offset)
    assert not array.flags.writeable
    assert type(array) is np.ndarray


def test_arrays_outlive_a_closed_reader(tmp_path):
    (offset,) = write_blobs(tmp_path / "w.bin", (np.arange(4, dtype=np.int32), None))
    with BlobReader(tmp_path / "w.bin") as reader:
        array = reader.read(offset)
    assert array.tolist() == [0, 1, 2, 3]
    with pytest.raises(BlobError, match="closed"):
        reader.read(offset)


def test_big_endian_input_is_stored_little_endian(tmp_path):
    (offset,) = write_blobs(tmp_path / "w.bin", (np.array([1.5, -2.0], dtype=">f4"), None))
    assert BlobReader(tmp_path / "w.bin").read(offset).tolist() == [1.5, -2.0]
    assert (tmp_path / "w.bin").read_bytes()[128:] == np.array([1.5, -2.0], "<f4").tobytes()


@pytest.mark.parametrize("name", sorted(RAW_BIT_TYPES))
def test_torch_raw_bit_types(tmp_path, name):
    import torch
    tensor = torch.linspace(-3, 3, 12).reshape(3, 4).to(getattr(torch, RAW_BIT_TYPES[name]))
    (offset,) = write_blobs(tmp_path / "w.bin", (tensor, None))
    reader = BlobReader(tmp_path / "w.bin")
    bits = reader.read(offset, name, (3, 4))
    width = torch.int16 if name == "bf16" else torch.uint8
    np.testing.assert_array_equal(bits.view(np.int16) if name == "bf16" else bits, tensor.view(width).numpy())
    back = reader.read_torch(offset, name, (3, 4))
    assert back.dtype == tensor.dtype
    assert torch.equal(back.view(width), tensor.view(width))


def test_torch_ordinary_dtypes(tmp_path):
    import torch
    tensor = torch.arange(10, dtype=torch.float16)
    (offset,) = write_blobs(tmp_path / "w.bin", (tensor[::2], None))  # non-contiguous view
    got = BlobReader(tmp_path / "w.bin").read_torch(offset, "fp16")
    assert torch.equal(got, tensor[::2])


def test_empty_tensor(tmp_path):
    offsets = write_blobs(tmp_path / "w.bin", (np.zeros((0, 3), np.float32), None), (np.ones(2, np.int8), None))
    reader = BlobReader(tmp_path / "w.bin")
    assert offsets == [64, 128]
    assert reader.read(64, shape=(0, 3)).shape == (0, 3)
    assert reader.read(128).tolist() == [1, 1]


# ------------------------------------------------------------------------------ writer errors ---


@pytest.mark.parametrize(
    "data, dtype, message",
    [
        (np.zeros(3), None, "cannot store an array of float64"),
        (np.zeros(3, np.float32), "fp16", "fp16 blob data must be an array of float16, got float32"),
        (np.zeros(3, np.float32), "int4", "int4 blob data must be an integer array"),
        (np.array([16]), "uint4", "value 16 does not fit uint4"),
        (np.zeros(3, np.uint8), "bf16", "bf16 blob data must be a bfloat16 tensor or raw bits"),
        (np.zeros(3, np.int8), "int64", "unknown blob dtype 'int64'"),
    ],
)
def test_writer_refuses_mismatched_data(tmp_path, data, dtype, message):
    with BlobWriter(tmp_path / "w.bin") as writer:
        with pytest.raises(BlobError, match=message):
            writer.write(data, dtype)
        assert writer.count == 0


def test_writer_refuses_writes_after_close(tmp_path):
    writer = BlobWriter(tmp_path / "w.bin")
    writer.close()
    with pytest.raises(BlobError, match="closed"):
        writer.write(np.zeros(1, np.float32))


# ------------------------------------------------------------------------------ reader errors ---


@pytest.fixture
def valid_file(tmp_path) -> Path:
    """Blobs at 64 (fp32 x3), 192 (uint3 x5), 320 (int8 x4)."""
    path = tmp_path / "weight.bin"
    write_blobs(path, (np.ones(3, np.float32), None), (np.arange(5), "uint3"), (np.arange(4, dtype=np.int8), None))
    return path


def patch(path: Path, offset: int, fmt: str, *values) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "offset, fmt, value, message",
    [
        (4, "<I", 3, "expected blob storage version 2, found 3"),
        (0, "<I", 4, "header declares 4 blobs, but the file .* ends before the metadata record of blob 3"),
        (0, "<I", 0xFFFFFFFF, "header declares 4294967295 blobs"),
        (192, "<I", 0xDEADBEEE, "blob record at offset 192: expected sentinel 0xDEADBEEF, found 0xDEADBEEE"),
        (196, "<I", 99, "blob record at offset 192: expected a dtype code in .*, found 99"),
        (200, "<Q", 1 << 62, "payload at 256 runs past the end of the file"),
        (208, "<Q", 1 << 63, "expected the payload at offset 256, found 9223372036854775808"),
        (80, "<Q", 0, "expected the payload at offset 128, found 0"),
        (88, "<Q", 8, "expected 0 padding bits for fp32, found 8"),
        (72, "<Q", 11, "11 bytes is not a whole number of fp32 elements"),
        (216, "<Q", 8, "expected fewer than 8 padding bits"),
        (200, "<Q", 1, "1 bytes minus 1 padding bits is not a whole number of 3-bit uint3"),
    ],
)
def test_corrupt_fields(valid_file, offset, fmt, value, message):
    patch(valid_file, offset, fmt, value)
    with pytest.raises(BlobError, match=message):
        BlobReader(valid_file)


@pytest.mark.parametrize("length", [0, 10, 63, 64, 100, 127, 139, 200, 255, 323])
def test_truncated_file(valid_file, length):
    valid_file.write_bytes(valid_file.read_bytes()[:length])
    with pytest.raises(BlobError):
        BlobReader(valid_file)


def test_missing_file(tmp_path):
    with pytest.raises(BlobError, match="cannot open weight blob"):
        BlobReader(tmp_path / "absent.bin")


@pytest.mark.parametrize(
    "offset, message",
    [(65, "not a multiple of 64"), (0, "into the file header"), (1 << 40, "outside the file"), (128, "no blob record starts")],
)
def test_read_at_a_wrong_offset(valid_file, offset, message):
    with pytest.raises(BlobError, match=f"no blob at offset {offset}: .*{message}.*records start at: 64, 192, 320"):
        BlobReader(valid_file).read(offset)


def test_read_checks_expected_dtype_and_shape(valid_file):
    reader = BlobReader(valid_file)
    with pytest.raises(BlobError, match="offset 192: expected dtype uint4, found uint3"):
        reader.read(192, "uint4")
    with pytest.raises(BlobError, match=r"offset 64: expected shape \[2, 2\], found 3 fp32 elements"):
        reader.read(64, "fp32", (2, 2))
    np.testing.assert_array_equal(reader.read(192, "uint3"), np.arange(5))


@settings(max_examples=100, deadline=None, database=None)
@given(st.data())
def test_random_corruption_never_escapes_blob_error(data):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "weight.bin"
        write_blobs(path, (np.ones(3, np.float32), None), (np.arange(5), "uint3"), (np.arange(4, dtype=np.int8), None))
        content = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
        content = content[: data.draw(st.integers(0, len(content)))]
        path.write_bytes(bytes(content))
        try:
            reader = BlobReader(path)
            for offset in reader.records:
                reader.read(offset)
        except TorchCoreMLError:
            pass
