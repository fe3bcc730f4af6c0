"""linear / matmul / einsum, conv / conv_quantized / conv_transpose and scaled_dot_product_attention.

Each table row is one case; add a row to cover a new case.
- declaration: inputs and opset versions equal coremltools' op definitions;
- TYPE_CASES: the op built in both builders gives the same output dtypes/shapes (string dims are
  symbolic);
- VALUE_CASES: our kernel on runtime inputs (plus consts) against coremltools' value inference on the
  same values ("ct") or an independent torch/numpy formula written here;
- ERROR_CASES: bad inputs raise MILTypeError naming the op and the input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.mil.ops._eval import ct_infer, ct_value, run_op
from tests.mil.ops._oracle import (assert_close, assert_same_declaration, assert_types_match,
                                   ct_first_versions, our_infer)
from torch_coreml.errors import MILTypeError, UnsupportedOpError
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.targets import Target

OPS = ["linear", "matmul", "conv", "conv_quantized", "conv_transpose", "scaled_dot_product_attention"]
f32, f16, i32, u8 = np.float32, np.float16, np.int32, np.uint8
_rng = np.random.default_rng(0)


def rand(shape, dtype=f32, lo=-1.0, hi=1.0):
    return _rng.uniform(lo, hi, size=shape).astype(dtype)


def rint(shape, lo=-4, hi=5):
    return _rng.integers(lo, hi, size=shape).astype(i32)


# -- declarations ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS + ["einsum"])
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_first_versions(op)


@pytest.mark.parametrize("op,target", [(op, t) for op in OPS for t in ("iOS15", "iOS16", "iOS17", "iOS18")
                                       if op != "scaled_dot_product_attention" or t == "iOS18"])
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


def test_einsum_declaration():
    # coremltools types `values` as an untyped tuple; its docs give the fp16/fp32 domain we enforce.
    spec = CATALOGUE.lookup("einsum", Target.iOS15)
    assert [(i.name, i.const, i.optional, i.variadic) for i in spec.inputs] == \
        [("values", False, False, True), ("equation", True, False, False)]


@pytest.mark.parametrize("op", OPS + ["einsum"])
def test_has_docstring(op):
    assert all(len(s.doc) > 20 for s in CATALOGUE.versions(op))


# -- type inference ----------------------------------------------------------------------------

TYPE_CASES = [
    # linear
    ("linear", {"x": ((2, 3, 4), "fp32")}, {"weight": rand((5, 4)), "bias": rand((5,))}, "iOS15"),
    ("linear", {"x": ((4,), "fp16")}, {"weight": rand((5, 4), f16)}, "iOS15"),
    ("linear", {"x": ((2, 4), "int32")}, {"weight": rint((3, 4))}, "iOS15"),
    ("linear", {"x": ((2, 4), "fp16")}, {"weight": rand((3, 4)), "bias": rand((3,))}, "iOS17"),
    ("linear", {"x": (("n", 4), "fp32")}, {"weight": rand((6, 4))}, "iOS17"),
    # matmul
    ("matmul", {"x": ((2, 3, 4), "fp32"), "y": ((4, 5), "fp32")}, {}, "iOS15"),
    ("matmul", {"x": ((5, 1, 3, 4), "fp16"), "y": ((10, 4, 2), "fp16")}, {}, "iOS15"),
    ("matmul", {"x": ((4, 3), "fp32"), "y": ((5, 4), "fp32")},
     {"transpose_x": True, "transpose_y": True}, "iOS15"),
    ("matmul", {"x": ((3,), "fp32"), "y": ((3, 4), "fp32")}, {}, "iOS15"),
    ("matmul", {"x": ((2, 3), "int32"), "y": ((3, 2), "int32")}, {}, "iOS17"),
    ("matmul", {"x": ((2, 3), "fp32")}, {"y": rand((3, 4), f16)}, "iOS17"),
    ("matmul", {"y": ((3, 4), "fp16")}, {"x": rand((2, 3))}, "iOS17"),
    ("matmul", {"x": (("b", 3, 4), "fp32"), "y": ((4, "k"), "fp32")}, {}, "iOS17"),
    # conv
    ("conv", {"x": ((1, 4, 10), "fp32")}, {"weight": rand((6, 4, 3))}, "iOS15"),
    ("conv", {"x": ((2, 4, 9, 9), "fp32")},
     {"weight": rand((8, 4, 3, 3)), "bias": rand((8,)), "strides": [2, 2], "pad_type": "same"}, "iOS15"),
    ("conv", {"x": ((1, 4, 8, 7), "fp16")},
     {"weight": rand((4, 4, 2, 2), f16), "strides": [3, 2], "pad_type": "same_lower"}, "iOS16"),
    ("conv", {"x": ((1, 4, 8, 8), "fp32")},
     {"weight": rand((6, 2, 3, 3)), "pad_type": "custom", "pad": [1, 2, 0, 1], "dilations": [2, 1],
      "groups": 2}, "iOS15"),
    ("conv", {"x": ((1, 2, 5, 6, 7), "fp32")},
     {"weight": rand((4, 2, 2, 2, 2)), "strides": [1, 2, 3]}, "iOS15"),
    ("conv", {"x": ((1, 4, 6, 6), "fp32"), "weight": ((5, 4, 3, 3), "fp32")}, {}, "iOS15"),
    ("conv", {"x": ((1, 4, 6, 6), "fp16"), "bias": ((5,), "fp32")},
     {"weight": rand((5, 4, 3, 3))}, "iOS17"),
    ("conv", {"x": (("n", 4, "h", 10), "fp32")},
     {"weight": rand((5, 4, 3, 3)), "pad_type": "same", "strides": [2, 2]}, "iOS17"),
    # conv_quantized
    ("conv_quantized", {"x": ((1, 4, 6, 6), "fp32")},
     {"weight": _rng.integers(0, 255, (8, 4, 3, 3)).astype(u8), "quantization_type": "linear",
      "quant_scale": rand((8,), lo=0.01, hi=0.1), "quant_bias": rand((8,)), "pad_type": "same"}, "iOS15"),
    # conv_transpose
    ("conv_transpose", {"x": ((1, 4, 5, 5), "fp32")}, {"weight": rand((4, 3, 3, 3)), "strides": [2, 2]},
     "iOS15"),
    ("conv_transpose", {"x": ((1, 4, 5, 6), "fp32")},
     {"weight": rand((4, 3, 3, 2)), "strides": [2, 3], "pad_type": "same"}, "iOS15"),
    ("conv_transpose", {"x": ((1, 4, 5, 5), "fp16")},
     {"weight": rand((4, 3, 3, 3), f16), "pad_type": "custom", "pad": [1, 1, 0, 2], "dilations": [1, 2]},
     "iOS15"),
    ("conv_transpose", {"x": ((1, 4, 5, 5), "fp32")},
     {"weight": rand((4, 3, 3, 3)), "strides": [2, 2], "output_shape": [1, 3, 12, 11]}, "iOS15"),
    ("conv_transpose", {"x": ((2, 4, 5), "fp32")},
     {"weight": rand((4, 3, 3)), "groups": 2, "bias": rand((6,))}, "iOS15"),
    ("conv_transpose", {"x": ((1, 2, 3, 4, 5), "fp32")}, {"weight": rand((2, 2, 2, 2, 2))}, "iOS15"),
    ("conv_transpose", {"x": ((1, 4, 5, 5), "fp16"), "weight": ((4, 3, 3, 3), "fp32")}, {}, "iOS17"),
    ("conv_transpose", {"x": (("n", 4, "h", 5), "fp32")}, {"weight": rand((4, 3, 3, 3))}, "iOS17"),
    # scaled_dot_product_attention
    ("scaled_dot_product_attention",
     {"query": ((2, 4, 5, 8), "fp32"), "key": ((2, 4, 6, 8), "fp32"), "value": ((2, 4, 6, 3), "fp32")},
     {}, "iOS18"),
    ("scaled_dot_product_attention",
     {"query": ((2, 5, 8), "fp16"), "key": ((2, 6, 8), "fp16"), "value": ((2, 6, 3), "fp16"),
      "attn_mask": ((5, 6), "bool")}, {}, "iOS18"),
    ("scaled_dot_product_attention",
     {"query": ((1, 2, "l", 8), "fp32"), "key": ((1, 2, "s", 8), "fp32"), "value": ((1, 2, "s", 4), "fp32")},
     {"attn_mask": rand((1, 1, 1, 1))}, "iOS18"),
]


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TYPE_CASES)])
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_types_match(our_infer(op, inputs, consts, target), ct_infer(op, inputs, consts, target))


@pytest.mark.parametrize("xs,ys", [((3,), (2, 3, 4)), ((2, 3, 4), (4,)), ((4,), (4,)), ((5, 1, 3), (3,))])
def test_matmul_vector_shapes_follow_numpy(xs, ys):
    # coremltools mis-infers (or crashes on) rank-1 operands with batch dims; numpy is the reference.
    (_, shape), = our_infer("matmul", {"x": (xs, "fp32"), "y": (ys, "fp32")})
    assert shape == np.matmul(np.zeros(xs), np.zeros(ys)).shape


@pytest.mark.parametrize("op,inputs,consts", [
    ("conv", {"x": ((1, 4, "h", "w"), "fp32")}, {"weight": rand((2, 4, 3, 3))}),
    ("conv_transpose", {"x": ((1, 4, "h", "w"), "fp32")}, {"weight": rand((4, 2, 3, 3))}),
])
def test_symbolic_spatial_dims_become_fresh_symbols(op, inputs, consts):
    (_, shape), = our_infer(op, inputs, consts)
    assert all(isinstance(d, str) and d not in ("h", "w") for d in shape[2:])
    assert shape[2] != shape[3]


def _ct_einsum(equation, xs, ys, dtype="fp32"):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    out = {}

    ct_dtype = getattr(types, dtype)

    @mb.program(input_specs=[mb.TensorSpec(xs, ct_dtype), mb.TensorSpec(ys, ct_dtype)],
                opset_version=ct.target.iOS17)
    def prog(x, y):
        out["v"] = mb.einsum(values=(x, y), equation=equation)
        return out["v"]

    return tuple(int(d) for d in out["v"].shape)


@pytest.mark.parametrize("equation,xs,ys,dtype", [
    ("nchw,nwhu->nchu", (2, 3, 4, 5), (2, 5, 4, 6), "fp32"),
    ("abcd,adce->abce", (1, 3, 4, 5), (2, 5, 1, 6), "fp16"),
    ("chw,whr->chr", (3, 4, 5), (5, 1, 2), "fp32"),
])
def test_einsum_matches_coremltools(equation, xs, ys, dtype):
    x, y = rand(xs, np.dtype(dtype.replace("fp", "float"))), rand(ys, np.dtype(dtype.replace("fp", "float")))
    (got,), (t,) = run_op("einsum", consts={"values*": [x, y], "equation": equation})
    assert t.shape == _ct_einsum(equation, xs, ys, dtype)
    b = np.broadcast_shapes
    if len(xs) == 4:
        bx = b(xs, (ys[0], xs[1], ys[2], xs[3]))
        by = b(ys, (xs[0], ys[1], xs[2], ys[3]))
    else:
        bx, by = b(xs, (xs[0], ys[1], xs[2])), b(ys, (ys[0], xs[1], ys[2]))
    want = np.einsum(equation, np.broadcast_to(x, bx).astype(f32), np.broadcast_to(y, by).astype(f32))
    assert_close(got.float(), want, dtype)


def test_einsum_symbolic_and_bad_equation():
    from torch_coreml.mil.builder import new_function
    from torch_coreml.mil.types import Symbol, tensor

    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), 3, 4, 5)),
                                  "y": tensor("fp32", (1, 5, 4, 6))}, "iOS17")
    out = b.op("einsum", values=list(fn.inputs), equation="nchw,nwhu->nchu")
    assert out.type.shape == (Symbol("n"), 3, 4, 6)
    with pytest.raises(MILTypeError, match=r"einsum.*'equation'"):
        b.op("einsum", values=list(fn.inputs), equation="nchw,nwhu->nhcu")


# -- kernel values -----------------------------------------------------------------------------

def _np_pad(x, pads):
    return np.pad(x, [(0, 0), (0, 0)] + list(pads))


def conv_ref(x, weight, bias=None, strides=None, pads=None, dilations=None, groups=1):
    """torch's convolution after explicit numpy padding."""
    n = x.ndim - 2
    xt = torch.from_numpy(_np_pad(x.astype(f32), pads or [(0, 0)] * n))
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    b = None if bias is None else torch.from_numpy(bias.astype(f32))
    return fn(xt, torch.from_numpy(weight.astype(f32)), b, stride=strides or 1, dilation=dilations or 1,
              groups=groups).numpy()


