"""recognize_activations: spelled-out gelu / silu / softmax become the native op, with the same values."""

import math

import pytest
import torch

from torch_coreml.mil.builder import new_function
from torch_coreml.mil.passes import run_default_passes
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import tensor
from torch_coreml.mil.verify import verify_program

from ._evaluate import evaluate

K = math.sqrt(2 / math.pi)


def _run(build, shape=(2, 8, 16), dtype="fp32"):
    fn, b = new_function("main", {"x": tensor(dtype, shape)}, "iOS17")
    prog = Program()
    prog.add(fn)
    fn.block.outputs = [build(b, fn.inputs[0])]
    inputs = {"x": 3 * torch.randn(shape).to(fn.inputs[0].dtype.torch)}
    before = evaluate(fn, inputs)[0]
    name = fn.block.outputs[0].name
    run_default_passes(prog)
    verify_program(prog)
    assert fn.block.outputs[0].name == name
    return fn, before, evaluate(fn, inputs)[0]


def _gelu_tanh_gpt2(b, x):  # 0.5 * x * (1 + tanh(√(2/π) * (x + 0.044715 * x**3))), as torch.export spells it
    inner = b.op("mul", x=b.op("add", x=x, y=b.op("mul", x=b.op("pow", x=x, y=3.0), y=0.044715)), y=K)
    return b.op("mul", x=b.op("mul", x=x, y=0.5), y=b.op("add", x=b.op("tanh", x=inner), y=1.0))


def _gelu_tanh_cube_by_muls(b, x):  # x * 0.5 * (1 + tanh(√(2/π) * (x + 0.044715 * x * x * x)))
    cube = b.op("mul", x=x, y=b.op("mul", x=x, y=x))
    inner = b.op("mul", x=K, y=b.op("add", x=b.op("mul", x=0.044715, y=cube), y=x))
    return b.op("mul", x=b.op("mul", x=x, y=b.op("add", x=1.0, y=b.op("tanh", x=inner))), y=0.5)


def _gelu_erf(b, x):  # x * 0.5 * (1 + erf(x / √2))
    return b.op("mul", x=b.op("mul", x=x, y=0.5),
                y=b.op("add", x=b.op("erf", x=b.op("real_div", x=x, y=math.sqrt(2))), y=1.0))


def _gelu_erf_mul(b, x):  # 0.5 * (x * (1 + erf(x * 0.70710678)))
    erf = b.op("erf", x=b.op("mul", x=x, y=0.7071067811865476))
    return b.op("mul", x=0.5, y=b.op("mul", x=x, y=b.op("add", x=erf, y=1.0)))


def _silu(b, x):
    return b.op("mul", x=b.op("sigmoid", x=x), y=x)


def _softmax_stable(b, x):
    e = b.op("exp", x=b.op("sub", x=x, y=b.op("reduce_max", x=x, axes=[-1], keep_dims=True)))
    return b.op("real_div", x=e, y=b.op("reduce_sum", x=e, axes=[-1], keep_dims=True))


def _softmax_axis1(b, x):
    e = b.op("exp", x=b.op("sub", x=x, y=b.op("reduce_max", x=x, axes=[1], keep_dims=True)))
    return b.op("real_div", x=e, y=b.op("reduce_sum", x=e, axes=[1], keep_dims=True))


@pytest.mark.parametrize("build,native,mode", [
    (_gelu_tanh_gpt2, "gelu", "TANH_APPROXIMATION"),
    (_gelu_tanh_cube_by_muls, "gelu", "TANH_APPROXIMATION"),
    (_gelu_erf, "gelu", "EXACT"),
    (_gelu_erf_mul, "gelu", "EXACT"),
    (_silu, "silu", None),
    (_softmax_stable, "softmax", None),
    (_softmax_axis1, "softmax", None),
])
def test_spelled_out_activation_becomes_native(build, native, mode):
    fn, before, after = _run(build)
    ops = [op for op in fn.block.operations if op.op_type != "const"]
    assert [op.op_type for op in ops] == [native]
    if mode:
        assert ops[0].inputs["mode"].value == mode
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_fp16_gelu_is_recognized_too():
    fn, before, after = _run(_gelu_tanh_gpt2, dtype="fp16")
    assert [op.op_type for op in fn.block.operations if op.op_type != "const"] == ["gelu"]
    torch.testing.assert_close(after, before, rtol=2e-2, atol=2e-2)


def _gelu_wrong_constant(b, x):
    inner = b.op("mul", x=b.op("add", x=x, y=b.op("mul", x=b.op("pow", x=x, y=3.0), y=0.05)), y=K)
    return b.op("mul", x=b.op("mul", x=x, y=0.5), y=b.op("add", x=b.op("tanh", x=inner), y=1.0))


def _gelu_shared_intermediate(b, x):
    t = b.op("tanh", x=b.op("mul", x=b.op("add", x=x, y=b.op("mul", x=b.op("pow", x=x, y=3.0), y=0.044715)), y=K))
    g = b.op("mul", x=b.op("mul", x=x, y=0.5), y=b.op("add", x=t, y=1.0))
    return b.op("add", x=g, y=t)  # tanh is read twice: the pattern must stay spelled out


def _silu_of_other(b, x):
    return b.op("mul", x=b.op("sigmoid", x=b.op("relu", x=x)), y=x)


def _softmax_mismatched_axes(b, x):
    e = b.op("exp", x=b.op("sub", x=x, y=b.op("reduce_max", x=x, axes=[1], keep_dims=True)))
    return b.op("real_div", x=e, y=b.op("reduce_sum", x=e, axes=[-1], keep_dims=True))


@pytest.mark.parametrize("build,absent", [
    (_gelu_wrong_constant, "gelu"), (_gelu_shared_intermediate, "gelu"), (_silu_of_other, "silu"),
])
def test_near_misses_are_left_alone(build, absent):
    fn, before, after = _run(build)
    assert absent not in [op.op_type for op in fn.block.operations]
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_softmax_with_mismatched_max_axis_keeps_the_plain_exp_form():
    # exp(x - max_1) / sum_-1: x - max_1 is not x, so softmax(x - max_1) is the honest rewrite.
    fn, before, after = _run(_softmax_mismatched_axes)
    ops = [op.op_type for op in fn.block.operations if op.op_type != "const"]
    assert ops == ["reduce_max", "sub", "softmax"]
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
