"""Each pass on a small program: what it must change, and what it must leave alone."""

import numpy as np
import pytest

from torch_coreml.mil.builder import new_function
from torch_coreml.mil.passes import (
    eliminate_common_subexpressions, eliminate_dead_code, eliminate_noops, fold_constants,
    run_default_passes,
)
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import tensor
from torch_coreml.mil.verify import verify_program

from ._evaluate import evaluate


def _program(inputs=None, target="iOS17"):
    fn, b = new_function("main", inputs or {"x": tensor("fp32", (2, 3))}, target)
    prog = Program()
    prog.add(fn)
    return prog, fn, b


def _types(fn):
    return [op.op_type for op in fn.block.operations]


def test_fold_constants_replaces_an_all_const_op_by_its_value():
    prog, fn, b = _program()
    s = b.op("add", x=np.float32([1, 2, 3]), y=np.float32(1))
    fn.block.outputs = [b.op("add", x=fn.inputs[0], y=s)]
    assert fold_constants(prog).modified
    eliminate_dead_code(prog)
    verify_program(prog)
    assert _types(fn) == ["const", "add"]
    np.testing.assert_array_equal(fn.block.operations[0].attributes["val"], [2, 3, 4])


def test_fold_constants_leaves_ops_that_would_grow_the_package():
    prog, fn, b = _program()
    big = b.op("fill", shape=np.int32([1000, 1000]), value=np.float32(0))
    fn.block.outputs = [b.op("add", x=fn.inputs[0], y=b.op("reduce_sum", x=big, axes=[0, 1], keep_dims=True))]
    fold_constants(prog)
    assert "fill" in _types(fn)


def test_fold_constants_leaves_random_ops():
    prog, fn, b = _program()
    r = b.op("random_uniform", shape=np.int32([2, 3]))
    fn.block.outputs = [b.op("add", x=fn.inputs[0], y=r)]
    assert not fold_constants(prog).modified


def test_fold_constants_keeps_function_outputs_op_produced():
    prog, fn, b = _program()
    fn.block.outputs = [fn.inputs[0], b.op("identity", x=np.float32([1, 2]))]
    fold_constants(prog)
    assert fn.block.outputs[1].op.op_type == "identity"


def test_fold_constants_folds_a_returned_op_into_const_then_identity():
    prog, fn, b = _program()
    out = b.op("reduce_sum", x=np.float32([[1, 2], [3, 4]]), axes=[0], keep_dims=False)
    name = out.name
    fn.block.outputs = [fn.inputs[0], out]
    assert fold_constants(prog).modified
    folded = fn.block.outputs[1]
    assert folded.name == name and folded.op.op_type == "identity"
    assert folded.op.inputs["x"].op.op_type == "const"
    np.testing.assert_array_equal(folded.op.inputs["x"].value, np.float32([4, 6]))
    assert not fold_constants(prog).modified  # the identity of a const is already folded


def test_cse_merges_equal_consts_and_ops_but_not_outputs():
    prog, fn, b = _program()
    x = fn.inputs[0]
    a = b.op("add", x=x, y=b.const(np.float32(1)))
    c = b.op("add", x=x, y=b.const(np.float32(1)))
    fn.block.outputs = [b.op("mul", x=a, y=c)]
    assert eliminate_common_subexpressions(prog).modified
    eliminate_dead_code(prog)
    verify_program(prog)
    assert _types(fn).count("add") == 1 and _types(fn).count("const") == 1

    prog, fn, b = _program()
    fn.block.outputs = [b.op("relu", x=fn.inputs[0]), b.op("relu", x=fn.inputs[0])]
    eliminate_common_subexpressions(prog)
    assert len({id(v) for v in fn.block.outputs}) == 2


@pytest.mark.parametrize("chain,removed", [
    (("fp16", "fp32", "fp16"), True),   # fp16 → fp32 is exact, so the round trip is a no-op
    (("fp32", "fp16", "fp32"), False),  # fp32 → fp16 rounds: the round trip changes values
])
def test_noop_cast_round_trips(chain, removed):
    start, mid, end = chain
    prog, fn, b = _program({"x": tensor(start, (4,))})
    y = b.op("cast", x=b.op("cast", x=fn.inputs[0], dtype=mid), dtype=end)
    fn.block.outputs = [b.op("relu", x=y)]
    run_default_passes(prog)
    verify_program(prog)
    assert (fn.block.outputs[0].op.inputs["x"] is fn.inputs[0]) == removed


def test_noops_identity_and_same_dtype_cast_and_identity_transpose():
    prog, fn, b = _program()
    x = fn.inputs[0]
    y = b.op("identity", x=b.op("cast", x=x, dtype="fp32"))
    y = b.op("transpose", x=y, perm=[0, 1])
    fn.block.outputs = [b.op("relu", x=y)]
    eliminate_noops(prog)
    eliminate_dead_code(prog)
    assert _types(fn) == ["relu"]


def test_dead_code_removes_chains_and_keeps_side_effects():
    prog, fn, b = _program()
    x = fn.inputs[0]
    b.op("relu", x=b.op("sigmoid", x=x))
    fn.block.outputs = [b.op("tanh", x=x)]
    assert eliminate_dead_code(prog).modified
    assert _types(fn) == ["tanh"]


def _conv_program(follow):
    prog, fn, b = _program({"x": tensor("fp32", (1, 3, 8, 8))})
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    c = b.op("conv", x=fn.inputs[0], weight=w, bias=rng.standard_normal(4).astype(np.float32))
    fn.block.outputs = [follow(b, c, rng)]
    return prog, fn


@pytest.mark.parametrize("follow", [
    lambda b, c, r: b.op("batch_norm", x=c, mean=r.random(4).astype(np.float32),
                         variance=r.random(4).astype(np.float32) + 0.5, gamma=r.random(4).astype(np.float32),
                         beta=r.random(4).astype(np.float32), epsilon=np.float32(1e-3)),
    lambda b, c, r: b.op("add", x=c, y=r.random((4, 1, 1)).astype(np.float32)),
    lambda b, c, r: b.op("mul", x=r.random((1, 4, 1, 1)).astype(np.float32), y=c),
], ids=["batch_norm", "add", "mul"])
def test_fuse_affine_folds_into_conv_and_keeps_values(follow):
    import torch

    prog, fn = _conv_program(follow)
    before = _evaluate(fn)
    out_name = fn.block.outputs[0].name
    run_default_passes(prog)
    verify_program(prog)
    assert [t for t in _types(fn) if t != "const"] == ["conv"]
    assert fn.block.outputs[0].name == out_name
    torch.testing.assert_close(_evaluate(fn), before, rtol=1e-5, atol=1e-5)


def test_fuse_affine_leaves_non_per_channel_adds():
    prog, fn = _conv_program(lambda b, c, r: b.op("add", x=c, y=r.random((6, 6)).astype(np.float32)))
    run_default_passes(prog)
    assert "add" in _types(fn)


def _evaluate(fn):
    """Run the top block with catalogue kernels on a fixed input."""
    import torch

    return evaluate(fn, {fn.inputs[0].name: torch.linspace(-1, 1, 192).reshape(1, 3, 8, 8)})[0]