def conv_transpose_ref(x, weight, out_spatial, conv_pads, strides, dilations=None, groups=1, bias=None):
    """conv_transpose as the input-gradient of a conv on an output-sized tensor (an independent route):
    the conv with `conv_pads` maps `out_spatial` back onto x's spatial size."""
    n = x.ndim - 2
    c_out = weight.shape[1] * groups
    y = torch.zeros((x.shape[0], c_out) + tuple(out_spatial), requires_grad=True)
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    flat = [p for pair in reversed(conv_pads) for p in pair]
    res = fn(F.pad(y, flat), torch.from_numpy(weight.astype(f32)), stride=strides,
             dilation=dilations or 1, groups=groups)
    assert res.shape == x.shape, (res.shape, x.shape)
    (grad,) = torch.autograd.grad(res, y, torch.from_numpy(x.astype(f32)))
    out = grad.numpy()
    if bias is not None:
        out = out + bias.astype(f32).reshape((-1,) + (1,) * n)
    return out


def sdpa_ref(query, key, value, attn_mask=None):
    q, k, v = (torch.from_numpy(a.astype(f32)) for a in (query, key, value))
    m = None if attn_mask is None else torch.from_numpy(attn_mask if attn_mask.dtype == bool
                                                        else attn_mask.astype(f32))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=m).numpy()


