"""Helpers for serializer tests: build small programs, save them, compare programs structurally.

    program = single_op_program("relu", {"x": tensor("fp32", (2, 3))})
    path, again = round_trip(program, tmp_path)          # saved, checked by coremltools, read back
    assert_same_program(program, again)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from torch_coreml.format.serialize import load_model, save_model
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.program import Block, Program
from torch_coreml.mil.types import Symbol, TensorType

from ..oracle import assert_coremltools_accepts


def program_of(fn) -> Program:
    program = Program()
    program.add(fn)
    return program


def single_op_program(op_type: str, inputs: dict, target="iOS17", **consts) -> Program:
    fn, b = new_function("main", inputs, target)
    out = b.op(op_type, **{n: fn.input_named(n) for n in inputs}, **consts)
    fn.block.outputs = [out]
    return program_of(fn)


def round_trip(program, tmp_path: Path, interface=None, name="m", oracle=True):
    path = save_model(tmp_path / f"{name}.mlpackage", program, interface)
    if oracle:
        assert_coremltools_accepts(path)
    again, again_interface = load_model(path)
    return path, again, again_interface


def _dims_match(a, b) -> bool:
    return (isinstance(a, Symbol) and isinstance(b, Symbol)) or a == b


def assert_same_type(a, b, where: str) -> None:
    if isinstance(a, TensorType):
        assert isinstance(b, TensorType) and a.dtype is b.dtype and a.rank == b.rank, f"{where}: {a} vs {b}"
        assert all(_dims_match(x, y) for x, y in zip(a.shape, b.shape)), f"{where}: {a} vs {b}"
    else:
        assert type(a) is type(b), f"{where}: {a} vs {b}"


def assert_same_value(a, b, where: str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b, f"{where}: {a!r} vs {b!r}"
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    if a.dtype.kind == "f":
        a, b = a.view(f"u{a.dtype.itemsize}"), b.view(f"u{b.dtype.itemsize}")  # bit-exact, NaNs too
    assert np.array_equal(a, b), f"{where}: values differ"


def assert_same_program(a: Program, b: Program) -> None:
    assert sorted(a.functions) == sorted(b.functions)
    for name, fa in a.functions.items():
        fb = b.functions[name]
        assert fa.target == fb.target
        assert [v.name for v in fa.inputs] == [v.name for v in fb.inputs]
        for va, vb in zip(fa.inputs, fb.inputs):
            assert_same_type(va.type, vb.type, f"input {va.name}")
        _assert_same_block(fa.block, fb.block, name)


def _assert_same_block(a: Block, b: Block, where: str) -> None:
    assert [v.name for v in a.inputs] == [v.name for v in b.inputs], where
    assert [op.op_type for op in a.operations] == [op.op_type for op in b.operations], where
    for oa, ob in zip(a.operations, b.operations):
        here = f"{where}/{oa.name}"
        assert oa.name == ob.name, here
        assert [v.name for v in oa.outputs] == [v.name for v in ob.outputs], here
        for va, vb in zip(oa.outputs, ob.outputs):
            assert_same_type(va.type, vb.type, f"{here} output {va.name}")
        if oa.op_type == "const":
            assert_same_value(oa.attributes["val"], ob.attributes["val"], here)
        names = {k: [v.name for v in x] if isinstance(x, list) else x.name for k, x in oa.inputs.items()}
        assert names == {k: [v.name for v in x] if isinstance(x, list) else x.name for k, x in ob.inputs.items()}, here
        assert len(oa.blocks) == len(ob.blocks), here
        for i, (ba, bb) in enumerate(zip(oa.blocks, ob.blocks)):
            _assert_same_block(ba, bb, f"{here}/block{i}")
    assert [v.name for v in a.outputs] == [v.name for v in b.outputs], where
