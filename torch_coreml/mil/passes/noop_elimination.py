"""Remove ops that do nothing: `identity`, a `cast` to the dtype its input already has, a `reshape`
to the same static shape, a `transpose` with the identity permutation, and a round trip
`cast(cast(x, wide), narrow)` back to x's own dtype when the middle type holds x exactly.

    before:  %a = cast(x=%x, dtype="fp32")   (x is fp32);  %y = relu(x=%a)
    after:   %y = relu(x=%x)

Function outputs keep their producing op (Core ML rejects outputs that are inputs or consts).
"""

from __future__ import annotations

from .. import dtypes as dt
from ..program import Block, Operation, Program, Var
from .manager import PassResult

# dtype → wider types that represent every one of its values exactly
_EXACT_WIDENINGS = {dt.fp16: (dt.fp32,), dt.int8: (dt.int16, dt.int32), dt.uint8: (dt.int16, dt.int32),
                    dt.int16: (dt.int32,), dt.bool_: (dt.int32, dt.fp16, dt.fp32)}


def eliminate_noops(program: Program) -> PassResult:
    removed = 0
    for fn in program.functions.values():
        removed += _sweep(fn.block, fn.block)
    return PassResult(program, removed > 0)


def _sweep(block: Block, root: Block) -> int:
    removed = 0
    for op in list(block.operations):
        for nested in op.blocks:
            removed += _sweep(nested, root)
        source = _passthrough_source(op)
        if source is None or any(block.returns(v) for v in op.outputs):
            continue
        root.replace_uses(op.outputs[0], source)
        block.remove(op)
        removed += 1
    return removed


def _passthrough_source(op: Operation) -> Var | None:
    if len(op.outputs) != 1:
        return None
    out = op.outputs[0]
    if op.op_type == "identity":
        return op.inputs["x"]
    if op.op_type == "cast":
        x = op.inputs["x"]
        if x.dtype is out.dtype:
            return x
        inner = x.op
        if inner is not None and inner.op_type == "cast":
            origin = inner.inputs["x"]
            if origin.dtype is out.dtype and x.dtype in _EXACT_WIDENINGS.get(origin.dtype, ()):
                return origin
        return None
    if op.op_type == "reshape":
        x = op.inputs["x"]
        if x.type.is_static and out.type.is_static and x.shape == out.shape:
            return x
    if op.op_type == "transpose":
        perm = op.inputs["perm"].value
        if perm is not None and list(perm) == list(range(len(perm))):
            return op.inputs["x"]
    return None