W4 = rand((6, 4, 3, 3))
VALUE_CASES = [
    # (op, target, runtime inputs, consts, reference: "ct" or fn(**inputs, **consts))
    ("linear", "iOS15", {"x": rand((2, 3, 4))}, {"weight": rand((5, 4)), "bias": rand((5,))}, "ct"),
    ("linear", "iOS15", {"x": rand((3, 4), f16)}, {"weight": rand((5, 4), f16)}, "ct"),
    ("linear", "iOS15", {"x": rint((2, 4))}, {"weight": rint((3, 4)), "bias": rint((3,))}, "ct"),
    ("linear", "iOS17", {"x": rand((2, 4), f16)}, {"weight": rand((3, 4)), "bias": rand((3,))},
     lambda x, weight, bias: x.astype(f32) @ weight.T + bias),
    ("matmul", "iOS15", {"x": rand((5, 1, 3, 4)), "y": rand((2, 4, 2))}, {}, "ct"),
    ("matmul", "iOS15", {"x": rand((4, 3), f16), "y": rand((5, 4), f16)},
     {"transpose_x": True, "transpose_y": True}, "ct"),
    ("matmul", "iOS15", {"x": rint((2, 3)), "y": rint((3, 4))}, {}, "ct"),
    ("matmul", "iOS15", {"x": rand((3,)), "y": rand((2, 3, 4))}, {}, lambda x, y: np.matmul(x, y)),
    ("matmul", "iOS15", {"x": rand((2, 3, 4)), "y": rand((4,))}, {}, lambda x, y: np.matmul(x, y)),
    ("matmul", "iOS15", {"x": rand((4,)), "y": rand((4,))}, {}, lambda x, y: np.matmul(x, y)),
    ("matmul", "iOS17", {"x": rand((2, 3), f16)}, {"y": rand((3, 4))},
     lambda x, y: x.astype(f32) @ y),
    # conv
    ("conv", "iOS15", {"x": rand((2, 4, 10))}, {"weight": rand((6, 4, 3)), "bias": rand((6,))},
     lambda x, weight, bias: conv_ref(x, weight, bias)),
    ("conv", "iOS15", {"x": rand((1, 4, 9, 8))}, {"weight": W4, "strides": [2, 2], "pad_type": "same"},
     # ceil(9/2)=5: total pad 2 -> (1, 1); ceil(8/2)=4: total pad 1 -> (0, 1)
     lambda x, weight, **_: conv_ref(x, weight, strides=[2, 2], pads=[(1, 1), (0, 1)])),
    ("conv", "iOS16", {"x": rand((1, 4, 8, 8), f16)},
     {"weight": rand((6, 4, 2, 2), f16), "pad_type": "same_lower"},
     lambda x, weight, **_: conv_ref(x, weight, pads=[(1, 0), (1, 0)])),
    ("conv", "iOS15", {"x": rand((1, 4, 8, 8))},
     {"weight": rand((6, 2, 3, 3)), "pad_type": "custom", "pad": [1, 2, 0, 1], "dilations": [2, 1],
      "groups": 2},
     lambda x, weight, **_: conv_ref(x, weight, pads=[(1, 2), (0, 1)], dilations=[2, 1], groups=2)),
    ("conv", "iOS15", {"x": rand((1, 2, 5, 6, 7))}, {"weight": rand((4, 2, 2, 2, 2)), "strides": [1, 2, 3]},
     lambda x, weight, **_: conv_ref(x, weight, strides=[1, 2, 3])),
    ("conv", "iOS15", {"x": rand((1, 4, 6, 6)), "weight": rand((5, 4, 3, 3))}, {},
     lambda x, weight: conv_ref(x, weight)),
    ("conv", "iOS17", {"x": rand((1, 4, 6, 6), f16), "bias": rand((6,))}, {"weight": W4},
     lambda x, weight, bias: conv_ref(x, weight, bias)),
    ("conv_quantized", "iOS15", {"x": rand((1, 4, 6, 6))},
     {"weight": (q := _rng.integers(0, 255, (6, 4, 3, 3)).astype(u8)), "quantization_type": "linear",
      "quant_scale": (s := rand((6,), lo=0.01, hi=0.02)), "quant_bias": (o := rand((1,))),
      "pad_type": "same"},
     lambda x, **_: conv_ref(x, q * s.reshape(-1, 1, 1, 1) + o.reshape(-1, 1, 1, 1),
                             pads=[(1, 1), (1, 1)])),
    # conv_transpose, checked as the gradient of the matching conv
    ("conv_transpose", "iOS15", {"x": rand((1, 4, 5, 5))}, {"weight": rand((4, 3, 3, 3)), "strides": [2, 2]},
     lambda x, weight, **_: conv_transpose_ref(x, weight, (11, 11), [(0, 0), (0, 0)], [2, 2])),
    ("conv_transpose", "iOS15", {"x": rand((1, 4, 5, 6))},
     {"weight": rand((4, 3, 3, 2)), "strides": [2, 3], "pad_type": "same"},
     # out = (10, 18); the conv "same" padding that maps 10 -> 5 and 18 -> 6 is (0, 1) and (0, 0)
     lambda x, weight, **_: conv_transpose_ref(x, weight, (10, 18), [(0, 1), (0, 0)], [2, 3])),
    ("conv_transpose", "iOS15", {"x": rand((1, 4, 5, 5), f16)},
     {"weight": rand((4, 3, 3, 3), f16), "pad_type": "custom", "pad": [1, 1, 0, 2], "dilations": [1, 2]},
     lambda x, weight, **_: conv_transpose_ref(x, weight, (5, 7), [(1, 1), (0, 2)], [1, 1], [1, 2])),
    ("conv_transpose", "iOS15", {"x": rand((1, 4, 5, 5))},
     {"weight": rand((4, 3, 3, 3)), "strides": [2, 2], "pad_type": "custom", "pad": [1, 1, 1, 1],
      "output_shape": [1, 3, 10, 10]},
     # PyTorch's output_padding=1: one extra row/col after the cropped result
     lambda x, weight, **_: F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(weight), stride=2,
                                               padding=1, output_padding=1).numpy()),
    ("conv_transpose", "iOS15", {"x": rand((2, 4, 5))},
     {"weight": rand((4, 3, 3)), "groups": 2, "bias": rand((6,))},
     lambda x, weight, bias, groups: conv_transpose_ref(x, weight, (7,), [(0, 0)], [1], groups=2, bias=bias)),
    ("conv_transpose", "iOS17", {"x": rand((1, 2, 3, 4, 3), f16), "weight": rand((2, 2, 2, 2, 2))}, {},
     lambda x, weight: conv_transpose_ref(x, weight, (4, 5, 4), [(0, 0)] * 3, [1, 1, 1])),
    # scaled_dot_product_attention
    ("scaled_dot_product_attention", "iOS18",
     {"query": rand((2, 3, 5, 8)), "key": rand((2, 3, 6, 8)), "value": rand((2, 3, 6, 4))}, {}, "ct"),
    ("scaled_dot_product_attention", "iOS18",
     {"query": rand((2, 5, 8)), "key": rand((2, 6, 8)), "value": rand((2, 6, 4)),
      "attn_mask": np.tril(np.ones((5, 6), bool))}, {}, "ct"),
    ("scaled_dot_product_attention", "iOS18",
     {"query": rand((1, 5, 8), f16), "key": rand((1, 6, 8), f16), "value": rand((1, 6, 4), f16),
      "attn_mask": rand((1, 5, 6), f16)}, {}, sdpa_ref),
]


