"""Padding: constant_pad_nd (negative pads crop), reflection_pad{1,2,3}d and replication_pad{1,2,3}d.

torch lists pads last dim first: (left, right, top, bottom, front, back); MIL's `pad` lists them first
padded dim first. MIL's `pad` is float-only; integer and bool tensors get constant blocks concatenated
on, and edge-mode pads of integer tensors are left to torch's decomposition.
"""

from __future__ import annotations

import numpy as np
import torch

from ...mil.program import Var
from ..registry import lowering
from .shape import slice_axis

aten = torch.ops.aten


def pads_by_axis(ctx, x: Var, pad) -> dict[int, tuple[int, int]]:
    """{axis: (before, after)} from torch's last-dim-first pad list."""
    if any(isinstance(p, Var) for p in pad) or len(pad) % 2 or len(pad) > 2 * x.rank:
        raise ctx.unsupported(f"pad {list(pad)} must be constant, of even length, at most 2 * rank")
    return {x.rank - 1 - k: (int(pad[2 * k]), int(pad[2 * k + 1])) for k in range(len(pad) // 2)}


def mil_pad_list(x: Var, pads: dict[int, tuple[int, int]]) -> list[int]:
    """MIL's pad vector: (before, after) for each of the trailing dims from the first padded one."""
    first = min(pads)
    return [p for axis in range(first, x.rank) for p in pads.get(axis, (0, 0))]


def _block(ctx, x: Var, axis: int, n: int, value) -> Var:
    """A tensor shaped like x but n long on `axis`, holding `value`."""
    if all(isinstance(d, int) for d in x.shape):
        shape = list(x.shape)
        shape[axis] = n
        return ctx.const(np.full(shape, value, x.dtype.numpy), x.dtype)
    # Run-time dims: x's shape vector with the axis entry replaced by n.
    shape = ctx.b.op("shape", x=x)
    parts = [ctx.b.op("slice_by_size", x=shape, begin=[0], size=[axis])] if axis else []
    parts.append(ctx.const(np.asarray([n], np.int32)))
    if axis < x.rank - 1:
        parts.append(ctx.b.op("slice_by_size", x=shape, begin=[axis + 1], size=[-1]))
    (fill_value,) = ctx.promote(value, dtype=x.dtype)
    return ctx.b.op("fill", shape=ctx.b.op("concat", values=parts, axis=0), value=fill_value)


def concat_pad(ctx, x: Var, pads: dict[int, tuple[int, int]], value) -> Var:
    """Constant padding by concatenating filled blocks: works for every dtype (MIL's pad is float-only)."""
    for axis, (before, after) in sorted(pads.items()):
        parts = [_block(ctx, x, axis, n, value) if n else None for n in (before, after)]
        values = [v for v in (parts[0], x, parts[1]) if v is not None]
        if len(values) > 1:
            x = ctx.b.op("concat", values=values, axis=axis)
    return x


@lowering(aten.constant_pad_nd.default)
def constant_pad_nd(ctx, self, pad, value=0):
    """constant_pad_nd(Tensor self, SymInt[] pad, Scalar value=0) -> Tensor"""
    pads = pads_by_axis(ctx, self, pad)
    x = self
    for axis, (before, after) in pads.items():
        if before < 0 or after < 0:  # a negative pad crops
            x = slice_axis(ctx, x, axis, -before if before < 0 else None, after if after < 0 else None)
    grow = {axis: (max(b, 0), max(a, 0)) for axis, (b, a) in pads.items() if b > 0 or a > 0}
    if not grow:
        return x
    if not x.dtype.is_float:
        return concat_pad(ctx, x, grow, value)
    return ctx.b.op("pad", x=x, pad=mil_pad_list(x, grow), mode="constant", constant_val=float(value))


def edge_pad(ctx, x: Var, padding, mode: str) -> Var:
    """reflect / replicate padding of the last len(padding) / 2 dims."""
    if not x.dtype.is_float:
        raise ctx.unsupported(f"MIL's pad is float-only; {mode} padding of {x.dtype} is decomposed")
    pads = pads_by_axis(ctx, x, padding)
    # MIL's edge modes pad at most the last two dims; a third (the 3d ops) gathers rows by constant index.
    for axis in [a for a in pads if a < x.rank - 2]:
        x = _edge_gather(ctx, x, axis, *pads.pop(axis), mode)
    pads = {a: p for a, p in pads.items() if p != (0, 0)}
    if not pads:
        return x
    return ctx.b.op("pad", x=x, pad=mil_pad_list(x, pads), mode=mode)


def _edge_gather(ctx, x: Var, axis: int, before: int, after: int, mode: str) -> Var:
    d = x.shape[axis]
    if not isinstance(d, int):
        raise ctx.unsupported("edge padding of a dim of run-time size")
    pos = np.arange(-before, d + after)
    if mode == "replicate":
        pos = np.clip(pos, 0, d - 1)
    else:
        pos = np.abs(pos)
        pos = np.where(pos > d - 1, 2 * (d - 1) - pos, pos)
    return ctx.b.op("gather", x=x, indices=ctx.const(pos.astype(np.int32)), axis=axis)


@lowering(aten.reflection_pad1d.default, aten.reflection_pad2d.default, aten.reflection_pad3d.default)
def reflection_pad(ctx, self, padding):
    """reflection_pad2d(Tensor self, SymInt[4] padding) -> Tensor"""
    return edge_pad(ctx, self, padding, "reflect")


@lowering(aten.replication_pad1d.default, aten.replication_pad2d.default, aten.replication_pad3d.default)
def replication_pad(ctx, self, padding):
    """replication_pad2d(Tensor self, SymInt[4] padding) -> Tensor"""
    return edge_pad(ctx, self, padding, "replicate")
