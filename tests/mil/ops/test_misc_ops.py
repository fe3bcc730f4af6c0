"""classify, random_*, quantize/dequantize and the state ops, against coremltools (declarations,
versions, type inference; values from its value inference where it has one) and numpy formulas.
Random ops are checked for shapes, dtypes, seeding and distribution moments, not exact values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tests.mil.ops._eval import ct_value, run_op
from tests.mil.ops.test_control_flow import (assert_same_declaration, assert_same_types, ct_program,
                                             ct_versions, evaluate)
from torch_coreml.errors import MILTypeError
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.ops.states import StateCell
from torch_coreml.mil.targets import Target
from torch_coreml.mil.types import DictType, StateType, Symbol, TensorType, tensor

f32, f16, i32, i8, u8 = np.float32, np.float16, np.int32, np.int8, np.uint8
RANDOM = ["random_bernoulli", "random_categorical", "random_normal", "random_uniform"]
_rng = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("op", RANDOM + ["quantize", "dequantize", "classify", "read_state"])
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_versions(op)


@pytest.mark.parametrize("op,target", [(op, "iOS15") for op in RANDOM] + [("quantize", "iOS17"),
                                                                        ("dequantize", "iOS17")])
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


# -- classify ---------------------------------------------------------------------------------------
def test_classify_declaration():
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    ct_inputs = SSAOpRegistry.core_ops["classify"][max(SSAOpRegistry.core_ops["classify"])].input_spec.input_types
    ours = CATALOGUE.lookup("classify", Target.iOS15).inputs
    assert [(i.name, i.const, i.optional) for i in ours] == [(n, bool(t.const), bool(t.optional))
                                                            for n, t in ct_inputs.items()]


CLASSES = {"string": np.array(["cat", "dog", "eel", "fox"]), "int64": np.array([7, 3, 9, 1], np.int64)}


@pytest.mark.parametrize("kind", ["string", "int64"])
def test_classify_types_match_coremltools(kind):
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types as cttypes
    from coremltools.converters.mil.mil.operation import mil_list

    got = {}

    def build(p):
        labels = [str(c) for c in CLASSES[kind]] if kind == "string" else [np.int64(c) for c in CLASSES[kind]]
        got["out"] = mb.classify(probabilities=p, classes=mb.const(val=mil_list(labels)))
        return p

    ct_program(build, [((1, 4), "fp32")], "iOS15")
    label, table = got["out"]
    assert cttypes.builtin_to_string(label.sym_type) == kind
    assert cttypes.builtin_to_string(table.sym_type.T[1]) == "fp64"

    fn, b = new_function("f", {"p": tensor("fp32", (1, 4))}, "iOS15")
    ours = b.op("classify", probabilities=fn.inputs[0], classes=b.const(CLASSES[kind], kind))
    label_t = TensorType(dt.from_name(kind), ())
    assert [o.type for o in ours] == [label_t, DictType(label_t, TensorType(dt.fp64, ()))]


@pytest.mark.parametrize("kind", ["string", "int64"])
def test_classify_values(kind):
    p = np.array([[0.1, 0.6, 0.2, 0.1]], f32)
    fn, b = new_function("f", {"p": tensor("fp32", (1, 4))}, "iOS15")
    fn.block.outputs = list(b.op("classify", probabilities=fn.inputs[0], classes=b.const(CLASSES[kind], kind)))
    label, table = evaluate(fn, p=p)
    labels = CLASSES[kind].tolist()
    assert (label if kind == "string" else int(label)) == labels[1]
    if kind == "int64":
        assert label.dtype == torch.int64
    assert table == pytest.approx(dict(zip(labels, p[0].tolist())))


def test_classify_rejects_bad_inputs():
    fn, b = new_function("f", {"p": tensor("fp32", (1, 4)), "h": tensor("fp16", (4,)),
                               "c": tensor("int32", (4,))}, "iOS15")
    p, h, c = fn.inputs
    with pytest.raises(MILTypeError, match=r"classify.*'probabilities'.*fp16"):
        b.op("classify", probabilities=h, classes=CLASSES["string"])
    with pytest.raises(MILTypeError, match=r"classify.*'classes'"):
        b.op("classify", probabilities=p, classes=CLASSES["string"][:3])
    with pytest.raises(MILTypeError, match=r"classify.*'classes'.*constant"):
        b.op("classify", probabilities=p, classes=c)
    with pytest.raises(MILTypeError, match=r"classify.*'classes'.*missing"):
        b.op("classify", probabilities=p)
    with pytest.raises(MILTypeError, match=r"classify.*'classes'.*int32"):
        b.op("classify", probabilities=p, classes=np.arange(4, dtype=i32))


# -- random -----------------------------------------------------------------------------------------
RANDOM_TYPES = [
    ("random_bernoulli", {}, {"shape": np.array([2, 3], i32)}),
    ("random_bernoulli", {}, {"shape": np.array([4], i32), "prob": f16(0.2), "seed": np.int32(3)}),
    ("random_bernoulli", {"shape": ((3,), "int32")}, {}),
    ("random_normal", {"shape": ((2,), "int32")}, {"mean": f16(1), "stddev": f16(2)}),
    ("random_normal", {}, {"shape": np.array([5, 1, 2], i32), "mean": f32(1)}),
    ("random_uniform", {}, {"shape": np.array([5], i32), "low": f16(-1), "high": f16(3)}),
    ("random_uniform", {"shape": ((1,), "int32")}, {}),
    ("random_categorical", {"x": (("n", 5), "fp32")}, {}),
    ("random_categorical", {"x": ((2, 3, 5), "fp16")}, {"size": np.int32(7), "mode": "probs"}),
]


@pytest.mark.parametrize("op,inputs,consts", RANDOM_TYPES, ids=[f"{c[0]}-{i}" for i, c in enumerate(RANDOM_TYPES)])
def test_random_types_match_coremltools(op, inputs, consts):
    assert_same_types(op, inputs, consts, "iOS15")


N = 20000


def _draw(op, seed=0, **consts):
    consts = dict(consts, seed=np.int32(seed))
    if op == "random_categorical":
        x = consts.pop("x")
        return run_op(op, consts=consts, x=x)[0][0]
    return run_op(op, consts=consts, shape=np.array([N], i32))[0][0]


MOMENTS = [  # op, consts, mean, variance
    ("random_bernoulli", {}, 0.5, 0.25),
    ("random_bernoulli", {"prob": f32(0.2)}, 0.2, 0.16),
    ("random_normal", {}, 0.0, 1.0),
    ("random_normal", {"mean": f32(2), "stddev": f32(3)}, 2.0, 9.0),
    ("random_uniform", {}, 0.5, 1 / 12),
    ("random_uniform", {"low": f16(-1), "high": f16(3)}, 1.0, 16 / 12),
]


@pytest.mark.parametrize("op,consts,mean,var", MOMENTS)
def test_random_moments(op, consts, mean, var):
    out = _draw(op, **consts).double().numpy()
    assert out.shape == (N,)
    assert abs(out.mean() - mean) < 5 * np.sqrt(var / N) + 1e-3
    assert abs(out.var() - var) < 0.05 * var
    if op == "random_bernoulli":
        assert set(np.unique(out)) <= {0.0, 1.0}
    if op == "random_uniform":
        lo, hi = mean - np.sqrt(3 * var), mean + np.sqrt(3 * var)
        assert out.min() >= lo and out.max() < hi


@pytest.mark.parametrize("mode", ["logits", "probs"])
def test_random_categorical_frequencies(mode):
    p = np.array([0.1, 0.2, 0.3, 0.4], f32)
    x = np.stack([np.log(p), np.log(p[::-1])]) if mode == "logits" else np.stack([p, 2 * p[::-1]])
    out = _draw("random_categorical", x=x.astype(f32), size=np.int32(N), mode=mode).numpy()
    assert out.shape == (2, N)
    for row, want in zip(out, (p, p[::-1])):
        freq = np.bincount(row.astype(int), minlength=4) / N
        np.testing.assert_allclose(freq, want, atol=0.02)


@pytest.mark.parametrize("op", RANDOM)
def test_random_seed_is_deterministic(op):
    consts = {"x": np.zeros((3, 4), f32), "size": np.int32(50)} if op == "random_categorical" else {}
    a, b, c = _draw(op, 5, **consts), _draw(op, 5, **consts), _draw(op, 6, **consts)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_output_dtype_follows_parameters():
    out, (t,) = run_op("random_uniform", consts={"low": f16(0), "high": f16(1), "shape": np.array([2, 2], i32)})
    assert t == tensor("fp16", (2, 2)) and out[0].dtype == torch.float16


def test_random_rejects_bad_inputs():
    fn, b = new_function("f", {"s": tensor("fp32", (2,)), "p": tensor("fp32", ())}, "iOS15")
    s, p = fn.inputs
    with pytest.raises(MILTypeError, match=r"random_normal.*'shape'.*fp32"):
        b.op("random_normal", shape=s)
    with pytest.raises(MILTypeError, match=r"random_bernoulli.*'prob'.*constant"):
        b.op("random_bernoulli", shape=np.array([2], i32), prob=p)
    with pytest.raises(MILTypeError, match=r"random_uniform.*must share one dtype"):
        b.op("random_uniform", shape=np.array([2], i32), low=f16(0), high=f32(1))
    with pytest.raises(MILTypeError, match=r"random_categorical.*'mode'"):
        b.op("random_categorical", x=np.zeros((2, 3), f32), mode="counts")
    with pytest.raises(MILTypeError, match=r"random_categorical.*'x'.*missing"):
        b.op("random_categorical", size=np.int32(2))


# -- quantize / dequantize --------------------------------------------------------------------------
X = _rng.uniform(-3, 3, size=(2, 3, 4)).astype(f32)
QUANT_CASES = [  # op, input, consts
    ("quantize", X, {"scale": f32(0.05), "output_dtype": "int8"}),
    ("quantize", X, {"scale": f32(0.02), "zero_point": u8(128), "output_dtype": "uint8"}),
    ("quantize", X, {"scale": np.array([0.01, 0.03, 0.05], f32), "zero_point": np.array([0, -5, 9], i8),
                     "axis": np.int32(1), "output_dtype": "int8"}),
    ("quantize", X.astype(f16), {"scale": np.array([0.1, 0.02, 0.05, 0.04], f16), "axis": np.int32(-1),
                                 "output_dtype": "uint8"}),
    ("dequantize", _rng.integers(-128, 127, (2, 3, 4)).astype(i8), {"scale": f32(0.05)}),
    ("dequantize", _rng.integers(0, 255, (2, 3, 4)).astype(u8),
     {"scale": np.array([0.5, 0.25], f16), "zero_point": np.array([3, 200], u8), "axis": np.int32(0)}),
    ("dequantize", _rng.integers(-128, 127, (2, 3, 4)).astype(i8),
     {"scale": np.array([0.5, 0.25, 2.0], f32), "zero_point": np.array([3, -1, 0], i8), "axis": np.int32(-2)}),
]
QIDS = [f"{c[0]}-{i}" for i, c in enumerate(QUANT_CASES)]


@pytest.mark.parametrize("op,x,consts", QUANT_CASES, ids=QIDS)
def test_quantization_types_match_coremltools(op, x, consts):
    shape = ("n",) + x.shape[1:] if "axis" not in consts or consts["axis"] != 0 else x.shape
    assert_same_types(op, {"input": (shape, dt.from_numpy(x.dtype).name)}, consts, "iOS17")


def _ct_dequantize(x, consts):
    from coremltools.converters.mil import Builder as mb

    got = {}

    def build(dummy):
        got["op"] = mb.dequantize(input=x, **consts).op
        return dummy

    ct_program(build, [((1,), "fp32")], "iOS17")
    return got["op"].materialized_val_inference()


@pytest.mark.parametrize("op,x,consts", QUANT_CASES, ids=QIDS)
def test_quantization_values_match_coremltools(op, x, consts):
    (out,), (t,) = run_op(op, "iOS17", consts=consts, input=x)
    want = ct_value(op, dict(consts, input=x), "iOS17")[0] if op == "quantize" else _ct_dequantize(x, consts)
    assert out.dtype == t.dtype.torch and tuple(out.shape) == want.shape
    if op == "quantize":
        np.testing.assert_array_equal(out.numpy(), want)
    else:
        np.testing.assert_allclose(out.float().numpy(), want.astype(f32), rtol=1e-3)


def test_quantization_rejects_bad_inputs():
    fn, b = new_function("f", {"x": tensor("fp32", (2, 3)), "q": tensor("int8", (2, 3))}, "iOS17")
    x, q = fn.inputs
    cases = [
        (r"quantize.*'zero_point'", dict(input=x, scale=f32(1), zero_point=i8(0), output_dtype="uint8")),
        (r"quantize.*'axis'", dict(input=x, scale=np.ones(3, f32), output_dtype="int8")),
        (r"quantize.*'scale'", dict(input=x, scale=f32(0), output_dtype="int8")),
        (r"quantize.*'output_dtype'", dict(input=x, scale=f32(1), output_dtype="int32")),
        (r"quantize.*'scale'.*missing", dict(input=x, output_dtype="int8")),
        (r"quantize.*'scale'.*fp16", dict(input=x, scale=f16(1), output_dtype="int8")),
        (r"quantize.*'scale'.*entries", dict(input=x, scale=np.ones(2, f32), axis=np.int32(1), output_dtype="int8")),
    ]
    for pattern, kw in cases:
        with pytest.raises(MILTypeError, match=pattern):
            b.op("quantize", **kw)
    with pytest.raises(MILTypeError, match=r"dequantize.*'input'.*fp32"):
        b.op("dequantize", input=x, scale=f32(1))
    with pytest.raises(MILTypeError, match=r"dequantize.*'axis'"):
        b.op("dequantize", input=q, scale=f32(1), axis=np.int32(0))


# -- states -----------------------------------------------------------------------------------------
def test_state_declarations():
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    read = SSAOpRegistry.core_ops["read_state"]
    ct_read = read[max(read)].input_spec.input_types
    assert [(i.name, i.const, i.optional) for i in CATALOGUE.lookup("read_state", Target.iOS18).inputs] == \
        [(n, bool(t.const), bool(t.optional)) for n, t in ct_read.items()]
    # write_state is coremltools' coreml_update_state(state, value) when serialized: inputs input, data
    domain = SSAOpRegistry.dialect_ops["coreml_update_state"].type_domains["T"]
    spec = CATALOGUE.lookup("write_state", Target.iOS18)
    assert [i.name for i in spec.inputs] == ["input", "data"]
    from coremltools.converters.mil.mil.types import builtin_to_string
    assert sorted(d.name for d in spec.domains["T"]) == sorted(builtin_to_string(d) for d in domain)
    for op in ("read_state", "write_state"):
        assert [s.since.name for s in CATALOGUE.versions(op)] == ["iOS18"]


def test_read_state_types_match_coremltools():
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types as cttypes

    got = {}

    @mb.program(input_specs=[mb.StateTensorSpec((2, 3), dtype=cttypes.fp16)], opset_version=ct.target.iOS18)
    def prog(s):
        got["out"] = mb.read_state(input=s)
        return got["out"]

    fn, b = new_function("f", {"s": StateType(tensor("fp16", (2, 3)))}, "iOS18")
    ours = b.op("read_state", input=fn.inputs[0])
    assert (ours.type.dtype.name, ours.type.shape) == (cttypes.builtin_to_string(got["out"].dtype),
                                                       tuple(got["out"].shape))


def test_write_then_read_state():
    fn, b = new_function("f", {"s": StateType(tensor("fp16", (2, 3))), "x": tensor("fp16", (2, 3))}, "iOS18")
    s, x = fn.inputs
    before = b.op("read_state", input=s)
    assert b.op("write_state", input=s, data=b.op("add", x=before, y=x)) == ()
    fn.block.outputs = [before, b.op("read_state", input=s)]
    cell = StateCell(torch.ones(2, 3, dtype=torch.float16))
    x_val = np.arange(6, dtype=f16).reshape(2, 3)
    old, new = evaluate(fn, s=cell, x=x_val)
    np.testing.assert_array_equal(old.numpy(), np.ones((2, 3), f16))
    np.testing.assert_array_equal(new.numpy(), 1 + x_val)
    assert cell.value is new  # the state keeps the written value for the next prediction


def test_state_ops_reject_bad_inputs():
    fn, b = new_function("f", {"s": StateType(tensor("fp16", (2, 3))), "x": tensor("fp32", (2, 3)),
                               "y": tensor("fp16", (3, 2)), "d": StateType(tensor("fp16", (Symbol("n"), 3)))},
                         "iOS18")
    s, x, y, d = fn.inputs
    with pytest.raises(MILTypeError, match=r"write_state.*'data'.*fp32"):
        b.op("write_state", input=s, data=x)
    with pytest.raises(MILTypeError, match=r"write_state.*'data'"):
        b.op("write_state", input=s, data=y)
    with pytest.raises(MILTypeError, match=r"read_state.*'input'.*state"):
        b.op("read_state", input=x)
    with pytest.raises(MILTypeError, match=r"write_state.*'data'.*missing"):
        b.op("write_state", input=s)
    assert b.op("write_state", input=d, data=np.ones((5, 3), f16)) == ()  # a symbolic dim accepts any size
    fn17, b17 = new_function("f", {"s": StateType(tensor("fp16", (2,)))}, "iOS17")
    with pytest.raises(Exception, match="iOS18"):
        b17.op("read_state", input=fn17.inputs[0])
