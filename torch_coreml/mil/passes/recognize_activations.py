"""Recognize activations that a decomposition (or a model's hand-written formula) spelled out, and put
the native MIL op back.

    gelu (tanh)   %c = pow(x=%x, y=3.0);  %a = add(x=%x, y=mul(%c, 0.044715));  %t = tanh(x=mul(%a, √(2/π)))
                  %y = mul(x=mul(%x, 0.5), y=add(%t, 1.0))     →  %y = gelu(x=%x, mode="TANH_APPROXIMATION")
    gelu (exact)  %e = erf(x=mul(%x, 1/√2)) (or real_div by √2);  %y = 0.5 · %x · (1 + %e)
                                                               →  %y = gelu(x=%x, mode="EXACT")
    silu          %y = mul(x=%x, y=sigmoid(%x))                →  %y = silu(x=%x)
    softmax       %m = reduce_max(%x, axes=[a], keep_dims=True);  %e = exp(sub(%x, %m))  (or exp(%x))
                  %y = real_div(%e, reduce_sum(%e, axes=[a], keep_dims=True))  →  %y = softmax(x=%x, axis=a)

The cube may be pow(x, 3) or x·x·x; the product 0.5 · x · (1 + t) may associate either way. Matching is
conservative: every intermediate is read only inside the pattern, constants equal the formula's to a
relative 1e-6 (fp16 data is read as stored), the root op keeps its output Var.
"""

from __future__ import annotations

import math

from .. import dtypes as dt
from ..program import Block, Operation, Program, Var
from ._rewrite import sweep_all_blocks, Names, close, const_ints, const_scalar, new_const, other_operand, producer, replace_op, \
    use_counts
from .manager import PassResult

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def recognize_activations(program: Program) -> PassResult:
    return sweep_all_blocks(program, _sweep)


def _sweep(block: Block, root: Block, names: Names) -> int:
    found = 0
    uses = use_counts(root)
    for op in list(block.operations):
        if op.block is not block:
            continue  # removed earlier in this sweep
        match = None
        if op.op_type == "mul":
            match = _gelu(op, uses) or _silu(op, uses)
        elif op.op_type == "real_div":
            match = _softmax(op, uses)
        if match is None:
            continue
        op_type, inputs = match
        inputs = {k: new_const(block, op, names, v, dt.string if isinstance(v, str) else dt.int32, op.name + "_" + k)
                  if not isinstance(v, Var) else v for k, v in inputs.items()}
        replace_op(block, root, op, op_type, inputs, names)
        found += 1
    return found


def _single(v: Var, uses) -> bool:
    return uses(v) == 1


def _gelu(op: Operation, uses):
    """`op` is the last mul of 0.5 · x · (1 + f(x)); returns the gelu for f = tanh(...) or erf(...)."""
    for x, one_plus in _half_x_times(op, uses):
        inner = _one_plus(one_plus, uses)
        if inner is None:
            continue
        if inner.op_type == "tanh" and _tanh_argument_of(inner.inputs["x"], x, uses):
            return "gelu", {"x": x, "mode": "TANH_APPROXIMATION"}
        if inner.op_type == "erf" and _scaled(inner.inputs["x"], x, 1 / math.sqrt(2.0), uses):
            return "gelu", {"x": x, "mode": "EXACT"}
    return None


def _half_x_times(op: Operation, uses):
    """Candidate (x, other) with op = 0.5 · x · other, in each association of the two muls."""
    a, b = op.inputs["x"], op.inputs["y"]
    for p, q in ((a, b), (b, a)):
        m = producer(p, "mul")
        if m is None or not _single(p, uses):
            continue
        if close(const_scalar(q), 0.5):  # (x · other) · 0.5
            yield m.inputs["x"], m.inputs["y"]
            yield m.inputs["y"], m.inputs["x"]
        for r, s in ((m.inputs["x"], m.inputs["y"]), (m.inputs["y"], m.inputs["x"])):
            if close(const_scalar(s), 0.5):  # (x · 0.5) · other  or  (other · 0.5) · x
                yield r, q
                yield q, r


