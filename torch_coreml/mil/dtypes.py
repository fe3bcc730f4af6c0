"""MIL element types.

Each `DType` carries the three spellings the project needs: the short MIL name used in text and in
`cast(dtype=...)`, the MIL proto `DataType` number, and how values are held in numpy and torch.

Storage rules (one place, so every layer agrees):
- numpy holds every const value. Types numpy lacks are held as their raw bit pattern: bf16 as uint16,
  fp8 as uint8. Sub-byte integers are held unpacked, one element per int8/uint8.
- deferred fp16: a const of type fp16 may hold its data as fp32 (the model's own weights, shared with
  the torch module, instead of a converted copy). Every reader therefore converts with
  `np.asarray(value, dtype=t.dtype.numpy)` or `numpy_to_torch`; the weight writer converts one tensor
  at a time, so conversion never holds a second full copy of the model.
- torch holds every runtime value. torch has bf16 and fp8 natively; sub-byte integers widen to int8/uint8
  and unsigned 16/32-bit integers to int32/int64, because torch's unsigned kernels are sparse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DType:
    name: str
    proto: int  # MIL.proto DataType enum value
    bits: int
    kind: str  # "float", "int", "uint", "bool", "string"
    numpy: np.dtype | None  # storage dtype of const values
    torch: torch.dtype | None  # dtype of runtime values

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        return self.kind in ("int", "uint")

    @property
    def is_sub_byte(self) -> bool:
        return self.kind in ("int", "uint") and self.bits < 8

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


def _d(name, proto, bits, kind, np_dtype, torch_dtype):
    return DType(name, proto, bits, kind, np.dtype(np_dtype) if np_dtype else None, torch_dtype)


bool_ = _d("bool", 1, 8, "bool", np.bool_, torch.bool)
string = _d("string", 2, 0, "string", np.object_, None)
fp16 = _d("fp16", 10, 16, "float", np.float16, torch.float16)
fp32 = _d("fp32", 11, 32, "float", np.float32, torch.float32)
fp64 = _d("fp64", 12, 64, "float", np.float64, torch.float64)
bf16 = _d("bf16", 13, 16, "float", np.uint16, torch.bfloat16)
int8 = _d("int8", 21, 8, "int", np.int8, torch.int8)
int16 = _d("int16", 22, 16, "int", np.int16, torch.int16)
int32 = _d("int32", 23, 32, "int", np.int32, torch.int32)
int64 = _d("int64", 24, 64, "int", np.int64, torch.int64)
int4 = _d("int4", 25, 4, "int", np.int8, torch.int8)
fp8e4m3fn = _d("fp8e4m3fn", 40, 8, "float", np.uint8, torch.float8_e4m3fn)
fp8e5m2 = _d("fp8e5m2", 41, 8, "float", np.uint8, torch.float8_e5m2)
uint8 = _d("uint8", 31, 8, "uint", np.uint8, torch.uint8)
uint16 = _d("uint16", 32, 16, "uint", np.uint16, torch.int32)
uint32 = _d("uint32", 33, 32, "uint", np.uint32, torch.int64)
uint64 = _d("uint64", 34, 64, "uint", np.uint64, torch.int64)
uint4 = _d("uint4", 35, 4, "uint", np.uint8, torch.uint8)
uint2 = _d("uint2", 36, 2, "uint", np.uint8, torch.uint8)
uint1 = _d("uint1", 37, 1, "uint", np.uint8, torch.uint8)
uint6 = _d("uint6", 38, 6, "uint", np.uint8, torch.uint8)
uint3 = _d("uint3", 39, 3, "uint", np.uint8, torch.uint8)

ALL: tuple[DType, ...] = (
    bool_, string, fp16, fp32, fp64, bf16, int8, int16, int32, int64, int4, fp8e4m3fn, fp8e5m2,
    uint8, uint16, uint32, uint64, uint4, uint2, uint1, uint6, uint3,
)
BY_NAME: dict[str, DType] = {d.name: d for d in ALL}
BY_PROTO: dict[int, DType] = {d.proto: d for d in ALL}

# Type domains used by the op catalogue.
FLOATS = (fp16, fp32)
INTS = (int32,)
# iOS17 widened many ops to the 8/16-bit integer types.
INTS_IOS17 = (int8, uint8, int16, uint16, int32)
NUMERIC = FLOATS + INTS
ALL_TENSOR = FLOATS + INTS + (bool_,)

_TORCH_TO_MIL = {
    torch.float16: fp16, torch.float32: fp32, torch.float64: fp64, torch.bfloat16: bf16,
    torch.int8: int8, torch.int16: int16, torch.int32: int32, torch.int64: int64,
    torch.uint8: uint8, torch.bool: bool_,
    torch.float8_e4m3fn: fp8e4m3fn, torch.float8_e5m2: fp8e5m2,
}


def from_name(name: str) -> DType:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown MIL dtype {name!r}; expected one of {sorted(BY_NAME)}") from None


def from_torch(dtype: torch.dtype) -> DType:
    try:
        return _TORCH_TO_MIL[dtype]
    except KeyError:
        raise ValueError(f"torch dtype {dtype} has no MIL equivalent") from None


def from_numpy(dtype) -> DType:
    """The MIL type of a numpy array (raw-bit storage types are ambiguous and map to their ints)."""
    dtype = np.dtype(dtype)
    if dtype.kind in ("U", "S", "O"):
        return string
    for d in (bool_, fp16, fp32, fp64, int8, int16, int32, int64, uint8, uint16, uint32, uint64):
        if d.numpy == dtype:
            return d
    raise ValueError(f"numpy dtype {dtype} has no MIL equivalent")


def numpy_to_torch(array: np.ndarray, dtype: DType) -> torch.Tensor:
    """Turn a stored const value into the runtime tensor of MIL type `dtype`."""
    array = np.array(array, copy=True, order="C")  # keeps rank 0 (ascontiguousarray makes it [1])
    if dtype in (bf16, fp8e4m3fn, fp8e5m2):
        raw = torch.from_numpy(array.view(np.int16 if dtype is bf16 else np.uint8).copy())
        return raw.view(dtype.torch)
    if dtype in (uint16, uint32, uint64):
        return torch.from_numpy(array.astype(np.int64)).to(dtype.torch)
    return torch.from_numpy(array).to(dtype.torch)


def torch_to_numpy(tensor: torch.Tensor, dtype: DType) -> np.ndarray:
    """Inverse of `numpy_to_torch`: the storage array for a runtime tensor."""
    tensor = tensor.detach().cpu().contiguous()
    if dtype in (bf16, fp8e4m3fn, fp8e5m2):
        return tensor.view(torch.int16 if dtype is bf16 else torch.uint8).numpy().view(dtype.numpy)
    return tensor.numpy().astype(dtype.numpy, copy=False)
