"""Pooling over 1 to 3 spatial dims of an NC* tensor: `avg_pool`, `l2_pool` (1D/2D) and `max_pool`.

One generic kernel slides the windows with `Tensor.unfold`, so asymmetric padding, "same"/"same_lower"
and ceil_mode all follow the same arithmetic as type inference (shared with conv.py).
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..types import TensorType
from .conv import check_pad_type, check_window_params, explicit_pads, pad_spatial, spatial_out_shape, \
    window_count
from .spec import In, mil_op


def _scalar(v):
    # Workaround: dtypes.numpy_to_torch turns a 0-d const into shape [1] (np.ascontiguousarray), so a
    # scalar param can arrive as a one-element list. Remove once that is fixed.
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def _pool_infer(max_spatial):
    def infer(ctx):
        x = ctx.shape("x")
        n = len(x) - 2
        if not 1 <= n <= max_spatial:
            raise ctx.error(f"input 'x' must be [N, C, *D] with 1 to {max_spatial} spatial dims, "
                            f"got shape {x}")
        kernel, strides, pad = ctx.param("kernel_sizes"), ctx.param("strides"), ctx.param("pad")
        pad_type = ctx.param("pad_type").lower()
        check_pad_type(ctx, pad_type)
        check_window_params(ctx, n, kernel_sizes=kernel, strides=strides, pad=pad)
        ceil_mode = ctx.param("ceil_mode")
        if ceil_mode:
            if n > 2:
                raise ctx.error("input 'ceil_mode' is only supported for 1D and 2D pooling")
            if pad_type == "same":
                raise ctx.error("input 'ceil_mode' must be False when 'pad_type' is 'same'")
            if any(pad[2 * i] != pad[2 * i + 1] for i in range(n)):
                raise ctx.error(f"input 'pad' must be symmetric when 'ceil_mode' is True, got {pad}")
        pad = pad if pad_type == "custom" else [0] * (2 * n)
        spatial = spatial_out_shape(ctx, x[2:], kernel, strides, [1] * n, pad_type, pad, ceil_mode)
        return TensorType(ctx.dtype("x"), (x[0], x[1], *spatial))

    return infer


def _pool_inputs(*leading):
    # avg_pool's extra input comes first, matching the declaration order of the reference op set.
    return [
        *leading,
        In("x", "T"),
        In("kernel_sizes", dt.INTS, const=True, param=True),
        In("strides", dt.INTS, const=True, optional=True, param=True,
           default=lambda ctx: [1] * (ctx.rank("x") - 2)),
        In("pad_type", (dt.string,), const=True),
        In("pad", dt.INTS, const=True, optional=True, param=True,
           default=lambda ctx: [0] * (2 * (ctx.rank("x") - 2))),
        In("ceil_mode", (dt.bool_,), const=True, optional=True, param=True, default=False),
    ]


def _windows(x, kernel_sizes, strides, pad_type, pad, ceil_mode, fill):
    """x padded with `fill` and cut into windows: [N, C, *D_out, *K] (a view, no copy).

    Also returns the explicit padding and the extra zeros ceil_mode appended after each dim."""
    dims, ceil_mode = list(x.shape[2:]), _scalar(ceil_mode)
    pads = explicit_pads(pad_type.lower(), dims, kernel_sizes, strides, [1] * len(dims), pad)
    extra, counts = [], []
    for d, (b, a), k, s in zip(dims, pads, kernel_sizes, strides):
        n = window_count(d, b + a, k, s, ceil_mode)
        counts.append(n)
        extra.append(max(0, (n - 1) * s + k - (d + b + a)))
    w = pad_spatial(x, [(b, a + e) for (b, a), e in zip(pads, extra)], value=fill)
    for r, (k, s, n) in enumerate(zip(kernel_sizes, strides, counts)):
        w = w.unfold(2 + r, k, s).narrow(2 + r, 0, n)
    return w, pads, extra


def _window_dims(n):
    return tuple(range(-n, 0))


@mil_op("avg_pool", inputs=_pool_inputs(
    In("exclude_padding_from_average", (dt.bool_,), const=True, optional=True, param=True,
       default=False)), infer=_pool_infer(3), domains={"T": dt.FLOATS})
def avg_pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, exclude_padding_from_average):
    """Mean over each window of size `kernel_sizes` stepped by `strides`.

    pad_type / pad: as for `conv` (padding is zeros). exclude_padding_from_average: divide by the
    number of real elements in the window instead of the window size. ceil_mode (1D/2D, symmetric
    padding): round the output size up, as PyTorch does; a window running past the padding is averaged
    over the part inside it.
    """
    n = len(kernel_sizes)
    w, pads, extra = _windows(x, kernel_sizes, strides, pad_type, pad, ceil_mode, 0.0)
    total = w.sum(_window_dims(n))
    # The divisor counts the window's elements inside the data (exclude) or inside data + padding.
    ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=torch.float32)
    if _scalar(exclude_padding_from_average):
        mask = pad_spatial(ones, [(b, a + e) for (b, a), e in zip(pads, extra)])
    else:
        mask = pad_spatial(pad_spatial(ones, pads, value=1.0), [(0, e) for e in extra])
    for r, (k, s, size) in enumerate(zip(kernel_sizes, strides, w.shape[2:2 + n])):
        mask = mask.unfold(2 + r, k, s).narrow(2 + r, 0, size)
    count = mask.sum(_window_dims(n)).clamp(min=1)
    return (total.float() / count).to(x.dtype)


@mil_op("l2_pool", inputs=_pool_inputs(), infer=_pool_infer(2), domains={"T": dt.FLOATS})
def l2_pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode):
    """Square root of the sum of squares over each window (1D and 2D only); padding adds zeros."""
    w, _, _ = _windows(x, kernel_sizes, strides, pad_type, pad, ceil_mode, 0.0)
    return (w * w).sum(_window_dims(len(kernel_sizes))).sqrt()


@mil_op("max_pool", inputs=_pool_inputs(), infer=_pool_infer(3), domains={"T": dt.FLOATS})
def max_pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode):
    """Maximum over each window; padded positions never win (they hold -inf)."""
    w, _, _ = _windows(x, kernel_sizes, strides, pad_type, pad, ceil_mode, float("-inf"))
    return w.amax(_window_dims(len(kernel_sizes)))
