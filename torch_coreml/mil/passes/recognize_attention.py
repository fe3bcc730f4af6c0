"""Recognize attention spelled out as matmul → scale → mask → softmax → matmul and, on iOS18 targets,
put MIL's `scaled_dot_product_attention` back.

    before:  %kt = transpose(x=%k, perm=[0,1,3,2]);  %s = matmul(x=%q, y=%kt)      (or transpose_y=True)
             %z = mul(x=%s, y=1/√E)                  (or real_div by √E, or %q pre-scaled by 1/√E)
             %m = select(cond=%c, a=-inf, b=%z)      (or add(%z, %float_mask), or no mask)
             %p = softmax(x=%m, axis=-1);  %y = matmul(x=%p, y=%v)
    after:   %y = scaled_dot_product_attention(query=%q, key=%k, value=%v, attn_mask=%mask)

with %mask = logical_not(%c) (folded when %c is a const), %c itself for select(%c, %z, -inf), or the
float mask as it is. The scale must be the op's own 1/√E (E = query's last dim, static): another scale
would need the scores rescaled, which the op cannot express exactly. query, key and value must share
their batch dims (the op does not broadcast them); the rewrite is checked with the catalogue's type
inference before it is made.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from ..ops import CATALOGUE
from ..ops.spec import OpContext, infer_types
from ..program import Block, Operation, Program, Var
from ..targets import Target
from ..types import TensorType
from ._rewrite import Names, close, const_ints, const_scalar, new_const, other_operand, producer, replace_op, \
    use_counts
from .manager import PassResult


def recognize_attention(program: Program) -> PassResult:
    found = 0
    for fn in program.functions.values():
        if fn.target < Target.iOS18:
            continue
        names = Names(fn)
        for block in [fn.block] + [b for op in fn.block.walk() for b in op.blocks]:
            found += _sweep(block, fn.block, names, fn.target)
    return PassResult(program, found > 0)


def _sweep(block: Block, root: Block, names: Names, target) -> int:
    found = 0
    uses = use_counts(root)
    for op in list(block.operations):
        if op.block is not block or op.op_type != "matmul" or not _plain(op):
            continue
        match = _attention(op, uses)
        if match is None:
            continue
        q, k, v, mask = match
        if not _accepted(q, k, v, mask, op, target):
            continue
        inputs = {"query": q, "key": _key_var(k, block, op, names), "value": v}
        if mask is not None:
            inputs["attn_mask"] = _mask_var(mask, block, op, names)
        replace_op(block, root, op, "scaled_dot_product_attention", inputs, names)
        found += 1
    return found


def _accepted(q, k, v, mask, op: Operation, target) -> bool:
    """Whether the op's type inference takes these inputs and gives the replaced matmul's type."""
    inputs = {"query": q, "key": Var("key", TensorType(q.dtype, _shape_of(k))), "value": v}
    if mask is not None:
        kind, m = mask
        inputs["attn_mask"] = m if kind == "float" else Var("mask", TensorType(dt.bool_, m.shape))
    spec = CATALOGUE.lookup("scaled_dot_product_attention", target)
    try:
        types = infer_types(OpContext(spec, inputs, target, name=op.name))
    except Exception:  # shapes the op does not accept (e.g. broadcasting batch dims)
        return False
    return types[0] == op.outputs[0].type


def _key_var(k, block: Block, before: Operation, names: Names) -> Var:
    if isinstance(k, Var):
        return k
    _, k0, perm, kt = k  # a transpose still to make: kᵀ's, with the last two dims swapped back
    key = Var(names.fresh(kt.name + "_key"), TensorType(kt.dtype, _shape_of(k)))
    perm_var = new_const(block, before, names, perm, dt.int32, key.name + "_perm")
    block.insert_before(before, Operation("transpose", names.fresh(key.name + "_op"), {"x": k0, "perm": perm_var},
                                          [key]))
    return key


def _plain(matmul: Operation, transpose_y: bool = False) -> bool:
    tx, ty = matmul.inputs.get("transpose_x"), matmul.inputs.get("transpose_y")
    if tx is not None and (not tx.is_const or bool(tx.value)):
        return False
    if ty is None:
        return not transpose_y
    return ty.is_const and bool(ty.value) == transpose_y


def _attention(op: Operation, uses):
    p, v = op.inputs["x"], op.inputs["y"]
    softmax = producer(p, "softmax")
    if softmax is None or uses(p) != 1 or v.rank < 3:
        return None
    z = softmax.inputs["x"]
    axis = const_ints(softmax.inputs.get("axis")) if "axis" in softmax.inputs else [-1]
    if axis is None or axis[0] % z.rank != z.rank - 1 or uses(z) != 1:
        return None
    qk, mask = next(((_qk(s, uses), m) for s, m in _unmask(z, uses) if _qk(s, uses) is not None), (None, None))
    if qk is None:
        return None
    q, k = qk
    k_shape = _shape_of(k)
    if not (q.rank == len(k_shape) == v.rank) or q.shape[:-2] != k_shape[:-2] or q.shape[:-2] != v.shape[:-2]:
        return None
    return q, k, v, mask


def _shape_of(k):
    if isinstance(k, Var):
        return tuple(k.shape)
    kt = k[3]
    return tuple(kt.shape[:-2]) + (kt.shape[-1], kt.shape[-2])


def _unmask(z: Var, uses):
    """Candidate (scores, mask): mask is ("not", cond), ("bool", cond), ("float", var) or None."""
    sel = producer(z, "select")
    if sel is not None:
        a, b = sel.inputs["a"], sel.inputs["b"]
        if const_scalar(a) == -math.inf and uses(b) == 1:
            yield b, ("not", sel.inputs["cond"])
        if const_scalar(b) == -math.inf and uses(a) == 1:
            yield a, ("bool", sel.inputs["cond"])
        return
    add = producer(z, "add")
    if add is not None:
        for s, m in ((add.inputs["x"], add.inputs["y"]), (add.inputs["y"], add.inputs["x"])):
            if _scores_like(s) and uses(s) == 1 and m.dtype in (dt.fp16, dt.fp32) \
                    and m.shape is not None and len(m.shape) <= s.rank:
                yield s, ("float", m)
        return
    yield z, None


def _scores_like(v: Var) -> bool:
    return producer(v, ("mul", "real_div", "matmul")) is not None


def _qk(scaled: Var, uses):
    """(query, key) when scaled = (query @ key^T) / √E, the scale on the scores or on the query."""
    scale_op = producer(scaled, ("mul", "real_div"))
    scores, factor = scaled, 1.0
    if scale_op is not None:
        if scale_op.op_type == "real_div":
            s, c = scale_op.inputs["x"], scale_op.inputs["y"]
            f = const_scalar(c)
            factor = None if f in (None, 0.0) else 1.0 / f
        else:
            s = next((x for x in (scale_op.inputs["x"], scale_op.inputs["y"])
                      if producer(x, "matmul") is not None), None)
            factor = const_scalar(other_operand(scale_op, s)) if s is not None else None
        if factor is None or uses(s) != 1:
            return None
        scores = s
    mm = producer(scores, "matmul")
    if mm is None:
        return None
    q, kt = mm.inputs["x"], mm.inputs["y"]
    if _plain(mm, transpose_y=True):
        k = kt
    elif _plain(mm):
        t = producer(kt, "transpose")
        perm = const_ints(t.inputs["perm"]) if t is not None else None
        if perm is None or uses(kt) != 1:
            return None
        # kᵀ = transpose(k0, perm), so k = transpose(k0, perm with its last two entries swapped); the
        # layout pass may already have merged kᵀ's swap into the transpose that made k.
        r = len(perm)
        k_perm = [p % r for p in perm[:-2]] + [perm[-1] % r, perm[-2] % r]
        k = t.inputs["x"] if k_perm == list(range(r)) else ("transpose", t.inputs["x"], k_perm, kt)
    else:
        return None
    e = q.shape[-1] if q.shape else None
    if not isinstance(e, int) or e <= 0:
        return None
    if factor == 1.0 and not close(1.0, 1 / math.sqrt(e)):
        pre = producer(q, "mul")  # query pre-scaled: (q · 1/√E) @ kᵀ
        if pre is None or uses(q) != 1:
            return None
        for q0, c in ((pre.inputs["x"], pre.inputs["y"]), (pre.inputs["y"], pre.inputs["x"])):
            if close(const_scalar(c), 1 / math.sqrt(e)) and q0.shape == q.shape:
                return q0, k
        return None
    return (q, k) if close(factor, 1 / math.sqrt(e)) else None


def _mask_var(mask, block: Block, before: Operation, names: Names) -> Var:
    kind, var = mask
    if kind != "not":
        return var
    if var.is_const:
        return new_const(block, before, names, ~np.asarray(var.value, dtype=bool), dt.bool_, before.name + "_mask")
    out = Var(names.fresh(before.name + "_mask"), TensorType(dt.bool_, var.shape))
    block.insert_before(before, Operation("logical_not", names.fresh(out.name + "_op"), {"x": var}, [out]))
    return out
