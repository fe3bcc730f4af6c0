"""Composite ops that torch.export's default (training) IR keeps: conv2d, batch_norm, layer_norm, pad,
flatten, transpose, dropout, to, softmax, ...

Each is lowered through the lowering of the core op it stands for, so a program straight from
`torch.export.export` needs no decomposition traced for them (see node_decompose.py), and the MIL is
the same as after torch's decomposition. A call the core lowering would not take, or that only the
decomposition handles (unbatched convolution, training-mode batch norm or dropout, circular padding,
symbolic flatten), is refused here and decomposes as before.
"""

from __future__ import annotations

import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from .activation import log_softmax, softmax
from .conv import convolution
from .conversion import to_copy
from .elementwise import sub
from .creation import full
from .norm import batch_norm_with_stats, layer_norm_output
from .padding import constant_pad_nd, reflection_pad, replication_pad
from .pool import adaptive_avg_pool
from .shape import permute, reshape

aten = torch.ops.aten


def _per_dim(value, n: int) -> list:
    value = list(value) if isinstance(value, (list, tuple)) else [value]
    return value * n if len(value) == 1 else value


@lowering(aten.conv1d.default, aten.conv2d.default, aten.conv3d.default)
def conv_nd(ctx, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d(Tensor input, Tensor weight, Tensor? bias=None, SymInt[2] stride=1, SymInt[2] padding=0,
    SymInt[2] dilation=1, SymInt groups=1) -> Tensor"""
    n = weight.rank - 2
    if input.rank != n + 2:
        raise ctx.unsupported("an unbatched convolution input (decomposed into unsqueeze + convolution)")
    return convolution(ctx, input, weight, bias, _per_dim(stride, n), _per_dim(padding, n),
                       _per_dim(dilation, n), False, [0] * n, groups)


@lowering(aten.batch_norm.default)
def batch_norm(ctx, input, weight, bias, running_mean, running_var, training, momentum, eps,
               cudnn_enabled):
    """batch_norm(Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean,
    Tensor? running_var, bool training, float momentum, float eps, bool cudnn_enabled) -> Tensor"""
    if training or running_mean is None or running_var is None:
        raise ctx.unsupported("batch norm with batch statistics (decomposed)")
    return batch_norm_with_stats(ctx, input, weight, bias, running_mean, running_var, eps)


@lowering(aten.layer_norm.default)
def layer_norm(ctx, input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    """layer_norm(Tensor input, SymInt[] normalized_shape, Tensor? weight=None, Tensor? bias=None,
    float eps=1e-05, bool cudnn_enable=True) -> Tensor"""
    return layer_norm_output(ctx, input, normalized_shape, weight, bias, eps)


@lowering(aten.pad.default)
def pad(ctx, self, pad, mode="constant", value=None):
    """pad(Tensor self, SymInt[] pad, str mode="constant", float? value=None) -> Tensor"""
    if mode == "constant":
        return constant_pad_nd(ctx, self, pad, 0 if value is None else value)
    if value is not None:
        raise ctx.unsupported(f"a fill value with padding mode {mode!r}")
    if mode == "reflect":
        return reflection_pad(ctx, self, pad)
    if mode == "replicate":
        return replication_pad(ctx, self, pad)
    raise ctx.unsupported(f"padding mode {mode!r} (decomposed)")


@lowering(aten.adaptive_avg_pool2d.default, aten.adaptive_avg_pool3d.default)
def adaptive_avg_pool_nd(ctx, self, output_size):
    """adaptive_avg_pool2d(Tensor self, SymInt[2] output_size) -> Tensor"""
    return adaptive_avg_pool(ctx, self, output_size)


@lowering(aten.flatten.using_ints)
def flatten(ctx, self, start_dim=0, end_dim=-1):
    """flatten.using_ints(Tensor(a) self, int start_dim=0, int end_dim=-1) -> Tensor(a)"""
    shape = list(self.shape)
    if not shape:
        return reshape(ctx, self, [1])
    start, end = start_dim % len(shape), end_dim % len(shape)
    merged = shape[start:end + 1]
    if not all(isinstance(d, int) for d in merged):
        raise ctx.unsupported("flattening symbolic dimensions (decomposed)")
    size = 1
    for d in merged:
        size *= d
    kept = [d if isinstance(d, int) else -1 for d in shape]
    if kept.count(-1) > 1:
        raise ctx.unsupported("flatten with several symbolic dimensions (decomposed)")
    return reshape(ctx, self, kept[:start] + [size] + kept[end + 1:])


@lowering(aten.transpose.int)
def transpose(ctx, self, dim0, dim1):
    """transpose.int(Tensor(a) self, int dim0, int dim1) -> Tensor(a)"""
    n = max(self.rank, 1)
    perm = list(range(self.rank))
    if self.rank:
        perm[dim0 % n], perm[dim1 % n] = perm[dim1 % n], perm[dim0 % n]
    return permute(ctx, self, perm)


@lowering(aten.dropout.default, aten.feature_dropout.default, aten.alpha_dropout.default,
          aten.feature_alpha_dropout.default)
def dropout(ctx, input, p, train):
    """dropout(Tensor input, float p, bool train) -> Tensor"""
    if train and p != 0:
        raise ctx.unsupported("dropout in training mode (decomposed)")
    return input


@lowering(aten.contiguous.default)
def contiguous(ctx, self, memory_format=None):
    """contiguous(Tensor(a) self, *, MemoryFormat memory_format=contiguous_format) -> Tensor(a)"""
    return self


@lowering(aten.to.dtype)
def to_dtype(ctx, self, dtype, non_blocking=False, copy=False, memory_format=None):
    """to.dtype(Tensor(a) self, ScalarType dtype, bool non_blocking=False, bool copy=False,
    MemoryFormat? memory_format=None) -> Tensor(a)"""
    return to_copy(ctx, self, dtype=dtype)


@lowering(aten.to.dtype_layout)
def to_dtype_layout(ctx, self, dtype=None, layout=None, device=None, pin_memory=None,
                    non_blocking=False, copy=False, memory_format=None):
    """to.dtype_layout(Tensor(a) self, *, ScalarType? dtype=None, Layout? layout=None,
    Device? device=None, bool? pin_memory=None, bool non_blocking=False, bool copy=False,
    MemoryFormat? memory_format=None) -> Tensor(a)"""
    return to_copy(ctx, self, dtype=dtype)


@lowering(aten.softmax.int)
def softmax_int(ctx, self, dim, dtype=None):
    """softmax.int(Tensor self, int dim, ScalarType? dtype=None) -> Tensor"""
    return softmax(ctx, to_copy(ctx, self, dtype=dtype) if dtype is not None else self, dim, False)


@lowering(aten.log_softmax.int)
def log_softmax_int(ctx, self, dim, dtype=None):
    """log_softmax.int(Tensor self, int dim, ScalarType? dtype=None) -> Tensor"""
    return log_softmax(ctx, to_copy(ctx, self, dtype=dtype) if dtype is not None else self, dim, False)


@lowering(aten.rsub.Scalar, aten.rsub.Tensor)
def rsub(ctx, self, other, alpha=1):
    """rsub.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor: other - alpha * self"""
    if isinstance(other, bool) or (self.dtype is dt.bool_ and not isinstance(other, Var)):
        raise ctx.unsupported("rsub with a bool operand (decomposed)")
    return sub(ctx, other, self, alpha)


@lowering(aten.ones.default)
def ones(ctx, size, dtype=None, layout=None, device=None, pin_memory=None):
    """ones(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None,
    bool? pin_memory=None) -> Tensor"""
    return full(ctx, size, 1.0, dtype=dtype or torch.get_default_dtype())


@lowering(aten.zeros.default)
def zeros(ctx, size, dtype=None, layout=None, device=None, pin_memory=None):
    """zeros(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None,
    bool? pin_memory=None) -> Tensor"""
    return full(ctx, size, 0.0, dtype=dtype or torch.get_default_dtype())
