"""Normalizations: batch norm (inference and batch statistics), layer norm, group norm and instance
norm, on MIL `batch_norm` / `layer_norm` / `instance_norm` when the parameters are constants, and
on elementwise arithmetic otherwise.

ATen's norm ops also return the statistics (mean, rstd); they are built only when something reads
them.
"""

from __future__ import annotations

import torch

from ..registry import lowering
from ._nn_helpers import output_used, per_channel, prod, rank

aten = torch.ops.aten


def _const_or_none(*vars_) -> bool:
    return all(v is None or v.is_const for v in vars_)


def _float_params(ctx, *vars_):
    return [None if v is None else ctx.cast(v, ctx.float_dtype) for v in vars_]


def _scale_shift(ctx, y, weight, bias, shape_like):
    """y * weight + bias, each parameter reshaped by `shape_like(param)` to broadcast."""
    if weight is not None:
        y = ctx.b.op("mul", x=y, y=shape_like(ctx.cast(weight, y.dtype)))
    if bias is not None:
        y = ctx.b.op("add", x=y, y=shape_like(ctx.cast(bias, y.dtype)))
    return y


def _rstd(ctx, var, eps):
    return ctx.b.op("rsqrt", x=var, epsilon=float(eps))


def _moments(ctx, x, axes):
    """(mean, biased variance) over axes, dims kept."""
    mean = ctx.b.op("reduce_mean", x=x, axes=axes, keep_dims=True)
    centered = ctx.b.op("sub", x=x, y=mean)
    return mean, ctx.b.op("reduce_mean", x=ctx.b.op("mul", x=centered, y=centered), axes=axes,
                          keep_dims=True)


def _normalize(ctx, x, mean, var, eps):
    return ctx.b.op("mul", x=ctx.b.op("sub", x=x, y=mean), y=_rstd(ctx, var, eps))


# -- batch norm -------------------------------------------------------------------------------------

def batch_norm_with_stats(ctx, input, weight, bias, mean, var, eps):
    """Inference batch norm with given (running) statistics."""
    x = ctx.cast(input, ctx.float_dtype)
    mean, var, weight, bias = _float_params(ctx, mean, var, weight, bias)
    if 3 <= rank(x) <= 5 and _const_or_none(mean, var, weight, bias):
        return ctx.b.op("batch_norm", x=x, mean=mean, variance=var, gamma=weight, beta=bias,
                        epsilon=float(eps))
    # Rank 2 ([N, C]) or runtime statistics: the same arithmetic spelled out.
    channel = lambda v: per_channel(ctx, v, rank(x))  # noqa: E731
    y = _normalize(ctx, x, channel(mean), channel(var), eps)
    return _scale_shift(ctx, y, weight, bias, channel)


def _batch_norm_batch_stats(ctx, input, weight, bias, eps):
    """Batch norm with the statistics of this batch (training mode / no running stats)."""
    x = ctx.cast(input, ctx.float_dtype)
    axes = [0] + list(range(2, rank(x)))
    mean, var = _moments(ctx, x, axes)
    channel = lambda v: per_channel(ctx, v, rank(x))  # noqa: E731
    y = _scale_shift(ctx, _normalize(ctx, x, mean, var, eps), weight, bias, channel)
    if not (output_used(ctx, 1) or output_used(ctx, 2)):
        return y, None, None
    return (y, ctx.b.op("squeeze", x=mean, axes=axes),
            ctx.b.op("squeeze", x=_rstd(ctx, var, eps), axes=axes))


def _no_saved_stats(ctx, out):
    # In inference mode ATen returns empty save_mean / save_invstd; nothing reads them in practice.
    if ctx.node is not None and (output_used(ctx, 1) or output_used(ctx, 2)):
        raise ctx.unsupported("the empty saved statistics of an inference batch norm are read")
    return out, None, None


