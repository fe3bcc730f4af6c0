"""Program → .mlpackage → Program round trips, the inline-vs-blob rule, dedup, determinism, errors.

Every package written here is also handed to coremltools (MLModel + its MIL proto loader), except
for the few dtypes coremltools has no type for (bf16, fp8, uint64) or whose literals its loader cannot
read back (fp64 `doubles`), which only round-trip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.utils._pytree as pytree

from torch_coreml.errors import MILTypeError, PackageError, UnsupportedOpError
from torch_coreml.format.blob import BlobReader
from torch_coreml.format.description import Enumerated, Feature, Metadata, ModelInterface, Ranges, describe_function
from torch_coreml.format.package import read_package
from torch_coreml.format.serialize import load_model, save_model
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.targets import Target
from torch_coreml.mil.types import Symbol, tensor

from ._programs import assert_same_program, program_of, round_trip

RNG = np.random.default_rng(0)


def relu_function(target="iOS17", shape=(2, 3), dtype="fp32"):
    fn, b = new_function("main", {"x": tensor(dtype, shape)}, target)
    return fn, b


def finish(fn, b, out=None):
    fn.block.outputs = [out if out is not None else b.op("relu", x=fn.inputs[0])]
    return program_of(fn)


def sample(dtype: dt.DType, n: int) -> np.ndarray:
    """n values of `dtype` in its storage form, covering its range (and NaN/inf for floats)."""
    if dtype is dt.bool_:
        return np.arange(n) % 3 == 0
    if dtype is dt.string:
        return np.array([f"s{i}" for i in range(n)], dtype=object)
    if dtype.is_float and dtype.numpy.kind == "f":
        values = RNG.standard_normal(n).astype(dtype.numpy)
        values[:3] = [np.inf, -0.0, np.nan][:n]
        return values
    if dtype.is_sub_byte:
        lo, hi = (-(1 << dtype.bits - 1), (1 << dtype.bits - 1) - 1) if dtype.kind == "int" else (0, (1 << dtype.bits) - 1)
        return np.resize(np.arange(lo, hi + 1), n).astype(dtype.numpy)
    info = np.iinfo(dtype.numpy)  # raw-bit types (bf16, fp8) land here too
    return np.resize(np.array([info.min, info.max, 0, 1], dtype=dtype.numpy), n)


# ------------------------------------------------------------------------------ const values ---

COREMLTOOLS_DTYPES = [dt.bool_, dt.string, dt.fp16, dt.fp32, dt.int8, dt.int16, dt.int32, dt.int64,
                      dt.uint8, dt.uint16, dt.uint32, dt.int4, dt.uint1, dt.uint2, dt.uint3, dt.uint4, dt.uint6]
OTHER_DTYPES = [dt.fp64, dt.bf16, dt.fp8e4m3fn, dt.fp8e5m2, dt.uint64]


@pytest.mark.parametrize("target", ["iOS17", "iOS18"])
def test_every_const_dtype_round_trips(tmp_path, target):
    fn, b = relu_function(target)
    for dtype in COREMLTOOLS_DTYPES:
        for n in (1, 9, 10, 13):
            b.const(sample(dtype, n), dtype, name=f"c_{dtype.name}_{n}")
        b.const(sample(dtype, 6).reshape(2, 3), dtype, name=f"m_{dtype.name}")
        if not dtype.is_sub_byte:  # coremltools' loader crashes on sub-byte scalars (np.prod(()) is a float)
            b.const(sample(dtype, 1).reshape(()), dtype, name=f"s_{dtype.name}")
        b.const(sample(dtype, 0).reshape(0, 2), dtype, name=f"e_{dtype.name}")
    b.const("a string scalar", name="str_scalar")
    program = finish(fn, b)
    _, again, _ = round_trip(program, tmp_path)
    assert_same_program(program, again)


def test_types_coremltools_lacks_round_trip(tmp_path):
    fn, b = relu_function("iOS18")
    for dtype in OTHER_DTYPES:
        for n in (3, 12):
            b.const(sample(dtype, n), dtype, name=f"c_{dtype.name}_{n}")
        b.const(sample(dtype, 1).reshape(()), dtype, name=f"s_{dtype.name}")
    for dtype in (dt.int4, dt.uint1, dt.uint3, dt.uint6):
        b.const(sample(dtype, 1).reshape(()), dtype, name=f"s_{dtype.name}")
    program = finish(fn, b)
    _, again, _ = round_trip(program, tmp_path, oracle=False)
    assert_same_program(program, again)


BLOB_CANDIDATES = [dt.fp16, dt.fp32, dt.uint8, dt.int8, dt.int16, dt.uint16, dt.int32, dt.uint32, dt.int4,
                   dt.uint1, dt.uint2, dt.uint3, dt.uint4, dt.uint6, dt.bool_, dt.int64]


@pytest.mark.parametrize("target", [Target.iOS15, Target.iOS17, Target.iOS18])
def test_inline_or_blob_follows_coremltools(tmp_path, target):
    from coremltools.converters.mil.backend.mil.load import should_use_weight_file

    fn, b = relu_function(target)
    expected = {}
    for dtype in BLOB_CANDIDATES:
        for n in (9, 10):
            values = sample(dtype, n)
            var = b.const(values, dtype, name=f"c_{dtype.name}_{n}")
            expected[var.name] = bool(should_use_weight_file(values, target.spec_version))
    path, _, _ = round_trip(finish(fn, b), tmp_path)
    with read_package(path) as contents:
        ops = contents.spec.mlProgram.functions["main"].block_specializations[target.opset].operations
        found = {op.outputs[0].name: op.attributes["val"].WhichOneof("value") == "blobFileValue"
                 for op in ops if op.type == "const"}
    assert found == expected
    # The spot checks FORMAT.md records from experiments.
    assert not expected["c_fp32_9"] and expected["c_fp32_10"] and expected["c_int4_10"]
    assert expected["c_int32_10"] == (target >= Target.iOS18)


def test_fp16_weights_go_to_the_blob_bit_exact(tmp_path):
    fn, b = new_function("main", {"x": tensor("fp16", (2, 8))}, "iOS16")
    weight = RNG.standard_normal((4, 8)).astype(np.float16)
    bias = RNG.standard_normal(4).astype(np.float16)
    fn.block.outputs = [b.op("linear", x=fn.inputs[0], weight=b.const(weight, name="w"), bias=b.const(bias, name="b"))]
    program = program_of(fn)
    path, again, _ = round_trip(program, tmp_path)
    assert_same_program(program, again)
    reader = BlobReader(path / "Data/com.apple.CoreML/weights/weight.bin")
    assert [r.dtype for r in reader.records.values()] == ["fp16"]  # the 4-element bias stays inline
    np.testing.assert_array_equal(reader.read(64, "fp16", (4, 8)), weight)


def test_identical_weights_are_written_once(tmp_path):
    fn, b = relu_function()
    data = RNG.standard_normal(16).astype(np.float32)
    a1 = b.const(data, name="a1")
    a2 = b.const(data.copy(), name="a2")
    a3 = b.const(data.reshape(4, 4), name="a3")  # same bytes, other shape: the blob is flat
    other = b.const(data + 1, name="other")
    same_bits_other_type = b.const(data.view(np.int32), dt.int32, name="as_int")  # inline before iOS18
    path, again, _ = round_trip(finish(fn, b), tmp_path)
    reader = BlobReader(path / "Data/com.apple.CoreML/weights/weight.bin")
    assert len(reader) == 2
    with read_package(path) as contents:
        ops = {op.outputs[0].name: op for op in contents.spec.mlProgram.functions["main"]
               .block_specializations["CoreML7"].operations}
    offsets = {name: ops[name].attributes["val"].blobFileValue.offset for name in ("a1", "a2", "a3", "other")}
    assert offsets["a1"] == offsets["a2"] == offsets["a3"] != offsets["other"]
    assert ops[same_bits_other_type.name].attributes["val"].WhichOneof("value") == "immediateValue"
    assert again.main.block.operations[2].outputs[0].shape == (4, 4)
    assert [a1.name, a2.name, a3.name, other.name] == ["a1", "a2", "a3", "other"]


def test_no_weights_means_no_weight_file(tmp_path):
    fn, b = relu_function()
    path, _, _ = round_trip(finish(fn, b), tmp_path)
    weights = path / "Data/com.apple.CoreML/weights"
    assert weights.is_dir() and not any(weights.iterdir())


# ------------------------------------------------------------------------ nested blocks, dims ---


def test_cond_round_trips(tmp_path):
    fn, b = relu_function()
    x = fn.inputs[0]
    pred = b.op("greater", x=b.op("reduce_sum", x=x, axes=[0, 1]), y=0.0)
    out = b.cond(pred, lambda t: [t.op("relu", x=x)], lambda e: [e.op("mul", x=x, y=2.0)])
    program = finish(fn, b, out)
    _, again, _ = round_trip(program, tmp_path)
    assert_same_program(program, again)


def test_while_loop_round_trips(tmp_path):
    fn, b = relu_function()
    zero = b.const(np.int32(0), name="zero")
    n = b.const(np.int32(3), name="n")

    def cond(bb, vars_):
        return bb.op("less", x=vars_[0], y=n)

    def body(bb, vars_):
        return [bb.op("add", x=vars_[0], y=np.int32(1)), bb.op("mul", x=vars_[1], y=vars_[1])]

    _, y = b.while_loop([zero, fn.inputs[0]], cond, body)
    fn.block.outputs = [b.op("relu", x=y)]
    program = program_of(fn)
    _, again, _ = round_trip(program, tmp_path)
    assert_same_program(program, again)
    loop = next(op for op in again.main.block.operations if op.op_type == "while_loop")
    assert [len(blk.inputs) for blk in loop.blocks] == [2, 2]


def test_symbolic_dims_and_ranged_shapes(tmp_path):
    n = Symbol("n")
    fn, b = new_function("main", {"x": tensor("fp32", (n, 3))}, "iOS17")
    fn.block.outputs = [b.op("relu", x=fn.inputs[0])]
    interface = describe_function(fn, flexibility={"x": Ranges(((1, 8), (3, 3)), default=(2, 3))})
    _, again, face = round_trip(program_of(fn), tmp_path, interface)
    x = again.main.inputs[0]
    assert isinstance(x.type.shape[0], Symbol) and x.type.shape[1] == 3
    assert face.inputs[0].flexibility == Ranges(((1, 8), (3, 3)), (2, 3))
    assert face.inputs[0].shape[0] is x.type.shape[0]
    assert isinstance(face.outputs[0].shape[0], Symbol)


def test_enumerated_shapes(tmp_path):
    feature = Feature.enumerated("x", dt.fp32, [(1, 3, 8), (1, 3, 16), (2, 3, 16)], default=(1, 3, 16))
    fn, b = new_function("main", {"x": tensor("fp32", feature.shape)}, "iOS17")
    fn.block.outputs = [b.op("relu", x=fn.inputs[0])]
    interface = describe_function(fn, flexibility={"x": feature.flexibility})
    path, _, face = round_trip(program_of(fn), tmp_path, interface)
    assert face.inputs[0].flexibility == Enumerated(((1, 3, 8), (1, 3, 16), (2, 3, 16)), (1, 3, 16))
    with read_package(path) as contents:
        array = contents.spec.description.input[0].type.multiArrayType
        assert list(array.shape) == [1, 3, 16] and len(array.enumeratedShapes.shapes) == 3


def test_metadata_descriptions_and_pytree_specs(tmp_path):
    fn, b = relu_function()
    program = finish(fn, b)
    interface = describe_function(fn, Metadata("Ada", "MIT", "1.2", "relu", {"k": "v"}))
    interface.inputs[0] = Feature("x", dt.fp32, (2, 3), description="the input")
    example = ((torch.ones(2, 3),), {})
    interface.input_tree = pytree.treespec_dumps(pytree.tree_flatten(example)[1])
    interface.output_tree = pytree.treespec_dumps(pytree.tree_flatten({"y": torch.ones(1)})[1])
    path, _, face = round_trip(program, tmp_path, interface)
    assert face.metadata == Metadata("Ada", "MIT", "1.2", "relu", {"k": "v"})
    assert face.inputs[0].description == "the input"
    assert pytree.treespec_loads(face.input_tree) == pytree.tree_flatten(example)[1]
    assert face.output_tree == interface.output_tree
    with read_package(path) as contents:
        assert "torch_coreml.pytree_in" in contents.spec.description.metadata.userDefined


# ------------------------------------------------------------------------------ determinism ---


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def test_saving_twice_gives_identical_bytes(tmp_path):
    fn, b = relu_function()
    for i in range(5):
        b.const(RNG.standard_normal((3, 7)).astype(np.float32), name=f"w{i}")
    b.const(np.arange(4, dtype=np.int32), name="small")
    program = finish(fn, b)
    interface = describe_function(fn, Metadata(user_defined={f"key{i}": str(i) for i in range(20)}))
    first = save_model(tmp_path / "a.mlpackage", program, interface)
    second = save_model(tmp_path / "b.mlpackage", program, interface)
    assert _tree(first) == _tree(second)
    again, face = load_model(first)
    third = save_model(tmp_path / "c.mlpackage", again, face)  # a loaded program saves to the same bytes
    assert _tree(first) == _tree(third)


# ------------------------------------------------------------------------------------ errors ---


def _rewrite_spec(path, edit):
    model_file = path / "Data/com.apple.CoreML/model.mlmodel"
    with read_package(path) as contents:
        spec = contents.spec
    edit(spec)
    model_file.write_bytes(spec.SerializeToString())


def test_unknown_op_is_named(tmp_path):
    fn, b = relu_function()
    path = save_model(tmp_path / "m.mlpackage", finish(fn, b))
    ops = lambda s: s.mlProgram.functions["main"].block_specializations["CoreML7"].operations  # noqa: E731
    _rewrite_spec(path, lambda s: setattr(ops(s)[0], "type", "frobnicate"))
    with pytest.raises(UnsupportedOpError, match="frobnicate.*relu"):
        load_model(path)


def test_declared_type_mismatch_is_named(tmp_path):
    fn, b = relu_function()
    path = save_model(tmp_path / "m.mlpackage", finish(fn, b))

    def edit(spec):
        op = spec.mlProgram.functions["main"].block_specializations["CoreML7"].operations[0]
        op.outputs[0].type.tensorType.dimensions[1].constant.size = 5
    _rewrite_spec(path, edit)
    with pytest.raises(MILTypeError, match="relu"):
        load_model(path)


def test_bad_input_dtype_for_target_fails_and_leaves_nothing(tmp_path):
    fn, b = relu_function("iOS15", dtype="fp16")
    with pytest.raises(PackageError, match="input 'x' has dtype fp16"):
        save_model(tmp_path / "m.mlpackage", finish(fn, b))
    assert list(tmp_path.iterdir()) == []


def test_scalar_inputs_are_refused(tmp_path):
    fn, b = relu_function(shape=())
    with pytest.raises(PackageError, match="input 'x' is a scalar"):
        save_model(tmp_path / "m.mlpackage", finish(fn, b))


def test_interface_must_match_the_function(tmp_path):
    fn, b = relu_function()
    program = finish(fn, b)
    interface = ModelInterface([Feature("y", dt.fp32, (2, 3))], describe_function(fn).outputs)
    with pytest.raises(PackageError, match=r"inputs \['y'\] do not match"):
        save_model(tmp_path / "m.mlpackage", program, interface)


def test_an_input_cannot_also_be_an_output(tmp_path):
    fn, b = relu_function()
    with pytest.raises(PackageError, match=r"\['x'\] are both inputs and outputs"):
        save_model(tmp_path / "m.mlpackage", finish(fn, b, fn.inputs[0]))
