"""Control flow and list ops (cond, while_loop, select, make_list, list_*), against coremltools.

Programs with nested blocks or list values are run by `evaluate`, a tiny interpreter over our Block
graph that calls the catalogue kernels (the other op tests run one op with `_eval.run_op`). Types are
compared with coremltools' pymil programs built the same way; values with coremltools' value
inference where it has one (`select`), else with plain python/numpy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from torch_coreml.errors import MILTypeError
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.ops.const import const_to_runtime
from torch_coreml.mil.ops.spec import OpContext, call_kernel
from torch_coreml.mil.targets import Target
from torch_coreml.mil.types import ListType, Symbol, TensorType, tensor

f32, f16, i32 = np.float32, np.float16, np.int32


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- a tiny interpreter (also used by test_misc_ops) -------------------------------------------------
def _run_block(block, env: dict, target: Target) -> list:
    for op in block.operations:
        if op.op_type == "const":
            results = [const_to_runtime(op.attributes["val"], op.outputs[0].type)]
        else:
            spec = CATALOGUE.lookup(op.op_type, target)
            ctx = OpContext(spec, op.inputs, target, op.blocks, name=op.name)
            values = {k: [env[x] for x in v] if isinstance(v, list) else env[v] for k, v in op.inputs.items()}

            def run_block(i, vals, op=op, env=env):
                blk = op.blocks[i]
                return _run_block(blk, {**env, **dict(zip(blk.inputs, vals))}, target)

            res = call_kernel(ctx, values, [o.type for o in op.outputs], run_block)
            results = list(res) if isinstance(res, tuple) else [res]
            assert len(results) == len(op.outputs), op
            results = [r.to(o.type.dtype.torch) if isinstance(r, torch.Tensor) and isinstance(o.type, TensorType)
                       and o.type.dtype.torch is not None else r for r, o in zip(results, op.outputs)]
        env.update(zip(op.outputs, results))
    return [env[v] for v in block.outputs]


def evaluate(fn, **inputs) -> list:
    """Run function `fn` on runtime values (numpy arrays become tensors; other values pass as is)."""
    env = {}
    for v in fn.inputs:
        val = inputs[v.name]
        env[v] = torch.from_numpy(np.asarray(val)) if isinstance(val, (np.ndarray, np.generic)) else val
    return _run_block(fn.block, env, fn.target)


def ct_program(build, specs, target="iOS17"):
    """coremltools program from `build(*vars)`; returns its outputs as (dtype, shape) with '?' dims."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types as cttypes
    from coremltools.converters.mil.mil.types.symbolic import is_symbolic

    result = {}
    # coremltools refuses rank-0 program inputs: feed those as [1] and reshape them to scalars.
    in_specs = [mb.TensorSpec(shape=s if len(s) else (1,), dtype=getattr(cttypes, d)) for s, d in specs]
    names = [f"a{i}" for i in range(len(specs))]
    scalar = [len(s) == 0 for s, _ in specs]

    def build_(*args):
        return build(*[mb.squeeze(x=a) if sc else a for a, sc in zip(args, scalar)])

    ns = {"build": build_, "result": result}
    exec(f"def f({', '.join(names)}):\n    out = build({', '.join(names)})\n"
         f"    result['out'] = list(out) if isinstance(out, (list, tuple)) else [out]\n"
         f"    return result['out']", ns)
    mb.program(input_specs=in_specs, opset_version=getattr(ct.target, target))(ns["f"])
    return [(cttypes.builtin_to_string(v.dtype), tuple("?" if is_symbolic(d) else int(d) for d in v.shape))
            for v in result["out"]]


def spelled(types) -> list:
    return [(t.dtype.name, tuple("?" if isinstance(d, Symbol) else d for d in t.shape)) for t in types]


# -- oracle helpers for the op tests of this family (self-contained; the other test files use them) --
def _ct_class(op_type: str, target):
    import coremltools as ct
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    return SSAOpRegistry.core_ops[op_type][getattr(ct.target, Target[target].name if isinstance(target, str)
                                                   else target.name)]


def assert_same_declaration(op_type: str, target) -> None:
    """Input names, const-ness, optionality and type domains equal coremltools' input_spec."""
    from coremltools.converters.mil.mil.types import builtin_to_string

    cls = _ct_class(op_type, target)
    theirs = []
    for name, i in cls.input_spec.input_types.items():
        domain = cls.type_domains[i.type_domain_id] if i.type_domain_id is not None else i.type_domain
        theirs.append((name, bool(i.const), bool(i.optional), sorted(builtin_to_string(d) for d in domain)))
    spec = CATALOGUE.lookup(op_type, Target[target] if isinstance(target, str) else target)
    ours = [(i.name, i.const, i.optional,
             sorted(d.name for d in (spec.domains[i.types] if isinstance(i.types, str) else i.types)))
            for i in spec.inputs]
    assert ours == theirs


