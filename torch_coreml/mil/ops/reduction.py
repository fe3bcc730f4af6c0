"""Reductions: `reduce_<op>` over a set of axes (default: all of them), and `reduce_argmax/argmin`
over one axis (iOS17 adds an `output_dtype` for the indices).

Integer inputs keep their dtype: a kernel may compute in float (mean, norms, logs) and the runtime
casts the result back, truncating toward zero.
"""

from __future__ import annotations

import torch

from .. import dtypes as dt
from ..targets import Target
from ..types import TensorType
from .infer import normalize_axes, normalize_axis
from .spec import In, mil_op

_T = (dt.fp16, dt.fp32, dt.int32)


def _scalar(v):
    # Workaround: dtypes.numpy_to_torch turns a 0-d const into shape [1] (np.ascontiguousarray), so a
    # scalar param can arrive as a one-element list. Remove once that is fixed.
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def _infer_axes(ctx):
    shape = ctx.shape("x")
    axes = ctx.param("axes")
    axes = set(range(len(shape)) if axes is None else normalize_axes(ctx, axes, len(shape)))
    if ctx.param("keep_dims"):
        out = tuple(1 if i in axes else d for i, d in enumerate(shape))
    else:
        out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return TensorType(ctx.dtype("x"), out)


_AXES_INPUTS = [In("x", "T"), In("axes", dt.INTS, const=True, optional=True, param=True),
                In("keep_dims", (dt.bool_,), const=True, optional=True, param=True, default=False)]


def _reduction(name):
    """Register `reduce_<name>`; the decorated function reduces a tensor over a non-empty dim tuple,
    keeping the dims."""

    def deco(reduce_fn):
        def kernel(x, axes, keep_dims):
            rank = x.dim()
            dims = tuple(sorted({a % rank for a in axes})) if axes is not None else tuple(range(rank))
            if not dims:
                # Reducing over no axes: each element is its own group (torch would reduce all).
                return reduce_fn(x.unsqueeze(-1), (-1,)).squeeze(-1)
            out = reduce_fn(x, dims)
            return out if _scalar(keep_dims) else out.squeeze(dims)

        kernel.__doc__ = reduce_fn.__doc__
        kernel.__name__ = f"reduce_{name}"
        mil_op(f"reduce_{name}", inputs=_AXES_INPUTS, infer=_infer_axes, domains={"T": _T})(kernel)
        return kernel

    return deco


def _float(x):
    return x if x.is_floating_point() else x.float()


@_reduction("l1_norm")
def reduce_l1_norm(x, dims):
    """Sum of absolute values over `axes`."""
    return x.abs().sum(dims, keepdim=True)


@_reduction("l2_norm")
def reduce_l2_norm(x, dims):
    """Square root of the sum of squares over `axes`."""
    x = _float(x)
    return (x * x).sum(dims, keepdim=True).sqrt()


@_reduction("log_sum")
def reduce_log_sum(x, dims):
    """Natural log of the sum over `axes`."""
    return _float(x).sum(dims, keepdim=True).log()


@_reduction("log_sum_exp")
def reduce_log_sum_exp(x, dims):
    """log(sum(exp(x))) over `axes`, computed stably (shifted by the maximum)."""
    return torch.logsumexp(_float(x), dims, keepdim=True)


@_reduction("max")
def reduce_max(x, dims):
    """Maximum over `axes`."""
    return x.amax(dims, keepdim=True)


@_reduction("mean")
def reduce_mean(x, dims):
    """Arithmetic mean over `axes`."""
    return _float(x).mean(dims, keepdim=True)


@_reduction("min")
def reduce_min(x, dims):
    """Minimum over `axes`."""
    return x.amin(dims, keepdim=True)


@_reduction("prod")
def reduce_prod(x, dims):
    """Product over `axes`."""
    for d in dims:
        x = x.prod(d, keepdim=True)
    return x


@_reduction("sum")
def reduce_sum(x, dims):
    """Sum over `axes`."""
    return x.sum(dims, keepdim=True)


@_reduction("sum_square")
def reduce_sum_square(x, dims):
    """Sum of squares over `axes`."""
    return (x * x).sum(dims, keepdim=True)


# ------------------------------------------------------------------------------------ argmax / argmin

_ARG_DTYPES = {"int32": dt.int32, "uint16": dt.uint16}


def _infer_arg(ctx):
    shape = ctx.shape("x")
    if not shape:
        raise ctx.error("input 'x' must have rank >= 1")
    axis = normalize_axis(ctx, ctx.param("axis"), len(shape))
    name = ctx.param("output_dtype", "int32").lower()
    if name not in _ARG_DTYPES:
        raise ctx.error(f"input 'output_dtype' must be one of {list(_ARG_DTYPES)}, got {name!r}")
    if ctx.param("keep_dims"):
        out = shape[:axis] + (1,) + shape[axis + 1:]
    else:
        out = shape[:axis] + shape[axis + 1:]
    return TensorType(_ARG_DTYPES[name], out)


def _arg_inputs(*extra):
    return [In("x", "T"), In("axis", dt.INTS, const=True, optional=True, param=True, default=-1),
            In("keep_dims", (dt.bool_,), const=True, optional=True, param=True, default=False), *extra]


_OUTPUT_DTYPE = In("output_dtype", (dt.string,), const=True, optional=True, default="int32")


def _register_arg(name):
    def deco(kernel):
        mil_op(name, inputs=_arg_inputs(), infer=_infer_arg, domains={"T": _T})(kernel)
        mil_op(name, inputs=_arg_inputs(_OUTPUT_DTYPE), infer=_infer_arg, domains={"T": _T},
               since=Target.iOS17)(kernel)
        return kernel
    return deco


@_register_arg("reduce_argmax")
def reduce_argmax(x, axis, keep_dims, output_dtype="int32"):
    """Index of the largest value along `axis` (default -1); ties give the first index.

    output_dtype (iOS17+): "int32" (default) or "uint16"."""
    return torch.argmax(x, dim=_scalar(axis), keepdim=_scalar(keep_dims))


@_register_arg("reduce_argmin")
def reduce_argmin(x, axis, keep_dims, output_dtype="int32"):
    """Index of the smallest value along `axis` (default -1); ties give the first index.

    output_dtype (iOS17+): "int32" (default) or "uint16"."""
    return torch.argmin(x, dim=_scalar(axis), keepdim=_scalar(keep_dims))
