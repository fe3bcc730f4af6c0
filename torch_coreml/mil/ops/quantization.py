"""Runtime affine quantization (iOS17): `quantize` (float -> 8-bit) and `dequantize` (8-bit -> float).

`scale` and `zero_point` are both scalars (per tensor, no `axis`) or both vectors along `axis` (per
channel), sized like that axis of the input.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType
from .constexpr import along_axis
from .infer import normalize_axis
from .spec import In, mil_op

_QUANTIZED = (dt.uint8, dt.int8)


def _check_params(ctx):
    scale = ctx.type("scale")
    zp = ctx.type("zero_point") if ctx.has("zero_point") else None
    if scale.rank == 0:
        if ctx.has("axis"):
            raise ctx.error("input 'axis' must be absent when 'scale' is a scalar")
        if zp is not None and zp.rank != 0:
            raise ctx.error(f"input 'zero_point' must be a scalar like 'scale', got {zp}")
    elif scale.rank == 1:
        if not ctx.has("axis"):
            raise ctx.error("input 'axis' is required when 'scale' is a vector")
        axis = normalize_axis(ctx, int(ctx.param("axis")), ctx.rank("input"))
        size = ctx.shape("input")[axis]
        for name, t in (("scale", scale), ("zero_point", zp)):
            if t is None:
                continue
            if t.rank != 1:
                raise ctx.error(f"input {name!r} must be a vector like 'scale', got {t}")
            if isinstance(size, int) and t.shape[0] != size:
                raise ctx.error(f"input {name!r} has {t.shape[0]} entries for axis {axis} of size {size}")
    else:
        raise ctx.error(f"input 'scale' must be a scalar or a vector, got {scale}")


def _broadcast(param, x, axis):
    return along_axis(param, x.dim(), 0 if axis is None else axis % x.dim())


def _infer_quantize(ctx):
    name = ctx.param("output_dtype")
    if name not in {d.name for d in _QUANTIZED}:
        raise ctx.error(f"input 'output_dtype' must be 'uint8' or 'int8', got {name!r}")
    out = dt.from_name(name)
    if ctx.has("zero_point") and ctx.dtype("zero_point") is not out:
        raise ctx.error(f"input 'zero_point' has dtype {ctx.dtype('zero_point')} but output_dtype is {name}")
    if np.all(np.asarray(ctx.value("scale")) == 0):
        raise ctx.error("input 'scale' must not be 0")
    _check_params(ctx)
    return TensorType(out, ctx.shape("input"))


@mil_op("quantize", since=Target.iOS17, infer=_infer_quantize,
        domains={"SrcT": (dt.fp16, dt.fp32), "DstT": _QUANTIZED},
        inputs=[In("input", "SrcT"), In("zero_point", "DstT", const=True, optional=True),
                In("scale", "SrcT", const=True), In("axis", (dt.int32,), const=True, optional=True, param=True),
                In("output_dtype", (dt.string,), const=True, param=True)])
def quantize(input, zero_point, scale, axis, output_dtype):
    """clip(round(input / scale) + zero_point) into the range of `output_dtype` (uint8 or int8);
    rounding is half to even, `zero_point` defaults to 0."""
    q = torch.round(input / _broadcast(scale, input, axis)).to(torch.float32)
    if zero_point is not None:
        q = q + _broadcast(zero_point.to(torch.float32), input, axis)
    info = torch.iinfo(dt.from_name(output_dtype).torch)
    return q.clamp(info.min, info.max)


def _infer_dequantize(ctx):
    _check_params(ctx)
    return TensorType(ctx.dtype("scale"), ctx.shape("input"))


@mil_op("dequantize", since=Target.iOS17, infer=_infer_dequantize,
        domains={"SrcT": _QUANTIZED, "DstT": (dt.fp16, dt.fp32)},
        inputs=[In("input", "SrcT"), In("zero_point", "SrcT", const=True, optional=True),
                In("scale", "DstT", const=True), In("axis", (dt.int32,), const=True, optional=True, param=True)])
def dequantize(input, zero_point, scale, axis):
    """scale * (input - zero_point), in the dtype of `scale`; `zero_point` defaults to 0."""
    x = input.to(torch.float32)
    if zero_point is not None:
        x = x - _broadcast(zero_point.to(torch.float32), input, axis)
    return x * _broadcast(scale.to(torch.float32), input, axis)
