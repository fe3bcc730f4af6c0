"""recognize_norms: layer / instance / group norm spelled out as reductions become native ops."""

import numpy as np
import pytest
import torch

from torch_coreml.mil.builder import new_function
from torch_coreml.mil.passes import run_default_passes
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import tensor
from torch_coreml.mil.verify import verify_program

from ._evaluate import evaluate

RNG = np.random.default_rng(0)


def _norm(b, x, axes, square="mul", root="rsqrt", eps=1e-5):
    mu = b.op("reduce_mean", x=x, axes=axes, keep_dims=True)
    d = b.op("sub", x=x, y=mu)
    sq = {"mul": lambda: b.op("mul", x=d, y=d), "pow": lambda: b.op("pow", x=d, y=2.0),
          "square": lambda: b.op("square", x=d)}[square]()
    ve = b.op("add", x=b.op("reduce_mean", x=sq, axes=axes, keep_dims=True), y=eps)
    if root == "rsqrt":
        return b.op("mul", x=d, y=b.op("rsqrt", x=ve))
    return b.op("real_div", x=d, y=b.op("sqrt", x=ve))


def _run(build, shape, target="iOS17"):
    fn, b = new_function("main", {"x": tensor("fp32", shape)}, target)
    prog = Program()
    prog.add(fn)
    fn.block.outputs = [build(b, fn.inputs[0])]
    inputs = {"x": 2 + 3 * torch.randn(shape)}
    before = evaluate(fn, inputs)[0]
    name = fn.block.outputs[0].name
    run_default_passes(prog)
    verify_program(prog)
    assert fn.block.outputs[0].name == name
    ops = [op for op in fn.block.operations if op.op_type != "const"]
    return ops, before, evaluate(fn, inputs)[0]


def _f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("build,shape,expect", [
    (lambda b, x: b.op("add", x=b.op("mul", x=_norm(b, x, [-1]), y=_f32(16)), y=_f32(16)), (2, 5, 16),
     ["layer_norm"]),
    (lambda b, x: b.op("add", x=_f32(16), y=b.op("mul", x=_f32(16), y=_norm(b, x, [2], "pow", "sqrt"))),
     (2, 5, 16), ["layer_norm"]),
    (lambda b, x: _norm(b, x, [1, 2], "square"), (2, 5, 16), ["layer_norm"]),
    (lambda b, x: b.op("mul", x=_norm(b, x, [-2, -1]), y=_f32(5, 16)), (2, 5, 16), ["layer_norm"]),
    (lambda b, x: b.op("add", x=b.op("mul", x=_norm(b, x, [2, 3]), y=_f32(1, 3, 1, 1)), y=_f32(3, 1, 1)),
     (2, 3, 4, 5), ["instance_norm"]),
    (lambda b, x: b.op("add", x=_norm(b, x, [-1]), y=_f32(2, 5, 1)), (2, 5, 16), ["layer_norm", "add"]),
], ids=["ln-rsqrt", "ln-pow-sqrt-commuted", "ln-two-axes", "ln-2d-gamma", "instance", "ln-foreign-beta"])
def test_spelled_out_norm_becomes_native(build, shape, expect):
    ops, before, after = _run(build, shape)
    assert [op.op_type for op in ops] == expect
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_group_norm_spelled_out_becomes_reshape_layer_norm_reshape():
    def build(b, x):  # torch's group norm: [N, C, H, W] → [N, G, C/G·H·W], normalize, back, affine
        n = _norm(b, b.op("reshape", x=x, shape=[2, 2, 15]), [-1])
        y = b.op("reshape", x=n, shape=[2, 6, 5, 1])
        return b.op("add", x=b.op("mul", x=y, y=_f32(6, 1, 1)), y=_f32(6, 1, 1))

    ops, before, after = _run(build, (2, 6, 5, 1))
    assert [op.op_type for op in ops] == ["reshape", "layer_norm", "reshape", "mul", "add"]
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def _mean_read_twice(b, x):
    n = _norm(b, x, [-1])
    mu = n.op.inputs["x"].op.inputs["y"]  # n = mul(d, rsqrt(...)), d = sub(x, mu)
    return b.op("add", x=n, y=mu)


@pytest.mark.parametrize("build", [
    lambda b, x: _norm(b, x, [0]),  # leading axis: not a trailing-axes norm
    _mean_read_twice,
], ids=["leading-axis", "mean-read-twice"])
def test_non_norms_are_left_alone(build):
    ops, before, after = _run(build, (4, 8))
    assert not {"layer_norm", "instance_norm"} & {op.op_type for op in ops}
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_mismatched_axes_are_left_alone():
    def build(b, x):
        mu = b.op("reduce_mean", x=x, axes=[-1], keep_dims=True)
        d = b.op("sub", x=x, y=mu)
        ve = b.op("add", x=b.op("reduce_mean", x=b.op("mul", x=d, y=d), axes=[0, 1], keep_dims=True), y=1e-5)
        return b.op("mul", x=d, y=b.op("rsqrt", x=ve))

    ops, _, _ = _run(build, (4, 8))
    assert "layer_norm" not in {op.op_type for op in ops}
