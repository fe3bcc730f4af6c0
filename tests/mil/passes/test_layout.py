"""eliminate_redundant_layout: chains of layout ops collapse, values stay bit-identical."""

import pytest
import torch

from torch_coreml.mil.builder import new_function
from torch_coreml.mil.passes import eliminate_dead_code, eliminate_redundant_layout, run_default_passes
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import tensor
from torch_coreml.mil.verify import verify_program

from ._evaluate import evaluate


def _check(build, shape=(2, 3, 4, 5), expect=(), target="iOS17"):
    fn, b = new_function("main", {"x": tensor("fp32", shape)}, target)
    prog = Program()
    prog.add(fn)
    fn.block.outputs = [b.op("relu", x=build(b, fn.inputs[0]))]
    before = evaluate(fn)
    name = fn.block.outputs[0].name
    run_default_passes(prog)
    verify_program(prog)
    assert [op.op_type for op in fn.block.operations if op.op_type != "const"] == list(expect) + ["relu"]
    assert fn.block.outputs[0].name == name
    for a, e in zip(evaluate(fn), before):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize("build,expect", [
    (lambda b, x: b.op("transpose", x=b.op("transpose", x=x, perm=[0, 2, 1, 3]), perm=[0, 1, 3, 2]),
     ["transpose"]),
    (lambda b, x: b.op("transpose", x=b.op("transpose", x=x, perm=[0, 2, 3, 1]), perm=[0, 3, 1, 2]), []),
    (lambda b, x: b.op("transpose", x=b.op("transpose", x=b.op("transpose", x=x, perm=[1, 0, 2, 3]),
                                             perm=[0, 1, 3, 2]), perm=[-1, 1, 2, 0]), ["transpose"]),
    (lambda b, x: b.op("reshape", x=b.op("reshape", x=x, shape=[6, 20]), shape=[2, 3, 4, 5]), []),
    (lambda b, x: b.op("reshape", x=b.op("reshape", x=x, shape=[6, 20]), shape=[120]), ["reshape"]),
    (lambda b, x: b.op("expand_dims", x=b.op("reshape", x=x, shape=[6, 20]), axes=[0]), ["reshape"]),
    (lambda b, x: b.op("squeeze", x=b.op("expand_dims", x=x, axes=[1, -1]), axes=[-1, 1]), []),
    (lambda b, x: b.op("expand_dims", x=b.op("squeeze", x=b.op("expand_dims", x=x, axes=[0]), axes=[0]),
                       axes=[0]), ["expand_dims"]),
    (lambda b, x: b.op("tile", x=x, reps=[1, 1, 1, 1]), []),
    (lambda b, x: b.op("slice_by_index", x=x, begin=[0, 0, 0, 0], end=[2, 3, 4, 5]), []),
    (lambda b, x: b.op("slice_by_index", x=x, begin=[0, 0, 0, 0], end=[0, 0, 0, 0],
                       end_mask=[True] * 4), []),
    (lambda b, x: b.op("slice_by_size", x=x, begin=[0, 0, 0, 0], size=[-1, 3, -1, 5]), []),
], ids=["tt-merge", "tt-identity", "ttt-merge", "rr-identity", "rr-merge", "re-merge", "squeeze-expand",
        "esqe", "tile", "slice-index", "slice-mask", "slice-size"])
def test_layout_chain_collapses(build, expect):
    _check(build, expect=expect)


@pytest.mark.parametrize("build,kept", [
    (lambda b, x: b.op("tile", x=x, reps=[1, 2, 1, 1]), "tile"),
    (lambda b, x: b.op("slice_by_index", x=x, begin=[0, 0, 0, 0], end=[2, 3, 4, 4]), "slice_by_index"),
    (lambda b, x: b.op("slice_by_index", x=x, begin=[0, 0, 0, 0], end=[0, 0, 0, 0], stride=[1, -1, 1, 1],
                       begin_mask=[True] * 4, end_mask=[True] * 4), "slice_by_index"),  # a reversal
], ids=["tile-2", "slice-part", "reversal"])
def test_layout_keeps_ops_that_change_values(build, kept):
    shape = (1, 3, 4, 5)
    fn, b = new_function("main", {"x": tensor("fp32", shape)}, "iOS17")
    prog = Program()
    prog.add(fn)
    fn.block.outputs = [b.op("relu", x=build(b, fn.inputs[0]))]
    before = evaluate(fn)
    run_default_passes(prog)
    verify_program(prog)
    assert kept in [op.op_type for op in fn.block.operations]
    torch.testing.assert_close(evaluate(fn)[0], before[0], rtol=0, atol=0)


def test_layout_keeps_function_outputs_and_shared_inner_ops():
    fn, b = new_function("main", {"x": tensor("fp32", (2, 3))}, "iOS17")
    prog = Program()
    prog.add(fn)
    t = b.op("transpose", x=fn.inputs[0], perm=[1, 0])
    out = b.op("transpose", x=t, perm=[1, 0])
    fn.block.outputs = [out, b.op("relu", x=t)]
    assert eliminate_redundant_layout(prog).modified
    eliminate_dead_code(prog)
    verify_program(prog)
    assert fn.block.outputs[0] is out and out.op.op_type == "transpose" and out.op.inputs["x"] is fn.inputs[0]
    assert fn.block.outputs[1].op.inputs["x"] is t  # the inner transpose stays for its other reader


def test_layout_squeeze_of_expand_dims_on_symbolic_shapes():
    from torch_coreml.mil.types import Symbol

    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), 4))}, "iOS17")
    prog = Program()
    prog.add(fn)
    fn.block.outputs = [b.op("relu", x=b.op("squeeze", x=b.op("expand_dims", x=fn.inputs[0], axes=[0]), axes=[0]))]
    run_default_passes(prog)
    assert fn.block.outputs[0].op.inputs["x"] is fn.inputs[0]


def test_layout_reshape_of_reshape_on_symbolic_shapes():
    from torch_coreml.mil.types import Symbol

    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), 4, 6))}, "iOS17")
    prog = Program()
    prog.add(fn)
    a = b.op("reshape", x=fn.inputs[0], shape=[-1, 24])
    fn.block.outputs = [b.op("relu", x=b.op("reshape", x=a, shape=[-1, 8, 3]))]
    run_default_passes(prog)
    verify_program(prog)
    first = fn.block.outputs[0].op.inputs["x"].op
    assert first.op_type == "reshape" and first.inputs["x"] is fn.inputs[0]
    x = torch.randn(5, 4, 6)
    torch.testing.assert_close(evaluate(fn, {"x": x})[0], torch.relu(x.reshape(-1, 8, 3)))
