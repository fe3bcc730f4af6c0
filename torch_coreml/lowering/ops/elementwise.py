"""Elementwise arithmetic, comparison and logical ops: torch promotion, then one MIL op."""

from __future__ import annotations

import torch

from ...mil import dtypes as dt
from ..registry import lowering

aten = torch.ops.aten


def _binary(ctx, mil_op, a, b, dtype=None):
    x, y = ctx.promote(a, b, dtype=dtype)
    return ctx.b.op(mil_op, x=x, y=y)


@lowering(aten.add.Tensor, aten.add.Scalar)
def add(ctx, self, other, alpha=1):
    """add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"""
    if alpha != 1:
        other = _binary(ctx, "mul", other, alpha)
    return _binary(ctx, "add", self, other)


@lowering(aten.sub.Tensor, aten.sub.Scalar)
def sub(ctx, self, other, alpha=1):
    """sub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"""
    if alpha != 1:
        other = _binary(ctx, "mul", other, alpha)
    return _binary(ctx, "sub", self, other)


@lowering(aten.mul.Tensor, aten.mul.Scalar)
def mul(ctx, self, other):
    """mul.Tensor(Tensor self, Tensor other) -> Tensor"""
    return _binary(ctx, "mul", self, other)


@lowering(aten.relu.default)
def relu(ctx, self):
    """relu(Tensor self) -> Tensor"""
    return ctx.b.op("relu", x=self)
