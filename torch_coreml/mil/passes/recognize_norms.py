"""Recognize a normalization spelled out as reductions and put `layer_norm` / `instance_norm` back.

    before:  %mu = reduce_mean(x=%x, axes=[-1], keep_dims=True);  %d = sub(x=%x, y=%mu)
             %v = reduce_mean(x=mul(%d, %d), axes=[-1], keep_dims=True)   (or pow(%d, 2.0), square(%d))
             %n = mul(x=%d, y=rsqrt(add(%v, ε)))                               (or real_div(%d, sqrt(add(%v, ε))))
             %g = mul(x=%n, y=%gamma);  %y = add(x=%g, y=%beta)               (gamma, beta optional consts)
    after:   %y = layer_norm(x=%x, axes=[-1], gamma=%gamma', beta=%beta', epsilon=ε)

Only reductions over trailing axes match. They give `layer_norm` (gamma/beta folded in when they vary
only along those axes), or, over the spatial axes [2, …] of a rank 3–4 tensor with per-channel
gamma/beta, `instance_norm`. A gamma/beta that fits neither stays as its mul/add after a bare `layer_norm`. A group
norm spelled as reshape → normalize → reshape → affine thereby becomes reshape → layer_norm → reshape →
affine: MIL has no group_norm. rsqrt's own epsilon is added to ε, so the function is unchanged.
"""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..program import Block, Operation, Program, Var
from ._rewrite import sweep_all_blocks, Names, close, const_f32, const_ints, const_scalar, new_const, other_operand, producer, \
    replace_op, use_counts
from .manager import PassResult


def recognize_norms(program: Program) -> PassResult:
    return sweep_all_blocks(program, _sweep)


def _sweep(block: Block, root: Block, names: Names) -> int:
    found = 0
    uses, users = _uses(root)
    for op in list(block.operations):
        if op.block is not block or op.op_type not in ("mul", "real_div"):
            continue
        core = _normalized(op, uses)
        if core is None:
            continue
        x, axes, eps = core
        kind, last, params = _extend(op, x, axes, uses, users)
        inputs = {"x": x}
        dtype = x.dtype
        if kind == "layer_norm":
            inputs["axes"] = new_const(block, last, names, axes, dt.int32, last.name + "_axes")
        for key, value in params.items():
            inputs[key] = new_const(block, last, names, value, dtype, f"{last.name}_{key}")
        inputs["epsilon"] = new_const(block, last, names, np.float32(eps), dtype, last.name + "_epsilon")
        replace_op(last.block, root, last, kind, inputs, names)
        found += 1
    return found


def _uses(root: Block):
    """Live views: `uses(v)` (reads and returns) and `users(v)` (the reading ops, once per read)."""
    return use_counts(root), root.readers


def _normalized(op: Operation, uses):
    """(x, axes, ε) when op = (x − mean(x)) / sqrt(mean((x − mean(x))²) + ε) over static axes."""
    if op.op_type == "mul":
        pairs = ((op.inputs["x"], op.inputs["y"]), (op.inputs["y"], op.inputs["x"]))
        pairs = [(d, r) for d, r in pairs if producer(r, "rsqrt") is not None]
    else:
        pairs = [(op.inputs["x"], op.inputs["y"])] if producer(op.inputs["y"], "sqrt") is not None else []
    for d, r in pairs:
        root = r.op
        extra_eps = 0.0
        if root.op_type == "rsqrt" and "epsilon" in root.inputs:
            extra_eps = const_scalar(root.inputs["epsilon"])
            if extra_eps is None:
                continue
        elif root.op_type == "rsqrt":
            extra_eps = 1e-12
        ve = root.inputs["x"]
        add = producer(ve, "add")
        sub = producer(d, "sub")
        if add is None or sub is None or uses(r) != 1 or uses(ve) != 1:
            continue
        for var, e in ((add.inputs["x"], add.inputs["y"]), (add.inputs["y"], add.inputs["x"])):
            eps = const_scalar(e)
            mean_sq = producer(var, "reduce_mean")
            if eps is None or mean_sq is None or uses(var) != 1:
                continue
            sq = mean_sq.inputs["x"]
            if not _is_square_of(sq, d, uses) or uses(d) != _square_reads(sq) + 1:
                continue
            x, mu = sub.inputs["x"], sub.inputs["y"]
            mean = producer(mu, "reduce_mean")
            if mean is None or mean.inputs["x"] is not x or uses(mu) != 1:
                continue
            axes = _kept_axes(mean, x.rank)
            if axes is None or axes != _kept_axes(mean_sq, x.rank) or d.shape != x.shape \
                    or axes != list(range(x.rank - len(axes), x.rank)) \
                    or op.outputs[0].shape != x.shape or any(not isinstance(x.shape[a], int) for a in axes):
                continue  # trailing, static axes only
            return x, axes, eps + extra_eps
    return None


def _is_square_of(v: Var, d: Var, uses) -> bool:
    if uses(v) != 1:
        return False
    if producer(v, "square") is not None:
        return v.op.inputs["x"] is d
    p = producer(v, "pow")
    if p is not None:
        return p.inputs["x"] is d and close(const_scalar(p.inputs["y"]), 2.0)
    m = producer(v, "mul")
    return m is not None and m.inputs["x"] is d and m.inputs["y"] is d


def _square_reads(v: Var) -> int:
    return 2 if v.op.op_type == "mul" else 1  # mul(d, d) reads d twice; pow(d, 2) and square(d) once


def _kept_axes(reduce: Operation, rank: int):
    axes, keep = const_ints(reduce.inputs.get("axes")), reduce.inputs.get("keep_dims")
    if not axes or keep is None or not keep.is_const or not bool(keep.value):
        return None
    return sorted({a % rank for a in axes})


def _extend(op: Operation, x: Var, axes: list[int], uses, users):
    """The op kind, the last op it replaces and its gamma/beta, following mul(gamma) then add(beta)."""
    rank = x.rank
    spatial = axes == list(range(2, rank)) and rank in (3, 4) and isinstance(x.shape[1], int)
    layouts = [("layer_norm", axes)] + ([("instance_norm", [1])] if spatial else [])
    kind, last, params = None, op, {}
    for op_type, key in (("mul", "gamma"), ("add", "beta")):
        out = last.outputs[0]
        nxt = users(out)
        if uses(out) != 1 or len(nxt) != 1 or nxt[0].op_type != op_type or nxt[0].block is not op.block \
                or nxt[0].outputs[0].shape != x.shape:
            break
        value = const_f32(other_operand(nxt[0], out))
        fits = [(k, _along(value, x.shape, a)) for k, a in layouts if kind in (None, k)] if value is not None else []
        fits = [(k, arr) for k, arr in fits if arr is not None]
        if not fits:
            break
        kind, params[key] = fits[0]
        last = nxt[0]
    return kind or "layer_norm", last, params


def _along(value: np.ndarray, shape, axes: list[int]):
    """A const that broadcasts against x and varies only along `axes`, as an array of x's shape there."""
    rank = len(shape)
    if value.ndim > rank:
        return None
    padded = value.reshape((1,) * (rank - value.ndim) + value.shape)
    if any(padded.shape[i] != 1 for i in range(rank) if i not in axes):
        return None
    if any(padded.shape[i] not in (1, shape[i]) for i in axes):
        return None
    target = [shape[i] for i in axes]
    return np.ascontiguousarray(np.broadcast_to(padded.reshape([padded.shape[i] for i in axes]), target))