def _running_update(ctx, input, running_mean, running_var, momentum):
    """The running statistics after a training step, as ATen updates them: (1 - momentum) * old +
    momentum * batch statistic, the batch variance made unbiased (n / (n - 1))."""
    x = ctx.cast(input, ctx.float_dtype)
    axes = [0] + list(range(2, rank(x)))
    count = prod(x.shape[a] for a in axes) if all(isinstance(x.shape[a], int) for a in axes) else None
    if count is None:
        raise ctx.unsupported("updating batch norm running statistics of a dynamic-shape input")
    if count < 2:
        raise ctx.unsupported("updating batch norm running statistics from one value per channel")
    mean, var = (ctx.b.op("squeeze", x=v, axes=axes) for v in _moments(ctx, x, axes))
    running_mean, running_var = _float_params(ctx, running_mean, running_var)

    def blend(old, new, scale=1.0):
        return ctx.b.op("add", x=ctx.b.op("mul", x=old, y=ctx.const(1.0 - momentum, old.dtype)),
                        y=ctx.b.op("mul", x=new, y=ctx.const(momentum * scale, new.dtype)))

    return blend(running_mean, mean), blend(running_var, var, count / (count - 1))


@lowering(aten._native_batch_norm_legit_functional.default)
def batch_norm_legit_functional(ctx, input, weight, bias, running_mean, running_var, training, momentum, eps):
    """_native_batch_norm_legit_functional(Tensor input, Tensor? weight, Tensor? bias, Tensor running_mean,
    Tensor running_var, bool training, float momentum, float eps)
    -> (Tensor, Tensor, Tensor, Tensor running_mean_out, Tensor running_var_out)"""
    if not training:
        out = _no_saved_stats(ctx, batch_norm_with_stats(ctx, input, weight, bias, running_mean, running_var, eps))
        return (*out, running_mean, running_var)
    return (*_batch_norm_batch_stats(ctx, input, weight, bias, eps),
            *_running_update(ctx, input, running_mean, running_var, momentum))


@lowering(aten._batch_norm_with_update_functional.default)
def batch_norm_with_update_functional(ctx, input, weight, bias, running_mean, running_var, momentum, eps):
    """_batch_norm_with_update_functional(Tensor input, Tensor? weight, Tensor? bias, Tensor running_mean,
    Tensor running_var, float momentum, float eps)
    -> (Tensor, Tensor, Tensor, Tensor, Tensor running_mean_out, Tensor running_var_out)"""
    if output_used(ctx, 3):
        raise ctx.unsupported("the (empty) cuDNN reserve tensor of a batch norm is read")
    return (*_batch_norm_batch_stats(ctx, input, weight, bias, eps), None,
            *_running_update(ctx, input, running_mean, running_var, momentum))


@lowering(aten._native_batch_norm_legit_no_training.default)
def batch_norm_no_training(ctx, input, weight, bias, running_mean, running_var, momentum, eps):
    """_native_batch_norm_legit_no_training(Tensor input, Tensor? weight, Tensor? bias,
    Tensor running_mean, Tensor running_var, float momentum, float eps) -> (Tensor, Tensor, Tensor)"""
    return _no_saved_stats(ctx, batch_norm_with_stats(ctx, input, weight, bias, running_mean,
                                                       running_var, eps))


@lowering(aten.native_batch_norm.default)
def native_batch_norm(ctx, input, weight, bias, running_mean, running_var, training, momentum, eps):
    """native_batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean,
    Tensor? running_var, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)"""
    if training or running_mean is None or running_var is None:
        return _batch_norm_batch_stats(ctx, input, weight, bias, eps)
    return _no_saved_stats(ctx, batch_norm_with_stats(ctx, input, weight, bias, running_mean,
                                                       running_var, eps))


@lowering(aten._native_batch_norm_legit.default)
def batch_norm_legit(ctx, input, weight, bias, running_mean, running_var, training, momentum, eps):
    """_native_batch_norm_legit(Tensor input, Tensor? weight, Tensor? bias, Tensor(a!) running_mean,
    Tensor(b!) running_var, bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor)

    The running-stat update in training mode is a buffer mutation, which the exporter reports."""
    if training:
        return _batch_norm_batch_stats(ctx, input, weight, bias, eps)
    return _no_saved_stats(ctx, batch_norm_with_stats(ctx, input, weight, bias, running_mean,
                                                       running_var, eps))


@lowering(aten._native_batch_norm_legit.no_stats)
def batch_norm_no_stats(ctx, input, weight, bias, training, momentum, eps):
    """_native_batch_norm_legit.no_stats(Tensor input, Tensor? weight, Tensor? bias, bool training,
    float momentum, float eps) -> (Tensor, Tensor, Tensor)"""
    return _batch_norm_batch_stats(ctx, input, weight, bias, eps)


