"""recognize_attention: spelled-out attention becomes scaled_dot_product_attention on iOS18 only."""

import math

import numpy as np
import pytest
import torch

from torch_coreml.mil.builder import new_function
from torch_coreml.mil.passes import run_default_passes
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import tensor
from torch_coreml.mil.verify import verify_program

from ._evaluate import evaluate

B, H, L, S, E = 2, 3, 5, 7, 16
CAUSAL = ~np.tril(np.ones((L, S), bool)).reshape(1, 1, L, S)  # True where attention is cut


def _run(build, target="iOS18", kshape=(B, H, S, E), extra=None):
    shapes = {"q": (B, H, L, E), "k": kshape, "v": (B, H, S, 8), **(extra or {})}
    fn, b = new_function("main", {n: tensor("fp32", s) for n, s in shapes.items()}, target)
    prog = Program()
    prog.add(fn)
    fn.block.outputs = [build(b, *fn.inputs)]
    before = evaluate(fn)[0]
    name = fn.block.outputs[0].name
    run_default_passes(prog)
    verify_program(prog)
    assert fn.block.outputs[0].name == name
    return [op.op_type for op in fn.block.operations if op.op_type != "const"], before, evaluate(fn)[0]


def _kt(b, k):
    return b.op("transpose", x=k, perm=[0, 1, 3, 2])


def _plain(b, q, k, v):
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=s, axis=-1), y=v)


def _div_transpose_y(b, q, k, v):
    s = b.op("real_div", x=b.op("matmul", x=q, y=k, transpose_y=True), y=math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=s, axis=3), y=v)


def _prescaled_query(b, q, k, v):
    s = b.op("matmul", x=b.op("mul", x=q, y=1 / math.sqrt(E)), y=_kt(b, k))
    return b.op("matmul", x=b.op("softmax", x=s), y=v)


def _causal_select(b, q, k, v):  # GPT-2's masked_fill(bias == 0, -inf)
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=b.op("select", cond=CAUSAL, a=-math.inf, b=s), axis=-1), y=v)


def _keep_select(b, q, k, v):
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=b.op("select", cond=~CAUSAL, a=s, b=-math.inf), axis=-1), y=v)


def _float_mask(b, q, k, v):
    mask = np.where(CAUSAL, -1e4, 0.0).astype(np.float32)
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=b.op("add", x=s, y=mask), axis=-1), y=v)


def _runtime_float_mask_first(b, q, k, v, m):  # HF: (1 - mask) * -10000 + scores: the mask comes from a mul too
    ext = b.op("mul", x=b.op("sub", x=1.0, y=m), y=-1e4)
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=b.op("add", x=ext, y=s), axis=-1), y=v)


def _merged_head_transpose(b, q, k, v):  # kᵀ made straight from [B, S, H, E] in one transpose
    s = b.op("mul", x=b.op("matmul", x=q, y=b.op("transpose", x=k, perm=[0, 2, 3, 1])), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=s, axis=-1), y=v)


@pytest.mark.parametrize("build,kshape,expect", [
    (_plain, (B, H, S, E), []),
    (_div_transpose_y, (B, H, S, E), []),
    (_prescaled_query, (B, H, S, E), []),
    (_causal_select, (B, H, S, E), []),
    (_keep_select, (B, H, S, E), []),
    (_float_mask, (B, H, S, E), []),
    (_runtime_float_mask_first, (B, H, S, E), ["sub", "mul"]),
    (_merged_head_transpose, (B, S, H, E), ["transpose"]),
], ids=["plain", "div-transpose_y", "prescaled-q", "causal-select", "keep-select", "float-mask", "mask-first",
        "head-transpose"])
def test_spelled_out_attention_becomes_sdpa(build, kshape, expect):
    extra = {"m": (B, 1, 1, S)} if build is _runtime_float_mask_first else None
    ops, before, after = _run(build, kshape=kshape, extra=extra)
    assert ops == expect + ["scaled_dot_product_attention"]
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def _other_scale(b, q, k, v):
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=0.5)
    return b.op("matmul", x=b.op("softmax", x=s, axis=-1), y=v)


def _softmax_other_axis(b, q, k, v):
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=s, axis=2), y=v)


def _finite_fill(b, q, k, v):  # -1e9 is not -inf: rows cut entirely would differ
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    return b.op("matmul", x=b.op("softmax", x=b.op("select", cond=CAUSAL, a=-1e9, b=s), axis=-1), y=v)


def _scores_reused(b, q, k, v):
    s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
    p = b.op("softmax", x=s, axis=-1)
    return b.op("add", x=b.op("reduce_sum", x=b.op("matmul", x=p, y=v), axes=[-1], keep_dims=True),
                y=b.op("reduce_sum", x=s, axes=[-1], keep_dims=True))


@pytest.mark.parametrize("build", [_other_scale, _softmax_other_axis, _finite_fill, _scores_reused])
def test_near_misses_stay_spelled_out(build):
    ops, before, after = _run(build)
    assert "scaled_dot_product_attention" not in ops
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_batch_broadcasting_key_is_left_alone():
    ops, _, _ = _run(_plain, kshape=(1, H, S, E))  # matmul broadcasts batch dims; the op does not
    assert "scaled_dot_product_attention" not in ops


def test_only_on_ios18():
    ops, _, _ = _run(_plain, target="iOS17")
    assert "scaled_dot_product_attention" not in ops and "softmax" in ops


def test_runtime_bool_mask_is_negated_once():
    def build(b, q, k, v, cut):
        s = b.op("mul", x=b.op("matmul", x=q, y=_kt(b, k)), y=1 / math.sqrt(E))
        return b.op("matmul", x=b.op("softmax", x=b.op("select", cond=cut, a=-math.inf, b=s), axis=-1), y=v)

    fn, b = new_function("main", {"q": tensor("fp32", (B, H, L, E)), "k": tensor("fp32", (B, H, S, E)),
                                  "v": tensor("fp32", (B, H, S, 8)), "cut": tensor("bool", (1, 1, L, S))}, "iOS18")
    prog = Program()
    prog.add(fn)
    fn.block.outputs = [build(b, *fn.inputs)]
    inputs = {"cut": torch.from_numpy(CAUSAL)}
    before = evaluate(fn, inputs)[0]
    run_default_passes(prog)
    verify_program(prog)
    ops = [op.op_type for op in fn.block.operations if op.op_type != "const"]
    assert ops == ["logical_not", "scaled_dot_product_attention"]
    torch.testing.assert_close(evaluate(fn, inputs)[0], before, rtol=1e-5, atol=1e-5)
