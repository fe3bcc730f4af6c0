"""Type conversions: `_to_copy` (every `.to(dtype)`, `.float()`, `type_as`) and the metadata assertion
torch.export records next to a conversion. (`scalar_tensor` is a creation op, in creation.py.)

A program computes in fp16/fp32, int32 and bool (see `LoweringContext.mil_dtype`), so a conversion is
one `cast` between those. A conversion to a narrower integer type must still wrap out-of-range values
the way torch does (300 -> uint8 is 44), so it is followed by a modular wrap on the int32 value.
"""

from __future__ import annotations

import torch

from ...mil import dtypes as dt
from ..registry import lowering
from .elementwise import binary

aten = torch.ops.aten

# Integer types held as int32 inside a program: (modulus, offset) of the wrap into their range.
_NARROW_INTS = {
    torch.uint8: (1 << 8, 0),
    torch.int8: (1 << 8, 1 << 7),
    torch.uint16: (1 << 16, 0),
    torch.int16: (1 << 16, 1 << 15),
}


@lowering(aten._to_copy.default)
def to_copy(ctx, self, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
            memory_format=None):
    """_to_copy(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None,
    bool? pin_memory=None, bool non_blocking=False, MemoryFormat? memory_format=None) -> Tensor"""
    # Device, pinning, blocking and memory format mean nothing to a Core ML program; a copy is a value.
    if layout not in (None, torch.strided):
        raise ctx.unsupported(f"conversion to layout {layout}")
    if dtype is None:
        return self
    converted = ctx.cast(self, ctx.mil_dtype(dtype))
    if dtype == torch.float16 and converted.dtype is dt.fp32:
        # An fp32 program keeps the type but must still lose what torch's rounding to fp16 loses.
        converted = ctx.cast(ctx.cast(converted, dt.fp16), dt.fp32)
    if dtype in _NARROW_INTS and self.dtype is not dt.bool_:
        modulus, offset = _NARROW_INTS[dtype]
        # (v + offset) mod 2^bits - offset: two's-complement wrap; `mod` rounds toward -inf, as needed.
        shifted = binary(ctx, "add", converted, offset) if offset else converted
        wrapped = binary(ctx, "mod", shifted, modulus)
        converted = binary(ctx, "sub", wrapped, offset) if offset else wrapped
    return converted


@lowering(aten._assert_tensor_metadata.default)
def assert_tensor_metadata(ctx, a, size=None, stride=None, dtype=None, device=None, layout=None):
    """_assert_tensor_metadata(Tensor a, SymInt[]? size=None, SymInt[]? stride=None,
    ScalarType? dtype=None, *, Device? device=None, Layout? layout=None) -> ()"""
    # torch.export checked the metadata while tracing; the program has nothing left to check.
    return None