# -- layer norm -------------------------------------------------------------------------------------

@lowering(aten.native_layer_norm.default)
def native_layer_norm(ctx, input, normalized_shape, weight, bias, eps):
    """native_layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight, Tensor? bias,
    float eps) -> (Tensor, Tensor, Tensor)"""
    y = layer_norm_output(ctx, input, normalized_shape, weight, bias, eps)
    if not (output_used(ctx, 1) or output_used(ctx, 2)):
        return y, None, None
    x = ctx.cast(input, ctx.float_dtype)
    mean, var = _moments(ctx, x, list(range(rank(x) - len(normalized_shape), rank(x))))
    return y, mean, _rstd(ctx, var, eps)


def layer_norm_output(ctx, input, normalized_shape, weight, bias, eps):
    """The normalized output alone (what aten.layer_norm returns)."""
    x = ctx.cast(input, ctx.float_dtype)
    axes = list(range(rank(x) - len(normalized_shape), rank(x)))
    weight, bias = _float_params(ctx, weight, bias)
    if _const_or_none(weight, bias):
        return ctx.b.op("layer_norm", x=x, axes=axes, gamma=weight, beta=bias, epsilon=float(eps))
    return _scale_shift(ctx, ctx.b.op("layer_norm", x=x, axes=axes, epsilon=float(eps)),
                        weight, bias, lambda v: v)  # [*normalized_shape] broadcasts as is


# -- group norm -------------------------------------------------------------------------------------

@lowering(aten.native_group_norm.default)
def native_group_norm(ctx, input, weight, bias, N, C, HxW, group, eps):
    """native_group_norm(Tensor input, Tensor? weight, Tensor? bias, SymInt N, SymInt C,
    SymInt HxW, int group, float eps) -> (Tensor, Tensor, Tensor)

    Each sample's channels are split into `group` groups normalized together: x is viewed as
    [N, group, C/group * HxW], normalized over the last axis, viewed back, then scaled per channel."""
    x = ctx.cast(input, ctx.float_dtype)
    grouped = ctx.b.op("reshape", x=x, shape=ctx.int_list([N, group, -1]))
    y = ctx.b.op("layer_norm", x=grouped, axes=[2], epsilon=float(eps))
    y = ctx.b.op("reshape", x=y, shape=ctx.shape_var(x))
    y = _scale_shift(ctx, y, *_float_params(ctx, weight, bias),
                     lambda v: per_channel(ctx, v, rank(x)))
    if not (output_used(ctx, 1) or output_used(ctx, 2)):
        return y, None, None
    mean, var = _moments(ctx, grouped, [2])
    return (y, ctx.b.op("squeeze", x=mean, axes=[2]),
            ctx.b.op("squeeze", x=_rstd(ctx, var, eps), axes=[2]))


# -- instance norm ----------------------------------------------------------------------------------

@lowering(aten.instance_norm.default)
def instance_norm(ctx, input, weight, bias, running_mean, running_var, use_input_stats, momentum,
                  eps, cudnn_enabled):
    """instance_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean,
    Tensor? running_var, bool use_input_stats, float momentum, float eps, bool cudnn_enabled) -> Tensor

    Kept whole (MIL instance_norm) when it normalizes by the input's own statistics; with running
    statistics it is an inference batch norm."""
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ctx.unsupported("instance_norm without input statistics needs running statistics")
        return batch_norm_with_stats(ctx, input, weight, bias, running_mean, running_var, eps)
    if not 3 <= rank(input) <= 5:
        raise ctx.unsupported(f"instance_norm of a rank-{rank(input)} input")
    x = ctx.cast(input, ctx.float_dtype)
    weight, bias = _float_params(ctx, weight, bias)
    if _const_or_none(weight, bias):
        return ctx.b.op("instance_norm", x=x, gamma=weight, beta=bias, epsilon=float(eps))
    y = ctx.b.op("instance_norm", x=x, epsilon=float(eps))
    return _scale_shift(ctx, y, weight, bias, lambda v: per_channel(ctx, v, rank(x)))
