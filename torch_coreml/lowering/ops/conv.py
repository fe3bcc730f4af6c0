"""Convolutions: aten.convolution (1D/2D/3D, strided, padded, dilated, grouped, transposed with
output_padding) onto MIL `conv` / `conv_transpose`."""

from __future__ import annotations

import torch

from ...mil.targets import Target
from ..registry import lowering
from ._nn_helpers import per_channel, rank

aten = torch.ops.aten


def _per_dim(value, n: int) -> list[int]:
    """ATen window params may be given once for all spatial dims."""
    value = [int(v) for v in value]
    return value * n if len(value) == 1 else value


def _add_bias(ctx, out, bias):
    out, bias = ctx.promote(out, bias, dtype=out.dtype)
    return ctx.b.op("add", x=out, y=per_channel(ctx, bias, rank(out)))


@lowering(aten.convolution.default)
def convolution(ctx, input, weight, bias, stride, padding, dilation, transposed, output_padding,
                groups):
    """convolution(Tensor input, Tensor weight, Tensor? bias, SymInt[] stride, SymInt[] padding,
    SymInt[] dilation, bool transposed, SymInt[] output_padding, SymInt groups) -> Tensor"""
    n = rank(input) - 2
    if not 1 <= n <= 3:
        raise ctx.unsupported(f"convolution of a rank-{rank(input)} input (unbatched input is "
                              "expected to be unsqueezed before reaching here)")
    if not all(isinstance(d, int) for d in weight.shape[2:]):
        raise ctx.unsupported("convolution with a dynamic kernel size")
    stride, padding, dilation = (_per_dim(v, n) for v in (stride, padding, dilation))
    x, w = ctx.promote(input, weight, dtype=ctx.float_dtype)
    # Before iOS17 the bias must be a constant; a runtime bias is added after.
    bias_inline = bias is not None and (bias.is_const or ctx.target >= Target.iOS17)
    b = ctx.cast(bias, ctx.float_dtype) if bias_inline else None
    pad = [p for p in padding for _ in range(2)]
    if transposed:
        out = _conv_transpose(ctx, x, w, b, stride, pad, dilation, _per_dim(output_padding, n), groups)
    else:
        if any(d != 1 for d in dilation) and not weight.is_const:
            # MIL dilates constant weights only: spread a runtime kernel out with zeros instead.
            w, dilation = _dilate_kernel(ctx, w, dilation), [1] * n
        out = ctx.b.op("conv", x=x, weight=w, bias=b, strides=stride, pad_type="custom", pad=pad,
                       dilations=dilation, groups=groups)
    if bias is not None and not bias_inline:
        out = _add_bias(ctx, out, bias)
    return out


def _dilate_kernel(ctx, w, dilation):
    """[O, I, *K] → [O, I, *((K - 1) * d + 1)] with d - 1 zeros between taps, one spatial axis at a
    time: append d - 1 zeros after every tap (expand, pad, merge), then drop the trailing ones."""
    for r, d in enumerate(dilation):
        if d == 1:
            continue
        axis, shape = 2 + r, list(w.shape)
        k = shape[axis]
        spread = ctx.b.op("pad", x=ctx.b.op("expand_dims", x=w, axes=[axis + 1]),
                          pad=[0, 0] * (axis + 1) + [0, d - 1] + [0, 0] * (len(shape) - axis - 1),
                          mode="constant", constant_val=0.0)
        merged = shape[:axis] + [k * d] + shape[axis + 1:]
        w = ctx.b.op("reshape", x=spread, shape=merged)
        size = [-1] * len(shape)
        size[axis] = (k - 1) * d + 1
        w = ctx.b.op("slice_by_size", x=w, begin=[0] * len(shape), size=size)
    return w


def _conv_transpose(ctx, x, w, b, stride, pad, dilation, output_padding, groups):
    """torch's output_padding adds elements after each spatial dim: we crop that much less at the
    end; where the padding is smaller than output_padding the extra elements lie beyond the full
    result, so they are zeros (plus bias) and are appended with `pad`."""
    if not w.is_const:
        # The iOS17 spec allows a runtime weight, but coremltools' loader infers the output shape
        # from the weight's value and rejects such a program: run it as a plain conv instead.
        from .sampling import conv_transpose_as_conv  # noqa: PLC0415 - sampling imports this module
        return conv_transpose_as_conv(ctx, x, w, b, stride, pad, dilation, output_padding, groups)
    grow = []
    for r, extra in enumerate(output_padding):
        after = pad[2 * r + 1] - extra
        pad[2 * r + 1] = max(after, 0)
        grow += [0, max(-after, 0)]
    if any(grow) and b is not None:
        bias, b = b, None  # added after the zeros are appended
    else:
        bias = None
    out = ctx.b.op("conv_transpose", x=x, weight=w, bias=b, pad_type="custom", pad=pad,
                   strides=stride, dilations=dilation, groups=groups)
    if any(grow):
        out = ctx.b.op("pad", x=out, pad=[0, 0, 0, 0] + grow, mode="constant", constant_val=0.0)
    if bias is not None:
        out = _add_bias(ctx, out, bias)
    return out