def ct_versions(op_type: str) -> list:
    """The targets (iOS15+) at which coremltools registers a new definition of `op_type`."""
    from coremltools.converters.mil.mil.ops.registry import SSAOpRegistry

    versions = {Target(int(t)): c for t, c in SSAOpRegistry.core_ops[op_type].items() if int(t) >= 6}
    out, prev = [], None
    for t in sorted(versions):
        if versions[t] is not prev:
            out.append(t)
        prev = versions[t]
    return out


def _names(inputs: dict) -> set:
    return {d for shape, _ in inputs.values() for d in shape if isinstance(d, str)}


def our_types(op_type: str, inputs: dict, consts: dict | None = None, target="iOS17") -> list:
    """Our output types as (dtype, shape); input symbols keep their names, other symbols are '?'."""
    types = {n: TensorType(dt.from_name(d), tuple(Symbol(x) if isinstance(x, str) else x for x in s))
             for n, (s, d) in inputs.items()}
    fn, b = new_function("main", types, target)
    bound = {n: fn.input_named(n) for n in inputs}
    for n, v in (consts or {}).items():
        bound[n] = b.const(*v) if isinstance(v, tuple) else b.const(v)
    names = _names(inputs)
    return [(o.type.dtype.name, tuple(d.name if isinstance(d, Symbol) and d.name in names else "?"
                                      if isinstance(d, Symbol) else d for d in o.type.shape))
            for o in b.add_op(op_type, bound).outputs]


def ct_const(value, dtype: str):
    """A numpy value typed for coremltools (sub-byte types carry coremltools' dtype metadata)."""
    from coremltools.converters.mil.mil import types as cttypes

    d = dt.from_name(dtype)
    np_dtype = getattr(cttypes, f"np_{d.name}_dtype") if d.is_sub_byte else d.numpy
    return np.asarray(value).astype(np_dtype)


