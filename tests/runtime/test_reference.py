"""The reference executor: runs saved packages, checks inputs, computes in the program's dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torch_coreml.errors import MILTypeError, RuntimeInputError
from torch_coreml.format.description import Enumerated, Ranges, describe_function
from torch_coreml.format.serialize import save_model
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import StateType, Symbol, TensorType, tensor
from torch_coreml.runtime.reference import ReferenceExecutor

from ..oracle import assert_coremltools_accepts


def save(tmp_path, fn, flexibility=None, name="m"):
    program = Program()
    program.add(fn)
    path = save_model(tmp_path / f"{name}.mlpackage", program, describe_function(fn, flexibility=flexibility))
    assert_coremltools_accepts(path)
    return path


@pytest.fixture
def affine(tmp_path):
    """y = relu(x * w + b) with a blob weight, for x: fp32 [2, 12]."""
    fn, b = new_function("main", {"x": tensor("fp32", (2, 12))}, "iOS17")
    w = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12)
    scaled = b.op("mul", x=fn.inputs[0], y=w, name="scaled")
    fn.block.outputs = [b.op("relu", x=b.op("add", x=scaled, y=np.float32(0.5), name="shifted"), name="y")]
    return ReferenceExecutor(save(tmp_path, fn)), torch.from_numpy(w)


def test_runs_the_saved_program(affine):
    executor, w = affine
    x = torch.randn(2, 12)
    out = executor.run({"x": x})
    assert list(out) == ["y"]
    torch.testing.assert_close(out["y"], torch.relu(x * w + 0.5))


def test_captures_every_intermediate(affine):
    executor, w = affine
    x = torch.randn(2, 12)
    values = executor.run({"x": x}, capture_intermediates=True)
    assert {"scaled", "shifted", "y"} <= set(values)
    torch.testing.assert_close(values["scaled"], x * w)


def test_fp16_programs_compute_in_fp16(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp16", (4,))}, "iOS16")
    fn.block.outputs = [b.op("add", x=b.op("add", x=fn.inputs[0], y=np.float16(1e-4)), y=np.float16(-1.0))]
    executor = ReferenceExecutor(save(tmp_path, fn))
    out = executor.run({"x": torch.ones(4)})
    (y,) = out.values()
    assert y.dtype == torch.float16
    # In fp16, 1 + 1e-4 rounds back to 1; fp32 arithmetic would give 1e-4.
    torch.testing.assert_close(y, torch.zeros(4, dtype=torch.float16))


def test_while_loop_runs_its_blocks(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp32", (3,))}, "iOS17")
    zero = b.const(np.int32(0), name="zero")
    _, y = b.while_loop([zero, fn.inputs[0]],
                        lambda bb, v: bb.op("less", x=v[0], y=np.int32(4)),
                        lambda bb, v: [bb.op("add", x=v[0], y=np.int32(1)), bb.op("mul", x=v[1], y=2.0)])
    fn.block.outputs = [b.op("relu", x=y)]
    executor = ReferenceExecutor(save(tmp_path, fn))
    x = torch.tensor([1.0, -1.0, 0.5])
    torch.testing.assert_close(next(iter(executor.run({"x": x}).values())), torch.relu(x * 16))


def test_cond_takes_the_right_branch(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp32", (3,))}, "iOS17")
    x = fn.inputs[0]
    pred = b.op("greater", x=b.op("reduce_sum", x=x, axes=[0]), y=0.0)
    fn.block.outputs = [b.cond(pred, lambda t: [t.op("mul", x=x, y=2.0)], lambda e: [e.op("mul", x=x, y=-1.0)])]
    executor = ReferenceExecutor(save(tmp_path, fn))
    for x in (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, -2.0, 0.5])):
        expected = x * 2 if x.sum() > 0 else -x
        torch.testing.assert_close(next(iter(executor.run({"x": x}).values())), expected)


# ----------------------------------------------------------------------------- input checks ---


def test_missing_and_unknown_inputs(affine):
    executor, _ = affine
    with pytest.raises(RuntimeInputError, match=r"missing input\(s\) \['x'\]"):
        executor.run({})
    with pytest.raises(RuntimeInputError, match=r"unknown input\(s\) \['z'\].*\['x'\]"):
        executor.run({"x": torch.zeros(2, 12), "z": torch.zeros(1)})


def test_dtype_rules(affine):
    executor, _ = affine
    for ok in (torch.float16, torch.float64, torch.bfloat16):
        assert executor.run({"x": torch.zeros(2, 12, dtype=ok)})["y"].dtype == torch.float32
    with pytest.raises(RuntimeInputError, match=r"input 'x': expected a floating-point tensor .*got dtype torch.int64"):
        executor.run({"x": torch.zeros(2, 12, dtype=torch.int64)})
    with pytest.raises(RuntimeInputError, match="got list"):
        executor.run({"x": [[0.0] * 12] * 2})
    assert executor.run({"x": np.zeros((2, 12), np.float32)})["y"].shape == (2, 12)


def test_integer_inputs_are_range_checked(tmp_path):
    fn, b = new_function("main", {"i": tensor("int32", (3,))}, "iOS17")
    fn.block.outputs = [b.op("add", x=fn.inputs[0], y=np.int32(1))]
    executor = ReferenceExecutor(save(tmp_path, fn))
    assert executor.run({"i": torch.tensor([1, 2, 3])})  # int64 that fits
    with pytest.raises(RuntimeInputError, match=r"input 'i': expected values in the int32 range .*got values in"):
        executor.run({"i": torch.tensor([0, 1, 2**40])})
    with pytest.raises(RuntimeInputError, match="expected an integer tensor"):
        executor.run({"i": torch.ones(3)})


def test_fixed_shape_is_checked(affine):
    executor, _ = affine
    with pytest.raises(RuntimeInputError, match=r"input 'x': expected shape \[2, 12\], got shape \[3, 12\]"):
        executor.run({"x": torch.zeros(3, 12)})


def test_ranged_shapes(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), 4))}, "iOS17")
    fn.block.outputs = [b.op("relu", x=fn.inputs[0])]
    executor = ReferenceExecutor(save(tmp_path, fn, {"x": Ranges(((1, 5), (4, 4)))}))
    for n in (1, 5):
        assert next(iter(executor.run({"x": torch.ones(n, 4)}).values())).shape == (n, 4)
    with pytest.raises(RuntimeInputError, match=r"expected shape \[1..5, 4\], got shape \[6, 4\]"):
        executor.run({"x": torch.ones(6, 4)})


def test_enumerated_shapes(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), Symbol("m")))}, "iOS17")
    fn.block.outputs = [b.op("relu", x=fn.inputs[0])]
    executor = ReferenceExecutor(save(tmp_path, fn, {"x": Enumerated(((1, 2), (3, 4)))}))
    assert next(iter(executor.run({"x": torch.ones(3, 4)}).values())).shape == (3, 4)
    with pytest.raises(RuntimeInputError, match=r"expected shape \[1, 2\] \| \[3, 4\], got shape \[1, 4\]"):
        executor.run({"x": torch.ones(1, 4)})


def test_a_kernel_disagreeing_with_inference_is_reported(affine):
    executor, _ = affine
    relu = next(op for op in executor.function.block.operations if op.op_type == "relu")
    relu.outputs[0].type = TensorType(relu.outputs[0].dtype, (2, 13))  # pretend inference said so
    with pytest.raises(MILTypeError, match=r"relu 'y_op'.*shape \[2, 12\].*catalogue bug"):
        executor.run({"x": torch.zeros(2, 12)})


def test_states_persist_between_calls(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp16", (2, 3)), "acc": StateType(tensor("fp16", (2, 3)))}, "iOS18")
    x, acc = fn.inputs
    total = b.op("add", x=b.op("read_state", input=acc), y=x)
    b.op("write_state", input=acc, data=total)
    fn.block.outputs = [b.op("mul", x=b.op("read_state", input=acc), y=np.float16(2))]
    executor = ReferenceExecutor(save(tmp_path, fn))
    assert [f.name for f in executor.interface.states] == ["acc"]
    x = torch.rand(2, 3, dtype=torch.float16)
    for step in (1, 2, 3):
        torch.testing.assert_close(next(iter(executor.run({"x": x}).values())), x * step * 2)
    torch.testing.assert_close(executor.read_state("acc"), x * 3)
    executor.write_state("acc", torch.ones(2, 3))
    torch.testing.assert_close(next(iter(executor.run({"x": x}).values())), (x + 1) * 2)
    executor.reset_states()
    torch.testing.assert_close(executor.read_state("acc"), torch.zeros(2, 3, dtype=torch.float16))
    with pytest.raises(RuntimeInputError, match=r"state 'acc': expected shape \[2, 3\], got \[3\]"):
        executor.write_state("acc", torch.ones(3))


def test_unbounded_symbolic_input_by_default(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), 2))}, "iOS17")
    fn.block.outputs = [b.op("relu", x=fn.inputs[0])]
    executor = ReferenceExecutor(save(tmp_path, fn))
    assert executor.interface.inputs[0].flexibility == Ranges(((1, None), (2, 2)))
    assert next(iter(executor.run({"x": torch.ones(100, 2)}).values())).shape == (100, 2)