def _one_plus(v: Var, uses) -> Operation | None:
    add = producer(v, "add")
    if add is None or not _single(v, uses):
        return None
    for t, c in ((add.inputs["x"], add.inputs["y"]), (add.inputs["y"], add.inputs["x"])):
        inner = producer(t, ("tanh", "erf"))
        if inner is not None and _single(t, uses) and close(const_scalar(c), 1.0):
            return inner
    return None


def _scaled(v: Var, x: Var, factor: float, uses) -> Var | None:
    """Whether v = x · factor (or x / (1/factor)), read once."""
    op = producer(v, ("mul", "real_div"))
    if op is None or not _single(v, uses):
        return False
    if op.op_type == "real_div":
        return op.inputs["x"] is x and close(const_scalar(op.inputs["y"]), 1 / factor)
    return close(const_scalar(other_operand(op, x)), factor) if other_operand(op, x) is not None else False


def _tanh_argument_of(v: Var, x: Var, uses) -> bool:
    """v = √(2/π) · (x + 0.044715 · x³)."""
    m = producer(v, "mul")
    if m is None or not _single(v, uses):
        return False
    for s, c in ((m.inputs["x"], m.inputs["y"]), (m.inputs["y"], m.inputs["x"])):
        add = producer(s, "add")
        if add is None or not _single(s, uses) or not close(const_scalar(c), _SQRT_2_OVER_PI):
            continue
        cubic = other_operand(add, x)
        if cubic is None or not _single(cubic, uses):
            continue
        k = producer(cubic, "mul")
        if k is None:
            continue
        for cube, c2 in ((k.inputs["x"], k.inputs["y"]), (k.inputs["y"], k.inputs["x"])):
            if close(const_scalar(c2), 0.044715) and _is_cube(cube, x, uses):
                return True
    return False


def _is_cube(v: Var, x: Var, uses) -> bool:
    if not _single(v, uses):
        return False
    p = producer(v, "pow")
    if p is not None:
        return p.inputs["x"] is x and close(const_scalar(p.inputs["y"]), 3.0)
    m = producer(v, "mul")
    if m is None:
        return False
    sq = other_operand(m, x)
    sq_op = producer(sq, "mul") if sq is not None else None
    return sq_op is not None and _single(sq, uses) and sq_op.inputs["x"] is x and sq_op.inputs["y"] is x


def _silu(op: Operation, uses):
    for x, s in ((op.inputs["x"], op.inputs["y"]), (op.inputs["y"], op.inputs["x"])):
        sig = producer(s, "sigmoid")
        if sig is not None and _single(s, uses) and sig.inputs["x"] is x:
            return "silu", {"x": x}
    return None


def _softmax(op: Operation, uses):
    e, total = op.inputs["x"], op.inputs["y"]
    exp, rsum = producer(e, "exp"), producer(total, "reduce_sum")
    if exp is None or rsum is None or rsum.inputs["x"] is not e or uses(e) != 2 \
            or not _single(total, uses):
        return None
    axis = _one_kept_axis(rsum, e.rank)
    if axis is None or e.shape != op.outputs[0].shape:
        return None
    arg = exp.inputs["x"]
    sub = producer(arg, "sub")
    if sub is not None and _single(arg, uses):
        x, m = sub.inputs["x"], sub.inputs["y"]
        rmax = producer(m, "reduce_max")
        if rmax is not None and rmax.inputs["x"] is x and _single(m, uses) and _one_kept_axis(rmax, x.rank) == axis:
            return "softmax", {"x": x, "axis": axis}
    # exp(x) / sum(exp(x)): softmax is the same function, computed without overflow
    return "softmax", {"x": arg, "axis": axis}


def _one_kept_axis(reduce: Operation, rank: int) -> int | None:
    axes = const_ints(reduce.inputs.get("axes"))
    keep = reduce.inputs.get("keep_dims")
    if axes is None or len(axes) != 1 or keep is None or not keep.is_const or not bool(keep.value):
        return None
    return axes[0] % rank