def ct_types(op_type: str, inputs: dict, consts: dict | None = None, target="iOS17") -> list:
    """coremltools' output types, spelled like `our_types` (a const given as a (value, dtype name)
    pair gets that dtype, e.g. ("uint4"))."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import get_new_symbol
    from coremltools.converters.mil.mil import types as cttypes
    from coremltools.converters.mil.mil.types.symbolic import is_symbolic

    symbols = {n: get_new_symbol() for n in sorted(_names(inputs))}
    specs = [([symbols[x] if isinstance(x, str) else x for x in s], d) for s, d in inputs.values()]
    kw = {n: ct_const(*v) if isinstance(v, tuple) else v for n, v in (consts or {}).items()}
    result = {}

    def build(*args):
        out = getattr(mb, op_type)(**dict(zip(inputs, args)), **kw)
        result["out"] = list(out) if isinstance(out, (list, tuple)) else [out]
        return result["out"]

    ct_program(build, specs, target)
    back = {v: k for k, v in symbols.items()}
    return [(cttypes.builtin_to_string(v.dtype), tuple(back.get(d, "?") if is_symbolic(d) else int(d)
                                                        for d in v.shape)) for v in result["out"]]


def assert_same_types(op_type: str, inputs: dict, consts: dict | None = None, target="iOS17") -> list:
    ours = our_types(op_type, inputs, consts, target)
    theirs = ct_types(op_type, inputs, consts, target)
    assert ours == theirs, f"{op_type}@{target}: ours {ours} != coremltools {theirs}"
    return ours


# -- declarations -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["cond", "while_loop", "select", "make_list", "list_length", "list_write",
                                "list_read", "list_gather", "list_scatter"])
def test_only_ios15_version(op):
    assert [s.since for s in CATALOGUE.versions(op)] == [Target.iOS15]


def test_select_declaration():
    assert_same_declaration("select", "iOS15")


# name, const, optional for the ops whose coremltools inputs are not plain tensors
NON_TENSOR_DECLS = {
    "cond": [("pred", False, False)],
    "while_loop": [("loop_vars", False, False)],
    "make_list": [("init_length", False, True), ("dynamic_length", True, True),
                  ("elem_shape", True, False), ("dtype", True, True)],
    "list_length": [("ls", False, False)],
    "list_write": [("ls", False, False), ("index", False, False), ("value", False, False)],
    "list_read": [("ls", False, False), ("index", False, False)],
    "list_gather": [("ls", False, False), ("indices", False, False)],
    "list_scatter": [("ls", False, False), ("indices", False, False), ("value", False, False)],
}


@pytest.mark.parametrize("op", sorted(NON_TENSOR_DECLS))
def test_declaration_names(op):
    spec = CATALOGUE.lookup(op, Target.iOS15)
    assert [(i.name, i.const, i.optional) for i in spec.inputs] == NON_TENSOR_DECLS[op]
    ct_names = [n for n in _ct_class(op, "iOS15").input_spec.input_types if not n.startswith("_")]
    assert ct_names == [n for n, _, _ in NON_TENSOR_DECLS[op]]


# -- select -----------------------------------------------------------------------------------------
SELECT_TYPES = [
    ({"cond": ((2, 3), "bool"), "a": ((2, 3), "fp32"), "b": ((2, 3), "fp32")}),
    ({"cond": ((1, 3), "bool"), "a": ((2, 1), "fp16"), "b": ((3,), "fp16")}),
    ({"cond": (("n", 3), "bool"), "a": (("n", 3), "int32"), "b": ((1,), "int32")}),
    ({"cond": ((4,), "bool"), "a": ((4,), "bool"), "b": ((), "bool")}),
]


@pytest.mark.parametrize("inputs", SELECT_TYPES)
def test_select_types(inputs):
    assert_same_types("select", inputs, target="iOS15")


def test_select_broadcasts_cond_too():
    # coremltools infers the shape of broadcast(a, b) only; its own value inference (np.where) and
    # Core ML broadcast all three, which is what we infer.
    assert our_types("select", {"cond": ((2, 3), "bool"), "a": ((3,), "fp32"), "b": ((3,), "fp32")}) \
        == [("fp32", (2, 3))]


@pytest.mark.parametrize("dtype", [f32, f16, i32, np.bool_])
def test_select_values(dtype):
    from tests.mil.ops._eval import ct_value, run_op
    rng = np.random.default_rng(0)
    c = rng.random((2, 3)) > 0.5
    a = (rng.random((1, 3)) * 10).astype(dtype)
    b = (rng.random((2, 1)) * 10).astype(dtype)
    (out,), _ = run_op("select", cond=c, a=a, b=b)
    np.testing.assert_array_equal(out.numpy(), ct_value("select", {"cond": c, "a": a, "b": b})[0])


def test_select_rejects_mixed_dtypes():
    fn, b = new_function("f", {"c": tensor("bool", (2,)), "a": tensor("fp32", (2,)),
                               "b": tensor("fp16", (2,))}, "iOS17")
    with pytest.raises(MILTypeError, match=r"select.*'b'"):
        b.op("select", cond=fn.inputs[0], a=fn.inputs[1], b=fn.inputs[2])


def test_select_rejects_non_bool_cond():
    fn, b = new_function("f", {"c": tensor("int32", (2,)), "a": tensor("fp32", (2,))}, "iOS17")
    with pytest.raises(MILTypeError, match=r"select.*'cond'"):
        b.op("select", cond=fn.inputs[0], a=fn.inputs[1], b=fn.inputs[1])


# -- cond -------------------------------------------------------------------------------------------
def _build_cond(x_shape=(2, 3), else_shape=None):
    fn, b = new_function("f", {"p": tensor("bool", ()), "x": tensor("fp32", x_shape),
                               "y": tensor("fp32", else_shape or x_shape)}, "iOS17")
    p, x, y = fn.inputs
    outs = b.cond(p, lambda bb: [bb.op("add", x=x, y=y), x], lambda bb: [bb.op("mul", x=x, y=y), y])
    fn.block.outputs = list(outs)
    return fn, outs


def test_cond_types_match_coremltools():
    from coremltools.converters.mil import Builder as mb

    fn, outs = _build_cond()
    theirs = ct_program(lambda p, x, y: mb.cond(pred=p, _true_fn=lambda: (mb.add(x=x, y=y), x),
                                                _false_fn=lambda: (mb.mul(x=x, y=y), y)),
                        [((), "bool"), ((2, 3), "fp32"), ((2, 3), "fp32")])
    assert spelled([o.type for o in outs]) == theirs


@pytest.mark.parametrize("pred", [True, False])
def test_cond_values(pred):
    fn, _ = _build_cond()
    x, y = np.full((2, 3), 2, f32), np.full((2, 3), 5, f32)
    got = evaluate(fn, p=np.array(pred), x=x, y=y)
    want = [x + y, x] if pred else [x * y, y]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w)


def test_cond_joins_differing_symbolic_dims():
    fn, outs = _build_cond(x_shape=(Symbol("n"), 3), else_shape=(Symbol("n"), 3))
    assert outs[0].type.shape == (Symbol("n"), 3)
    fn, b = new_function("f", {"p": tensor("bool", ()), "x": tensor("fp32", (Symbol("n"), 3)),
                               "y": tensor("fp32", (4, 3))}, "iOS17")
    p, x, y = fn.inputs
    out = b.cond(p, lambda bb: [x], lambda bb: [y])
    assert isinstance(out.type.shape[0], Symbol) and out.type.shape[1] == 3


def test_cond_rejects_mismatched_branches():
    fn, b = new_function("f", {"p": tensor("bool", ()), "x": tensor("fp32", (2,)),
                               "y": tensor("fp16", (2,))}, "iOS17")
    p, x, y = fn.inputs
    with pytest.raises(MILTypeError, match="cond"):
        b.cond(p, lambda bb: [x], lambda bb: [y])
    with pytest.raises(MILTypeError, match=r"cond.*'pred'"):
        b.cond(x, lambda bb: [x], lambda bb: [x])


# -- while_loop -------------------------------------------------------------------------------------
def _build_while(limit_shape=()):
    fn, b = new_function("f", {"i": tensor("int32", ()), "acc": tensor("fp32", (2,))}, "iOS17")
    i, acc = fn.inputs
    outs = b.while_loop([i, acc],
                        lambda bb, v: bb.op("less", x=v[0], y=np.int32(5)),
                        lambda bb, v: [bb.op("add", x=v[0], y=np.int32(1)),
                                       bb.op("mul", x=v[1], y=np.float32(2))])
    fn.block.outputs = list(outs)
    return fn, outs


def test_while_loop_types_match_coremltools():
    from coremltools.converters.mil import Builder as mb

    _, outs = _build_while()
    theirs = ct_program(lambda i, acc: mb.while_loop(
        _cond=lambda a, b: mb.less(x=a, y=np.int32(5)),
        _body=lambda a, b: (mb.add(x=a, y=np.int32(1)), mb.mul(x=b, y=np.float32(2))),
        loop_vars=(i, acc)), [((), "int32"), ((2,), "fp32")])
    assert spelled([o.type for o in outs]) == theirs


@pytest.mark.parametrize("start", [0, 3, 7])
def test_while_loop_values(start):
    fn, _ = _build_while()
    i, acc = evaluate(fn, i=np.array(start, i32), acc=np.ones(2, f32))
    n = max(0, 5 - start)  # zero iterations when the condition starts false
    assert int(i) == start + n
    np.testing.assert_array_equal(acc.numpy(), np.full(2, 2.0 ** n, f32))


def test_while_loop_rejects_changing_type():
    fn, b = new_function("f", {"x": tensor("fp32", (2,))}, "iOS17")
    (x,) = fn.inputs
    with pytest.raises(MILTypeError, match=r"while_loop.*loop_vars\[0\]"):
        b.while_loop([x], lambda bb, v: bb.op("less", x=np.int32(0), y=np.int32(1)),
                     lambda bb, v: [bb.op("cast", x=v[0], dtype="fp16")])


def test_while_loop_needs_bool_condition():
    fn, b = new_function("f", {"x": tensor("fp32", ())}, "iOS17")
    (x,) = fn.inputs
    with pytest.raises(MILTypeError, match="while_loop.*condition"):
        b.while_loop([x], lambda bb, v: v[0], lambda bb, v: [v[0]])


# -- lists ------------------------------------------------------------------------------------------
def _build_lists(elem_shape=(2, 3), dynamic=True, init_length=2):
    fn, b = new_function("f", {"v": tensor("fp32", (2, 3)), "w": tensor("fp32", (3, 2, 3))}, "iOS17")
    v, w = fn.inputs
    ls = b.op("make_list", init_length=np.int32(init_length), dynamic_length=dynamic,
              elem_shape=[np.int32(d) if isinstance(d, int) else d for d in elem_shape], dtype="fp32")
    ls1 = b.op("list_write", ls=ls, index=np.int32(3), value=v)
    ls2 = b.op("list_scatter", ls=ls1, indices=np.array([0, 4, 1], i32), value=w)
    outs = [b.op("list_length", ls=ls2), b.op("list_read", ls=ls2, index=np.int32(3)),
            b.op("list_gather", ls=ls2, indices=np.array([4, 3, 0], i32)), ls, ls2]
    fn.block.outputs = outs
    return fn, outs


def test_list_types_match_coremltools():
    from coremltools.converters.mil import Builder as mb

    def build(v, w):
        ls = mb.make_list(init_length=2, elem_shape=[2, 3], dtype="fp32")
        ls = mb.list_write(ls=ls, index=3, value=v)
        ls = mb.list_scatter(ls=ls, indices=np.array([0, 4, 1], i32), value=w)
        return (mb.list_length(ls=ls), mb.list_read(ls=ls, index=3),
                mb.list_gather(ls=ls, indices=np.array([4, 3, 0], i32)))

    _, outs = _build_lists()
    assert spelled([o.type for o in outs[:3]]) == ct_program(build, [((2, 3), "fp32"), ((3, 2, 3), "fp32")])
    assert outs[3].type == ListType(tensor("fp32", (2, 3)), None)


def test_list_values():
    fn, _ = _build_lists()
    v = np.arange(6, dtype=f32).reshape(2, 3)
    w = np.arange(18, dtype=f32).reshape(3, 2, 3) + 100
    length, read, gathered, ls, ls2 = evaluate(fn, v=v, w=w)
    assert int(length) == 5 and length.dtype == torch.int32
    np.testing.assert_array_equal(read.numpy(), v)
    np.testing.assert_array_equal(gathered.numpy(), np.stack([w[1], v, w[0]]))
    assert len(ls) == 2 and not ls[0].any()  # make_list's own value is unchanged (functional ops)
    np.testing.assert_array_equal(ls2[2].numpy(), np.zeros((2, 3), f32))  # grown, never written


def test_make_list_symbolic_and_fixed_length():
    fn, b = new_function("f", {"n": tensor("int32", ())}, "iOS17")
    ls = b.op("make_list", init_length=fn.inputs[0], dynamic_length=False, elem_shape=["s", np.int32(4)],
              dtype="fp16")
    assert ls.type.elem == tensor("fp16", (Symbol("s"), 4)) and isinstance(ls.type.length, Symbol)
    fixed = b.op("make_list", init_length=np.int32(3), dynamic_length=False, elem_shape=[np.int32(4)])
    assert fixed.type == ListType(tensor("fp32", (4,)), 3)
    # a symbolic element dim accepts any written size
    v = b.const(np.ones((7, 4), np.float16))
    assert b.op("list_write", ls=ls, index=np.int32(0), value=v).type == ls.type


def test_list_ops_reject_bad_inputs():
    fn, b = new_function("f", {"x": tensor("fp32", (2,)), "i": tensor("fp32", ())}, "iOS17")
    x, i = fn.inputs
    ls = b.op("make_list", elem_shape=[np.int32(3)])
    with pytest.raises(MILTypeError, match=r"list_write.*'value'"):
        b.op("list_write", ls=ls, index=np.int32(0), value=x)  # shape [2] into a list of [3]
    with pytest.raises(MILTypeError, match=r"list_read.*'index'"):
        b.op("list_read", ls=ls, index=i)
    with pytest.raises(MILTypeError, match=r"list_length.*'ls'"):
        b.op("list_length", ls=x)
    with pytest.raises(MILTypeError, match=r"list_read.*'index'.*missing"):
        b.op("list_read", ls=ls)
    with pytest.raises(MILTypeError, match=r"make_list.*'elem_shape'.*constant"):
        b.op("make_list", elem_shape=[b.op("list_length", ls=ls)])
    with pytest.raises(MILTypeError, match=r"make_list.*'dtype'"):
        b.op("make_list", elem_shape=[np.int32(3)], dtype="int8")
    with pytest.raises(MILTypeError, match=r"list_scatter.*'value'"):
        b.op("list_scatter", ls=ls, indices=np.array([0, 1], i32), value=np.ones((3, 3), f32))


def test_read_of_unwritten_symbolic_element_fails():
    fn, b = new_function("f", {}, "iOS17")
    ls = b.op("make_list", init_length=np.int32(1), elem_shape=["s"])
    fn.block.outputs = [b.op("list_read", ls=ls, index=np.int32(0))]
    with pytest.raises(ValueError, match="before it was written"):
        evaluate(fn)


def test_list_element_dtype_domain():
    fn, b = new_function("f", {}, "iOS17")
    ls = b.op("make_list", elem_shape=[np.int32(2)], dtype="int32")
    assert ls.type.elem.dtype is dt.int32
