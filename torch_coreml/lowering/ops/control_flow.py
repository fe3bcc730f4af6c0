"""Higher-order control flow: `torch.ops.higher_order.cond` → MIL `cond`, `while_loop` → MIL `while_loop`.

torch.cond (written by hand under torch.export, or produced from a scripted `if` on a tensor by the
TorchScript capture) carries its branches as FX GraphModules. Each branch is lowered by the same graph
walker into a nested MIL block; the branch's placeholders are bound to the cond's operands, which the
nested block reads from the enclosing scope (MIL blocks see outer values). A while_loop's carried
values become the MIL loop variables (block inputs); its additional inputs are read from outside.
"""

from __future__ import annotations

import torch

from ...mil import dtypes as dt
from ...mil.program import Block, Var
from ..registry import lowering


@lowering(torch.ops.higher_order.cond)
def cond(ctx, pred, true_fn, false_fn, operands):
    "cond(pred, true_fn, false_fn, operands) -> tuple of Tensors"
    if ctx.lower_subgraph is None:
        raise ctx.unsupported("torch.cond can only be lowered inside a graph walk")
    operands = list(operands)
    if not isinstance(pred, Var):
        # A predicate export could evaluate (a python bool) needs no MIL cond: lower the taken branch.
        return tuple(ctx.lower_subgraph(true_fn if pred else false_fn, operands, ctx.b))
    if any(isinstance(d, int) and d != 1 for d in pred.shape):
        raise ctx.unsupported(f"torch.cond predicate must hold one element, got shape {pred.shape}")
    if pred.dtype is not dt.bool_:
        pred = ctx.b.op("cast", x=pred, dtype="bool")

    def branch(gm):
        def build(b):
            outs = ctx.lower_subgraph(gm, operands, b)
            if not all(isinstance(v, Var) for v in outs):
                # A node in the branch failed (already recorded) or it returned a non-tensor.
                raise ctx.unsupported("a torch.cond branch has an output that cannot be lowered")
            return [_produced_in(b.block, v, b) for v in outs]
        return build

    out = ctx.b.cond(pred, branch(true_fn), branch(false_fn))
    return out if isinstance(out, tuple) else (out,)


def _produced_in(block: Block, var: Var, b) -> Var:
    # A branch that returns an outer value (an operand, a weight) gets an identity so every block
    # output is defined inside its block, as Core ML's loader expects.
    if var.op is not None and var.op.block is block:
        return var
    return b.op("identity", x=var)


@lowering(torch.ops.higher_order.while_loop)
def while_loop(ctx, cond_fn, body_fn, carried_inputs, additional_inputs):
    "while_loop(cond_fn, body_fn, carried_inputs, additional_inputs) -> tuple of Tensors"
    if ctx.lower_subgraph is None:
        raise ctx.unsupported("while_loop can only be lowered inside a graph walk")
    carried, extra = list(carried_inputs), list(additional_inputs)
    if not all(isinstance(v, Var) for v in carried):
        raise ctx.unsupported("while_loop carries a non-tensor value (an int counter?); carry a tensor")

    def build_cond(b, loop_vars):
        (pred,) = _lowered(ctx, ctx.lower_subgraph(cond_fn, loop_vars + extra, b), "condition")
        if pred.dtype is not dt.bool_:
            pred = b.op("cast", x=pred, dtype="bool")
        return pred

    def build_body(b, loop_vars):
        outs = _lowered(ctx, ctx.lower_subgraph(body_fn, loop_vars + extra, b), "body")
        return [_produced_in(b.block, v, b) for v in outs]

    out = ctx.b.while_loop(carried, build_cond, build_body)
    return out if isinstance(out, tuple) else (out,)


def _lowered(ctx, outs: list, what: str) -> list[Var]:
    if not all(isinstance(v, Var) for v in outs):
        raise ctx.unsupported(f"the while_loop {what} has an output that cannot be lowered")
    return outs