@pytest.mark.parametrize("op,target,inputs,consts,ref", VALUE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(VALUE_CASES)])
def test_kernel_values(op, target, inputs, consts, ref):
    (got,), (t,) = run_op(op, target, consts=consts, **inputs)
    assert tuple(got.shape) == t.shape
    assert got.dtype == t.dtype.torch
    if ref == "ct":
        (want,) = ct_value(op, {**inputs, **consts}, target)
    else:
        want = ref(**inputs, **consts)
    dtype = t.dtype.name
    if dtype == "fp16":  # fp16 accumulation over tens of terms
        np.testing.assert_allclose(got.float().numpy(), np.asarray(want, f32), rtol=1e-2, atol=1e-2)
    else:
        assert_close(got, np.asarray(want).astype(got.numpy().dtype), dtype)


def test_kernels_take_symbolic_shapes_at_run_time():
    # A program typed with a symbolic spatial size runs the kernel on whatever size arrives.
    from torch_coreml.mil.builder import new_function
    from torch_coreml.mil.ops.spec import OpContext, call_kernel
    from torch_coreml.mil.types import Symbol, tensor

    fn, b = new_function("main", {"x": tensor("fp32", (1, 4, Symbol("h"), 9))}, "iOS17")
    w = rand((2, 4, 3, 3))
    op = b.add_op("conv", {"x": fn.inputs[0], "weight": b.const(w), "pad_type": b.const("same"),
                           "strides": b.const([2, 2])})
    ctx = OpContext(CATALOGUE.lookup("conv", Target.iOS17), op.inputs, fn.target)
    for h in (5, 12):
        x = rand((1, 4, h, 9))
        out = call_kernel(ctx, {"x": torch.from_numpy(x), "weight": torch.from_numpy(w),
                                "pad_type": "same", "strides": torch.tensor([2, 2])})
        assert out.shape == (1, 2, math.ceil(h / 2), 5)


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    ("linear", {"x": ((2, 4), "fp32")}, {"weight": rand((3, 4), f16)}, "iOS15", r"linear.*'weight'"),
    ("linear", {"x": ((2, 4), "fp32"), "weight": ((3, 4), "fp32")}, {}, "iOS17",
     r"linear.*'weight' must be a compile-time constant"),
    ("linear", {"x": ((2, 4), "fp32")}, {"weight": rand((3, 5))}, "iOS17", r"linear.*'x'"),
    ("matmul", {"x": ((2, 4), "fp32")}, {}, "iOS15", r"matmul.*required input 'y'"),
    ("matmul", {"x": ((2, 4), "int8"), "y": ((4, 2), "int8")}, {}, "iOS17", r"matmul.*'x' has dtype int8"),
    ("matmul", {"x": ((2, 4), "fp32"), "y": ((4, 2), "fp16")}, {}, "iOS17", r"matmul.*'x' and 'y'"),
    ("matmul", {"x": ((2, 4), "fp32"), "y": ((5, 2), "fp32")}, {}, "iOS15", r"matmul.*'x'"),
    ("matmul", {"x": ((4,), "fp32"), "y": ((4, 2), "fp32")}, {"transpose_x": True}, "iOS15",
     r"matmul.*'transpose_x'"),
    ("conv", {"x": ((1, 4, 8, 8), "fp32")}, {"weight": W4, "pad_type": "same_lower"}, "iOS15",
     r"conv.*'pad_type'"),
    ("conv", {"x": ((1, 4, 8, 8), "fp32"), "weight": ((6, 4, 3, 3), "fp32")}, {"dilations": [2, 2]},
     "iOS15", r"conv.*'weight' must be a compile-time constant"),
    ("conv", {"x": ((1, 4, 8, 8), "fp32"), "bias": ((6,), "fp32")}, {"weight": W4}, "iOS15",
     r"conv.*'bias' must be a compile-time constant"),
    ("conv", {"x": ((1, 4, 8, 8), "fp32")}, {"weight": W4, "groups": 3}, "iOS15", r"conv.*'groups'"),
    ("conv", {"x": ((1, 4, 8, 8), "fp32")}, {"weight": W4, "strides": [1]}, "iOS15", r"conv.*'strides'"),
    ("conv", {"x": ((1, 4, 2, 2), "fp32")}, {"weight": W4}, "iOS15", r"conv.*empty output"),
    ("conv", {"x": ((1, 4, 8, 8), "int32")}, {"weight": W4}, "iOS15", r"conv.*'x' has dtype int32"),
    ("conv_quantized", {"x": ((1, 4, 6, 6), "fp32")},
     {"weight": np.zeros((6, 4, 3, 3), u8), "quantization_type": "lut", "quant_scale": rand((6,)),
      "quant_bias": rand((6,))}, "iOS15", r"conv_quantized.*'quantization_type'"),
    ("conv_transpose", {"x": ((1, 4, 5, 5), "fp32"), "weight": ((4, 3, 3, 3), "fp32")}, {}, "iOS16",
     r"conv_transpose.*'weight' must be a compile-time constant"),
    ("conv_transpose", {"x": ((1, 4, 5, 5), "fp32")}, {"weight": rand((4, 3, 3, 3)),
                                                       "output_shape": [1, 4, 7, 7]}, "iOS17",
     r"conv_transpose.*'output_shape'"),
    ("scaled_dot_product_attention",
     {"query": ((2, 5, 8), "fp32"), "key": ((2, 6, 8), "fp32"), "value": ((2, 6, 4), "fp32"),
      "attn_mask": ((5, 6), "int32")}, {}, "iOS18", r"scaled_dot_product_attention.*'attn_mask'"),
    ("scaled_dot_product_attention",
     {"query": ((2, 5, 8), "fp32"), "key": ((2, 6, 7), "fp32"), "value": ((2, 6, 4), "fp32")}, {},
     "iOS18", r"scaled_dot_product_attention.*'query' and 'key'"),
]


@pytest.mark.parametrize("op,inputs,consts,target,match", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_bad_inputs_raise(op, inputs, consts, target, match):
    with pytest.raises(MILTypeError, match=match):
        our_infer(op, inputs, consts, target)


def test_sdpa_needs_ios18():
    with pytest.raises(UnsupportedOpError, match="scaled_dot_product_attention.*iOS18"):
        our_infer("scaled_dot_product_attention",
                  {"query": ((2, 5, 8), "fp32"), "key": ((2, 6, 8), "fp32"), "value": ((2, 6, 4), "fp32")},
                  {}, "iOS17")
