"""Normalizations: `batch_norm`, `instance_norm`, `l2_norm`, `layer_norm`, `local_response_norm`.

iOS17 lets the parameters (statistics, gamma/beta, epsilon, ...) carry a float dtype of their own,
independent of the activation: the "U" type variable. Kernels then compute in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import dtypes as dt
from ..targets import Target
from ..types import is_static_dim
from .infer import normalize_axes
from .spec import In, mil_op


def _scalar(v):
    # Workaround: dtypes.numpy_to_torch turns a 0-d const into shape [1] (np.ascontiguousarray), so a
    # scalar param can arrive as a one-element list. Remove once that is fixed.
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def _register(name, inputs_15, inputs_17, infer):
    """Register a kernel for iOS15 (one dtype `T` for all) and iOS17 (params in their own `U`)."""
    def deco(kernel):
        mil_op(name, inputs=inputs_15, infer=infer, domains={"T": dt.FLOATS})(kernel)
        mil_op(name, inputs=inputs_17, infer=infer, since=Target.iOS17,
               domains={"T": dt.FLOATS, "U": dt.FLOATS})(kernel)
        return kernel
    return deco


def _both(build):
    return build("T"), build("U")


def _compute_dtype(x, *others):
    """fp32 unless every tensor is fp16 (torch CPU has fp16 kernels for what we use here)."""
    tensors = [t for t in (x, *others) if isinstance(t, torch.Tensor)]
    return torch.float16 if all(t.dtype == torch.float16 for t in tensors) else torch.float32


def _per_channel(t, rank, dtype):
    return t.to(dtype).reshape((1, -1) + (1,) * (rank - 2))


def _check_channel_params(ctx, names, lo, hi):
    x = ctx.shape("x")
    if not lo <= len(x) <= hi:
        raise ctx.error(f"input 'x' must have rank {lo} to {hi} ([N, C, *D]), got shape {x}")
    for name in names:
        if ctx.has(name):
            s = ctx.shape(name)
            if len(s) != 1 or (is_static_dim(s[0]) and is_static_dim(x[1]) and s[0] != x[1]):
                raise ctx.error(f"input {name!r} must have shape [C] = [{x[1]}], got {s}")
    return ctx.type("x")


def _eps(default):
    return lambda u: In("epsilon", u, const=True, optional=True, param=True, default=default)


# -------------------------------------------------------------------------------------------- batch_norm

def _batch_norm_inputs(u):
    return [In("x", "T"), In("mean", u, const=True), In("variance", u, const=True),
            In("gamma", u, const=True, optional=True), In("beta", u, const=True, optional=True),
            _eps(1e-5)(u)]


@_register("batch_norm", *_both(_batch_norm_inputs),
           infer=lambda ctx: _check_channel_params(ctx, ("mean", "variance", "gamma", "beta"), 3, 5))
def batch_norm(x, mean, variance, gamma, beta, epsilon):
    """Per-channel affine normalization with given statistics, x [N, C, *D] (1 to 3 spatial dims):
    (x - mean) / sqrt(variance + epsilon) * gamma + beta, gamma defaulting to 1 and beta to 0."""
    dtype = _compute_dtype(x, mean, variance, gamma, beta)
    r = x.dim()
    inv_std = torch.rsqrt(_per_channel(variance, r, dtype) + _scalar(epsilon))
    y = (x.to(dtype) - _per_channel(mean, r, dtype)) * inv_std
    if gamma is not None:
        y = y * _per_channel(gamma, r, dtype)
    if beta is not None:
        y = y + _per_channel(beta, r, dtype)
    return y


# ----------------------------------------------------------------------------------------- instance_norm

def _instance_norm_inputs(u):
    return [In("x", "T"), In("gamma", u, const=True, optional=True),
            In("beta", u, const=True, optional=True), _eps(1e-5)(u)]


@_register("instance_norm", *_both(_instance_norm_inputs),
           # Documented for rank <= 4 but not checked upstream, whose PyTorch frontend emits rank 5.
           infer=lambda ctx: _check_channel_params(ctx, ("gamma", "beta"), 3, 5))
def instance_norm(x, gamma, beta, epsilon):
    """Normalize each (sample, channel) slice of x [N, C, *D] over its spatial dims to zero mean and
    unit (biased) variance, then scale by gamma and shift by beta (per channel)."""
    dtype = _compute_dtype(x, gamma, beta)
    xs = x.to(dtype)
    dims = tuple(range(2, x.dim()))
    var, mean = torch.var_mean(xs, dim=dims, unbiased=False, keepdim=True)
    y = (xs - mean) * torch.rsqrt(var + _scalar(epsilon))
    if gamma is not None:
        y = y * _per_channel(gamma, x.dim(), dtype)
    if beta is not None:
        y = y + _per_channel(beta, x.dim(), dtype)
    return y


# ----------------------------------------------------------------------------------------------- l2_norm

def _infer_l2_norm(ctx):
    if ctx.rank("x") < 3:
        raise ctx.error(f"input 'x' must have rank >= 3, got shape {ctx.shape('x')}")
    return ctx.type("x")


@_register("l2_norm", *_both(lambda u: [In("x", "T"), _eps(1e-6)(u)]), infer=_infer_l2_norm)
def l2_norm(x, epsilon):
    """Divide x by the L2 norm of its last three dims: x / sqrt(sum(x^2) + epsilon); leading dims are
    batch dims, normalized independently."""
    xs = x.float()  # a sum of squares overflows fp16 quickly
    sq = (xs * xs).sum(dim=(-3, -2, -1), keepdim=True)
    return xs * torch.rsqrt(sq + _scalar(epsilon))


# -------------------------------------------------------------------------------------------- layer_norm

def _infer_layer_norm(ctx):
    shape = ctx.shape("x")
    axes = ctx.param("axes")
    axes = range(len(shape)) if axes is None else normalize_axes(ctx, axes, len(shape))
    normalized = tuple(shape[i] for i in range(len(shape)) if i in set(axes))
    for name in ("gamma", "beta"):
        if ctx.has(name):
            s = ctx.shape(name)
            if len(s) != len(normalized) or any(
                    is_static_dim(a) and is_static_dim(b) and a != b for a, b in zip(s, normalized)):
                raise ctx.error(f"input {name!r} must have the normalized shape {normalized}, got {s}")
    return ctx.type("x")


def _layer_norm_inputs(u):
    return [In("x", "T"), In("axes", dt.INTS, const=True, optional=True, param=True),
            In("gamma", u, const=True, optional=True), In("beta", u, const=True, optional=True),
            _eps(1e-5)(u)]


@_register("layer_norm", *_both(_layer_norm_inputs), infer=_infer_layer_norm)
def layer_norm(x, axes, gamma, beta, epsilon):
    """Normalize x over `axes` (default: all) to zero mean and unit (biased) variance, then apply
    gamma and beta, whose shape is x's shape restricted to `axes` (in dim order)."""
    rank = x.dim()
    axes = sorted({a % rank for a in axes}) if axes is not None else list(range(rank))
    dtype = _compute_dtype(x, gamma, beta)
    xs = x.to(dtype)
    if not axes:  # nothing to normalize over: every element is its own mean
        y = torch.zeros_like(xs)
    else:
        var, mean = torch.var_mean(xs, dim=axes, unbiased=False, keepdim=True)
        y = (xs - mean) * torch.rsqrt(var + _scalar(epsilon))
    param_shape = [x.shape[i] if i in axes else 1 for i in range(rank)]
    if gamma is not None:
        y = y * gamma.to(dtype).reshape(param_shape)
    if beta is not None:
        y = y + beta.to(dtype).reshape(param_shape)
    return y


# ----------------------------------------------------------------------------------- local_response_norm

def _infer_lrn(ctx):
    _check_channel_params(ctx, (), 3, 4)
    if ctx.param("size") < 1:
        raise ctx.error(f"input 'size' must be >= 1, got {ctx.param('size')}")
    return ctx.type("x")


def _lrn_inputs(u):
    return [In("x", "T"), In("size", dt.INTS, const=True, param=True),
            In("alpha", u, const=True, optional=True, param=True, default=1e-4),
            In("beta", u, const=True, optional=True, param=True, default=0.75),
            In("k", u, const=True, optional=True, param=True, default=1.0)]


@_register("local_response_norm", *_both(_lrn_inputs), infer=_infer_lrn)
def local_response_norm(x, size, alpha, beta, k):
    """Divide each element by (k + alpha / size * S)^beta, S being the sum of squares over `size`
    neighbouring channels (size // 2 before, the rest after; missing channels count as zero)."""
    return F.local_response_norm(x.float(), _scalar(size), alpha=_scalar(alpha), beta=_scalar(beta),
                                 k=_scalar(k))
