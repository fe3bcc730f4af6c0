"""Fold per-channel affine ops that follow a `conv` or `linear` into its weight and bias.

    before:  %c = conv(x=%x, weight=%W, bias=%b);  %y = batch_norm(x=%c, mean=%m, variance=%v,
                                                                  gamma=%g, beta=%be, epsilon=ε)
    after:   %y = conv(x=%x, weight=%W', bias=%b')
             with s = g / sqrt(v + ε):  W' = W · s (per output channel),  b' = (b − m) · s + be

Also `conv`/`linear` followed by `add` of a per-channel const (→ bias) or `mul` by a per-channel
const (→ weight and bias scaled). The folded op must be the only user of the conv/linear output,
and every parameter a const. Arithmetic is done in fp32, then stored in the weight's dtype.
"""

from __future__ import annotations

import numpy as np

from ..program import Block, Operation, Program, Var
from ..types import TensorType
from ._rewrite import use_counts
from .manager import PassResult

_PRODUCERS = ("conv", "linear")


def fuse_affine(program: Program) -> PassResult:
    fused = 0
    for fn in program.functions.values():
        names = {v.name for v in fn.inputs} | {v.name for op in fn.block.walk() for v in op.outputs}
        fused += _fuse_block(fn.block, names)
    return PassResult(program, fused > 0)


def _fuse_block(block: Block, names: set[str]) -> int:
    fused = 0
    uses = use_counts(block)
    for op in list(block.operations):
        if op.block is None or op.op_type not in ("batch_norm", "add", "mul"):
            continue
        producer = _producer(op, uses, block)
        if producer is None:
            continue
        affine = _affine_of(op, producer)
        if affine is None:
            continue
        scale, shift = affine
        if _apply(producer, scale, shift, block, names):
            out, new = op.outputs[0], producer.outputs[0]
            block.replace_uses(out, new)
            # The folded op's output name may be a model output name: the producer takes it over.
            new.name = out.name
            block.remove(op)
            fused += 1
    return fused


def _producer(op: Operation, uses, block: Block) -> Operation | None:
    """The conv/linear feeding `op` (as x), if `op` is its only user and it sits in this block."""
    candidates = [op.inputs.get("x")]
    if op.op_type in ("add", "mul"):
        candidates.append(op.inputs.get("y"))
    for v in candidates:
        if isinstance(v, Var) and v.op is not None and v.op.op_type in _PRODUCERS \
                and v.op.block is block and uses(v) == 1 and v.op.inputs["weight"].is_const \
                and _bias_is_const_or_absent(v.op):
            return v.op
    return None


def _bias_is_const_or_absent(op: Operation) -> bool:
    b = op.inputs.get("bias")
    return b is None or b.is_const


def _channels(producer: Operation) -> int:
    return int(producer.inputs["weight"].shape[0])


def _affine_of(op: Operation, producer: Operation):
    """(scale, shift) per output channel, as fp32 arrays, or None when `op` is not per-channel."""
    c = _channels(producer)
    if op.op_type == "batch_norm":
        params = {k: op.inputs.get(k) for k in ("mean", "variance", "gamma", "beta", "epsilon")}
        if any(v is not None and not v.is_const for v in params.values()):
            return None
        mean = _f32(params["mean"].value)
        var = _f32(params["variance"].value)
        gamma = _f32(params["gamma"].value) if params["gamma"] is not None else np.ones(c, np.float32)
        beta = _f32(params["beta"].value) if params["beta"] is not None else np.zeros(c, np.float32)
        eps = float(params["epsilon"].value) if params["epsilon"] is not None else 1e-5
        scale = gamma / np.sqrt(var + eps)
        return scale, beta - mean * scale
    other = op.inputs["y"] if op.inputs["x"] is producer.outputs[0] else op.inputs["x"]
    if not other.is_const:
        return None
    vec = _per_channel_vector(_f32(other.value), producer, c)
    if vec is None:
        return None
    if op.op_type == "add":
        return np.ones(c, np.float32), vec
    return vec, np.zeros(c, np.float32)


def _per_channel_vector(value: np.ndarray, producer: Operation, c: int):
    """A const broadcasting along the producer's channel axis only, as a length-c vector."""
    out_rank = producer.outputs[0].rank
    if value.ndim > out_rank:
        return None
    shape = (1,) * (out_rank - value.ndim) + value.shape
    channel_axis = 1 if producer.op_type == "conv" else out_rank - 1
    if any(d != 1 for i, d in enumerate(shape) if i != channel_axis):
        return None
    vec = value.reshape(-1)
    if vec.size == 1:
        return np.full(c, vec[0], np.float32)
    return vec if vec.size == c else None


def _f32(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float32)


def _apply(producer: Operation, scale: np.ndarray, shift: np.ndarray, block: Block, names: set[str]) -> bool:
    weight = producer.inputs["weight"]
    groups = producer.inputs.get("groups")
    if producer.op_type == "conv" and groups is not None and not groups.is_const:
        return False
    w = _f32(weight.value)
    bias_var = producer.inputs.get("bias")
    b = _f32(bias_var.value) if bias_var is not None else np.zeros(w.shape[0], np.float32)
    new_w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    new_b = b * scale + shift
    w_dtype = weight.dtype
    b_dtype = bias_var.dtype if bias_var is not None else w_dtype
    producer.inputs["weight"] = _new_const(block, producer, new_w.astype(w_dtype.numpy), weight, names, "weight")
    template = bias_var if bias_var is not None else weight
    producer.inputs["bias"] = _new_const(block, producer, new_b.astype(b_dtype.numpy), template, names, "bias",
                                         dtype=b_dtype)
    return True


def _new_const(block: Block, before: Operation, value: np.ndarray, template: Var, names: set[str], role: str,
               dtype=None) -> Var:
    name = _fresh(names, f"{before.name}_fused_{role}")
    var = Var(name, TensorType(dtype or template.dtype, value.shape))
    block.insert_before(before, Operation("const", name + "_op", {}, [var], attributes={"val": value}))
    return var


def _fresh(names: set[str], base: str) -> str:
    name, i = base, 0
    while name in names:
        i += 1
        name = f"{base}_{i}"
    names.add(name)
    return name
