"""Shorten cast chains whose first step is exact: cast(cast(x, wide), T) → cast(x, T).

    before:  %w = cast(x=%x, dtype="fp32")   (x is fp16: every fp16 value is an fp32 value)
             %y = cast(x=%w, dtype="int32")
    after:   %y = cast(x=%x, dtype="int32")

The cast kernel converts by value (truncation, rounding, wrap-around and "nonzero is true" depend only
on the value), so skipping an exact widening changes nothing. A lossy first step (fp32 → fp16,
int32 → fp16, fp16 → int32) is never skipped: cast(cast(x, fp16), fp32) rounds, and must keep rounding.
When T is x's own dtype the outer cast becomes a no-op that `eliminate_noops` removes.

The casts the graph walker puts at function inputs and outputs (fp32 I/O around an fp16 program) are
single casts between different dtypes, so neither this pass nor `eliminate_noops` touches them.
"""

from __future__ import annotations

from ..program import Block, Program
from .manager import PassResult
from .noop_elimination import _EXACT_WIDENINGS


def shorten_cast_chains(program: Program) -> PassResult:
    changed = 0
    for fn in program.functions.values():
        for block in [fn.block] + [b for op in fn.block.walk() for b in op.blocks]:
            changed += _sweep(block)
    return PassResult(program, changed > 0)


def _sweep(block: Block) -> int:
    changed = 0
    for op in block.operations:
        if op.op_type != "cast":
            continue
        inner = op.inputs["x"].op
        if inner is None or inner.op_type != "cast":
            continue
        origin = inner.inputs["x"]
        if inner.outputs[0].dtype in _EXACT_WIDENINGS.get(origin.dtype, ()):
            op.inputs["x"] = origin  # the inner cast is left to dead code if nothing else reads it
            changed += 1
    return changed
