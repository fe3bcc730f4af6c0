"""fp16 casting clean-up: exact cast round trips and chains shrink, lossy ones and I/O casts stay."""

import numpy as np
import pytest
import torch

from torch_coreml.mil.builder import new_function
from torch_coreml.mil.passes import run_default_passes
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import tensor
from torch_coreml.mil.verify import verify_program

from ._evaluate import evaluate

# values that fp16 / int32 round trips would change: large ints, fractions, negatives
VALUES = {"fp32": torch.tensor([0.1, -2.7, 3000.5, 70000.0]), "int32": torch.tensor([1, -3, 2049, 100001]),
          "fp16": torch.tensor([0.1, -2.7, 1000.5, 60000.0]).half(), "bool": torch.tensor([True, False, True, True]),
          "int8": torch.tensor([1, -128, 127, 5], dtype=torch.int8)}


def _chain(chain, target="iOS17"):
    fn, b = new_function("main", {"x": tensor(chain[0], (4,))}, target)
    prog = Program()
    prog.add(fn)
    y = fn.inputs[0]
    for d in chain[1:]:
        y = b.op("cast", x=y, dtype=d)
    fn.block.outputs = [b.op("identity", x=y)]
    inputs = {"x": VALUES[chain[0]]}
    before = evaluate(fn, inputs)[0]
    run_default_passes(prog)
    verify_program(prog)
    after = evaluate(fn, inputs)[0]
    torch.testing.assert_close(after, before, rtol=0, atol=0, equal_nan=True)
    return [op.inputs["dtype"].value for op in fn.block.operations if op.op_type == "cast"]


@pytest.mark.parametrize("chain,kept", [
    (("fp16", "fp32", "fp16"), []),                 # exact widening and back
    (("bool", "int32", "bool"), []),
    (("int8", "int32", "int8"), []),
    (("fp16", "fp32", "int32"), ["int32"]),         # exact first step: skipped
    (("bool", "fp16", "fp32"), ["fp32"]),
    (("int32", "fp16", "int32"), ["fp16", "int32"]),  # fp16 holds ints exactly only up to 2048
    (("fp16", "int32", "fp16"), ["int32", "fp16"]),   # truncation
    (("fp32", "fp16", "fp32"), ["fp16", "fp32"]),     # rounding
    (("int32", "fp32", "fp16"), ["fp32", "fp16"]),    # int32 → fp32 rounds too (double rounding)
])
def test_cast_chains(chain, kept):
    assert _chain(chain) == kept


def test_cast_of_a_const_is_folded_into_the_const():
    fn, b = new_function("main", {"x": tensor("fp16", (3,))}, "iOS17")
    prog = Program()
    prog.add(fn)
    w = b.op("cast", x=np.float32([0.1, 2.5, -3.0]), dtype="fp16")
    fn.block.outputs = [b.op("add", x=fn.inputs[0], y=w)]
    run_default_passes(prog)
    assert [op.op_type for op in fn.block.operations] == ["const", "add"]
    folded = fn.block.operations[0].outputs[0]
    assert folded.dtype.name == "fp16"
    np.testing.assert_array_equal(np.asarray(folded.value, dtype=np.float16), np.float16([0.1, 2.5, -3.0]))


def test_io_casts_around_an_fp16_program_stay():
    fn, b = new_function("main", {"x": tensor("fp32", (4,))}, "iOS17")
    prog = Program()
    prog.add(fn)
    h = b.op("cast", x=fn.inputs[0], dtype="fp16")
    fn.block.outputs = [b.op("cast", x=b.op("relu", x=h), dtype="fp32")]
    run_default_passes(prog)
    assert [op.op_type for op in fn.block.operations if op.op_type != "const"] == ["cast", "relu", "cast"]
