"""Redundant layout elimination: chains of layout ops that collapse into one op, or into nothing.

    transpose ∘ transpose      %a = transpose(x=%x, perm=[0,2,1,3]);  %y = transpose(x=%a, perm=[0,1,3,2])
                          →    %y = transpose(x=%x, perm=[0,2,3,1])          (or %x when the product is identity)
    reshape-like ∘ reshape-like (reshape, expand_dims, squeeze; static result shape, or an outer
    reshape to a const target without 0 entries)
                               %a = reshape(x=%x, shape=[6, 4]);  %y = expand_dims(x=%a, axes=[0])
                          →    %y = reshape(x=%x, shape=[1, 6, 4])           (or %x when shapes match)
    squeeze ∘ expand_dims on the same axes (any shapes)      →  %x
    tile with all reps 1, slice_by_index / slice_by_size that select the whole (static) tensor  →  %x

The outer op is rewritten in place (it keeps its output Var); the inner one is left to dead code, so it
stays when something else still reads it. Function outputs keep their producing op: an op that would
reduce to its input is then left as it is.
"""

from __future__ import annotations

from .. import dtypes as dt
from ..program import Block, Operation, Program, Var
from ._rewrite import sweep_all_blocks, Names, const_ints, new_const
from .manager import PassResult

_RESHAPES = ("reshape", "expand_dims", "squeeze")


def eliminate_redundant_layout(program: Program) -> PassResult:
    return sweep_all_blocks(program, _sweep)


def _sweep(block: Block, root: Block, names: Names) -> int:
    changed = 0
    returned = {id(v) for v in root.outputs} | {id(v) for v in block.outputs}
    for op in list(block.operations):
        if op.block is not block or len(op.outputs) != 1:
            continue
        source = _identity_source(op)
        if source is not None:
            if id(op.outputs[0]) not in returned:
                root.replace_uses(op.outputs[0], source)
                block.remove(op)
                changed += 1
            continue
        if op.op_type == "transpose":
            changed += _merge_transposes(op, block, names)
        elif op.op_type in _RESHAPES:
            changed += _merge_reshapes(op, block, names)
    return changed


def _identity_source(op: Operation) -> Var | None:
    """The input `op` passes through unchanged, if it provably does."""
    x, out = op.inputs.get("x"), op.outputs[0]
    if not isinstance(x, Var):
        return None
    if op.op_type == "squeeze":
        inner = x.op
        if inner is not None and inner.op_type == "expand_dims" and "axes" in op.inputs:
            added = _normalized(const_ints(inner.inputs["axes"]), x.rank)
            removed = _normalized(const_ints(op.inputs["axes"]), x.rank)
            if added is not None and added == removed:
                return inner.inputs["x"]
    same_static = x.type.is_static and out.type.is_static and x.shape == out.shape
    if op.op_type == "tile":
        reps = const_ints(op.inputs["reps"])
        return x if (reps is not None and all(r == 1 for r in reps)) or same_static else None
    if op.op_type == "slice_by_size" and same_static:
        return x
    if op.op_type == "slice_by_index" and same_static:
        stride = const_ints(op.inputs.get("stride")) if "stride" in op.inputs else [1] * x.rank
        if stride is not None and all(s == 1 or d == 1 for s, d in zip(stride, x.shape)):
            return x
    if op.op_type in _RESHAPES and same_static:
        return x
    return None


def _normalized(axes, rank: int):
    return None if axes is None else sorted(a % rank for a in axes)


def _merge_transposes(op: Operation, block: Block, names: Names) -> int:
    inner = op.inputs["x"].op
    if inner is None or inner.op_type != "transpose":
        return 0
    p_in, p_out = const_ints(inner.inputs["perm"]), const_ints(op.inputs["perm"])
    if p_in is None or p_out is None:
        return 0
    rank = len(p_in)
    combined = [p_in[p % rank] % rank for p in p_out]
    op.inputs["x"] = inner.inputs["x"]
    op.inputs["perm"] = new_const(block, op, names, combined, dt.int32, op.name + "_perm")
    return 1  # an identity product is then removed by eliminate_noops (or kept, as a function output)


def _merge_reshapes(op: Operation, block: Block, names: Names) -> int:
    inner = op.inputs["x"].op
    out = op.outputs[0]
    if inner is None or inner.op_type not in _RESHAPES:
        return 0
    source = inner.inputs["x"]
    if not out.type.is_static:
        # symbolic dims: a reshape whose target has no 0 (copy-a-dim) entry depends only on the volume,
        # which the inner op kept, so it may read the inner op's input instead
        target = const_ints(op.inputs.get("shape")) if op.op_type == "reshape" else None
        if target is None or 0 in target:
            return 0
        op.inputs["x"] = source
        return 1
    shape = new_const(block, op, names, list(out.shape), dt.int32, op.name + "_shape")
    op.op_type = "reshape"
    op.inputs = {"x": source, "shape": shape}
    return 1
