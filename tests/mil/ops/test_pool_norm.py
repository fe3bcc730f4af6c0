"""Pooling (avg_pool, l2_pool, max_pool) and normalization ops against coremltools and torch.

Each table row is one case; add a row to cover a new case.
- declaration: inputs and opset versions equal coremltools' op definitions;
- TYPE_CASES: the op built in both builders gives the same output dtypes/shapes (string dims are
  symbolic);
- VALUE_CASES: our kernel on a runtime `x` against coremltools' value inference ("ct", where the op has
  one) or an independent torch/numpy formula written here;
- ERROR_CASES: bad inputs raise MILTypeError naming the op and the input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.mil.ops._eval import ct_infer, ct_value, run_op
from tests.mil.ops._oracle import (assert_same_declaration, assert_types_match,
                                   ct_first_versions, our_infer)
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.ops import CATALOGUE

POOLS = ["avg_pool", "l2_pool", "max_pool"]
NORMS = ["batch_norm", "instance_norm", "l2_norm", "layer_norm", "local_response_norm"]
f32, f16, i32 = np.float32, np.float16, np.int32
_rng = np.random.default_rng(1)


def rand(shape, dtype=f32, lo=-2.0, hi=2.0):
    return _rng.uniform(lo, hi, size=shape).astype(dtype)


# -- declarations ------------------------------------------------------------------------------

@pytest.mark.parametrize("op", POOLS + NORMS)
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_first_versions(op)


@pytest.mark.parametrize("target", ["iOS15", "iOS16", "iOS17", "iOS18"])
@pytest.mark.parametrize("op", POOLS + NORMS)
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


@pytest.mark.parametrize("op", POOLS + NORMS)
def test_has_docstring(op):
    assert all(len(s.doc) > 20 for s in CATALOGUE.versions(op))


# -- type inference ----------------------------------------------------------------------------

def K(*k, pad_type="valid", **kw):
    """Pooling consts: kernel sizes, pad_type and any extra params."""
    return {"kernel_sizes": list(k), "pad_type": pad_type, **kw}


TYPE_CASES = [
    ("avg_pool", {"x": ((1, 3, 8, 8), "fp32")}, K(2, 2, strides=[2, 2]), "iOS15"),
    ("avg_pool", {"x": ((2, 3, 9), "fp16")}, K(3, pad_type="same", strides=[2]), "iOS15"),
    ("avg_pool", {"x": ((1, 2, 5, 6, 7), "fp32")},
     K(2, 3, 2, pad_type="custom", pad=[1, 0, 1, 1, 0, 1], exclude_padding_from_average=True), "iOS15"),
    ("avg_pool", {"x": ((1, 3, 7, 7), "fp32")},
     K(3, 3, pad_type="custom", pad=[1, 1, 1, 1], strides=[2, 2], ceil_mode=True), "iOS15"),
    ("avg_pool", {"x": ((1, 3, 8, 8), "fp32")}, K(3, 3, strides=[2, 2], ceil_mode=True), "iOS17"),
    ("max_pool", {"x": ((1, 3, 8, 7), "fp16")}, K(2, 3, pad_type="same_lower", strides=[3, 2]), "iOS16"),
    ("max_pool", {"x": ((1, 3, 10), "fp32")}, K(4, strides=[3], pad_type="custom", pad=[2, 2],
                                                ceil_mode=True), "iOS17"),
    ("max_pool", {"x": (("n", 3, "h", 8), "fp32")}, K(2, 2, strides=[2, 2]), "iOS17"),
    ("l2_pool", {"x": ((1, 3, 9, 9), "fp32")}, K(3, 3, pad_type="same", strides=[2, 2]), "iOS15"),
    ("l2_pool", {"x": ((2, 3, 9), "fp16")}, K(2), "iOS17"),
    ("batch_norm", {"x": ((2, 3, 5), "fp32")}, {"mean": rand((3,)), "variance": rand((3,), lo=0.5)}, "iOS15"),
    ("batch_norm", {"x": (("n", 3, 4, 5, 6), "fp16")},
     {"mean": rand((3,), f16), "variance": rand((3,), f16, 0.5), "gamma": rand((3,), f16),
      "beta": rand((3,), f16), "epsilon": f16(1e-3)}, "iOS15"),
    ("batch_norm", {"x": ((2, 3, 4, 4), "fp16")},
     {"mean": rand((3,)), "variance": rand((3,), lo=0.5), "epsilon": f32(1e-3)}, "iOS17"),
    ("instance_norm", {"x": ((2, 3, 4, 5), "fp32")}, {"gamma": rand((3,)), "beta": rand((3,))}, "iOS15"),
    ("instance_norm", {"x": (("n", 3, "w"), "fp16")}, {"gamma": rand((3,))}, "iOS17"),
    ("l2_norm", {"x": ((3, 4, 5), "fp32")}, {}, "iOS15"),
    ("l2_norm", {"x": (("b", 2, 3, 4, 5), "fp16")}, {"epsilon": f32(1e-4)}, "iOS17"),
    ("layer_norm", {"x": ((2, 3, 4), "fp32")}, {"axes": [-1], "gamma": rand((4,)), "beta": rand((4,))},
     "iOS15"),
    ("layer_norm", {"x": (("n", 3, 4), "fp16")}, {"axes": [1, 2], "epsilon": f16(1e-3)}, "iOS15"),
    ("layer_norm", {"x": ((2, 3, 4), "fp16")}, {"axes": [0, 1, 2], "gamma": rand((2, 3, 4))}, "iOS17"),
    ("local_response_norm", {"x": ((1, 6, 4, 4), "fp32")}, {"size": 3}, "iOS15"),
    ("local_response_norm", {"x": ((1, 6, "w"), "fp16")},
     {"size": 4, "alpha": f32(1e-2), "beta": f32(0.5), "k": f32(2.0)}, "iOS17"),
]


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TYPE_CASES)])
def test_type_inference_matches_coremltools(op, inputs, consts, target):
    assert_types_match(our_infer(op, inputs, consts, target), ct_infer(op, inputs, consts, target))


def test_layer_norm_default_axes_is_all():
    assert our_infer("layer_norm", {"x": (("n", 3), "fp32")}, {"gamma": rand((4, 3))}) == [("fp32", ("n", 3))]


@pytest.mark.parametrize("op", POOLS)
def test_symbolic_spatial_dims_become_fresh_symbols(op):
    (_, shape), = our_infer(op, {"x": (("n", 3, "h", "w"), "fp32")}, K(2, 2, pad_type="same"))
    assert shape[:2] == ("n", 3)
    assert all(isinstance(d, str) and d not in ("n", "h", "w") for d in shape[2:])
    assert shape[2] != shape[3]


# -- kernel values -----------------------------------------------------------------------------

def _t(a):
    return torch.from_numpy(np.asarray(a, f32))


def pool_ref(kind, x, kernel_sizes, strides=None, pads=None, ceil_mode=False, exclude=False):
    """torch pooling on x after explicit padding `pads` [(before, after)] per spatial dim."""
    n = x.ndim - 2
    strides = strides or [1] * n
    xt = _t(x)
    flat = [p for pair in reversed(pads or [(0, 0)] * n) for p in pair]
    if kind == "max":
        return {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[n](
            F.pad(xt, flat, value=float("-inf")), kernel_sizes, strides, ceil_mode=ceil_mode).numpy()
    if kind == "l2":
        if n == 1:  # lp_pool1d wants plain ints
            return F.lp_pool1d(F.pad(xt, flat), 2.0, kernel_sizes[0], strides[0], ceil_mode).numpy()
        return F.lp_pool2d(F.pad(xt, flat), 2.0, kernel_sizes, strides, ceil_mode=ceil_mode).numpy()
    avg = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[n]
    total = avg(F.pad(xt, flat), kernel_sizes, strides, ceil_mode=ceil_mode)
    if not exclude:
        return total.numpy()
    count = avg(F.pad(torch.ones_like(xt), flat), kernel_sizes, strides, ceil_mode=ceil_mode)
    return (total / count).numpy()


def torch_avg(x, k, s, p, ceil_mode=False, include=True):
    """PyTorch's own padded average pooling (its ceil_mode/count_include_pad rules)."""
    return F.avg_pool2d(_t(x), k, s, p, ceil_mode=ceil_mode, count_include_pad=include).numpy()


def lrn_ref(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Loop over channels: sum of squares over channels [c - size//2, c + (size-1)//2]."""
    out = np.empty(x.shape, np.float64)
    channels = x.shape[1]
    for c in range(channels):
        lo, hi = max(0, c - size // 2), min(channels, c + (size - 1) // 2 + 1)
        s = (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (k + alpha / size * s) ** beta
    return out


def norm_ref(x, mean, var, gamma, beta, eps, shape):
    """(x - mean) / sqrt(var + eps) * gamma + beta; 1-D params are reshaped to `shape` (None: as given)."""
    def r(a):
        return a if shape is None else a.reshape(shape)
    y = (x.astype(np.float64) - r(mean)) / np.sqrt(r(var) + eps)
    p = (1, -1) + (1,) * (x.ndim - 2)
    return y * (1 if gamma is None else gamma.reshape(p)) + (0 if beta is None else beta.reshape(p))


def instance_ref(x, gamma=None, beta=None, epsilon=1e-5):
    axes = tuple(range(2, x.ndim))
    x64 = x.astype(np.float64)
    return norm_ref(x64, x64.mean(axes, keepdims=True), x64.var(axes, keepdims=True), gamma, beta, epsilon,
                    shape=None)


X4 = rand((2, 3, 7, 8))
VALUE_CASES = [
    # (op, target, x, consts, reference: "ct" or fn(x, **consts))
    ("avg_pool", "iOS15", X4, K(2, 2, strides=[2, 2]), lambda x, **_: torch_avg(x, 2, 2, 0)),
    ("avg_pool", "iOS15", X4, K(3, 3, pad_type="custom", pad=[1, 1, 1, 1]),
     lambda x, **_: torch_avg(x, 3, 1, 1)),
    ("avg_pool", "iOS15", X4, K(3, 3, pad_type="custom", pad=[1, 1, 1, 1],
                                exclude_padding_from_average=True),
     lambda x, **_: torch_avg(x, 3, 1, 1, include=False)),
    ("avg_pool", "iOS15", X4, K(3, 3, pad_type="custom", pad=[1, 1, 1, 1], strides=[2, 2], ceil_mode=True),
     lambda x, **_: torch_avg(x, 3, 2, 1, ceil_mode=True)),
    ("avg_pool", "iOS15", X4, K(3, 3, pad_type="custom", pad=[1, 1, 1, 1], strides=[2, 2], ceil_mode=True,
                                exclude_padding_from_average=True),
     lambda x, **_: torch_avg(x, 3, 2, 1, ceil_mode=True, include=False)),
    ("avg_pool", "iOS15", X4, K(3, 3, strides=[2, 2], ceil_mode=True),
     lambda x, **_: torch_avg(x, 3, 2, 0, ceil_mode=True)),
    ("avg_pool", "iOS15", rand((2, 3, 9), f16), K(3, pad_type="same", strides=[2]),
     # ceil(9/2)=5 windows: total pad 2 -> (1, 1), zeros counted
     lambda x, **_: pool_ref("avg", x, [3], [2], [(1, 1)])),
    ("avg_pool", "iOS16", rand((2, 3, 8)), K(2, pad_type="same_lower", exclude_padding_from_average=True),
     lambda x, **_: pool_ref("avg", x, [2], [1], [(1, 0)], exclude=True)),
    ("avg_pool", "iOS15", rand((1, 2, 5, 6, 7)), K(2, 3, 2, pad_type="custom", pad=[1, 0, 1, 1, 0, 1],
                                                   exclude_padding_from_average=True),
     lambda x, **_: pool_ref("avg", x, [2, 3, 2], None, [(1, 0), (1, 1), (0, 1)], exclude=True)),
    ("max_pool", "iOS15", X4, K(2, 3, pad_type="same", strides=[3, 2]),
     # ceil(7/3)=3: total pad 1 -> (0, 1); ceil(8/2)=4: total pad 1 -> (0, 1)
     lambda x, **_: pool_ref("max", x, [2, 3], [3, 2], [(0, 1), (0, 1)])),
    ("max_pool", "iOS16", rand((1, 3, 8, 7), f16), K(2, 3, pad_type="same_lower", strides=[3, 2]),
     # ceil(8/3)=3: no padding needed; ceil(7/2)=4: total pad 2 -> (1, 1)
     lambda x, **_: pool_ref("max", x, [2, 3], [3, 2], [(0, 0), (1, 1)])),
    ("max_pool", "iOS15", X4, K(3, 3, pad_type="custom", pad=[1, 1, 1, 1], strides=[2, 2], ceil_mode=True),
     lambda x, **_: F.max_pool2d(_t(x), 3, 2, 1, ceil_mode=True).numpy()),
    ("max_pool", "iOS17", rand((1, 2, 4, 5, 6)), K(2, 2, 3, strides=[2, 2, 3]),
     lambda x, **_: pool_ref("max", x, [2, 2, 3], [2, 2, 3])),
    ("max_pool", "iOS15", rand((2, 3, 10)), K(4, strides=[3], pad_type="custom", pad=[2, 2]),
     lambda x, **_: pool_ref("max", x, [4], [3], [(2, 2)])),
    ("l2_pool", "iOS15", X4, K(2, 2, strides=[2, 2]), lambda x, **_: pool_ref("l2", x, [2, 2], [2, 2])),
    ("l2_pool", "iOS15", rand((2, 3, 9), f16), K(3, pad_type="same", strides=[2]),
     lambda x, **_: pool_ref("l2", x, [3], [2], [(1, 1)])),
    ("l2_pool", "iOS17", X4, K(3, 3, pad_type="custom", pad=[0, 1, 2, 0]),
     lambda x, **_: pool_ref("l2", x, [3, 3], [1, 1], [(0, 1), (2, 0)])),
    # normalization
    ("batch_norm", "iOS15", rand((2, 3, 5)),
     {"mean": (m := rand((3,))), "variance": (v := rand((3,), lo=0.5))},
     lambda x, **_: norm_ref(x, m, v, None, None, 1e-5, (1, -1, 1))),
    ("batch_norm", "iOS15", rand((2, 3, 4, 5), f16),
     {"mean": (m2 := rand((3,), f16)), "variance": (v2 := rand((3,), f16, 0.5)),
      "gamma": (g2 := rand((3,), f16)), "beta": (b2 := rand((3,), f16)), "epsilon": f16(1e-2)},
     lambda x, **_: F.batch_norm(_t(x), _t(m2), _t(v2), _t(g2), _t(b2), eps=float(f16(1e-2))).numpy()),
    ("batch_norm", "iOS17", rand((1, 3, 2, 3, 4), f16),
     {"mean": (m3 := rand((3,))), "variance": (v3 := rand((3,), lo=0.5)), "beta": (b3 := rand((3,)))},
     lambda x, **_: norm_ref(x, m3, v3, None, b3, 1e-5, (1, -1, 1, 1, 1))),
    ("instance_norm", "iOS15", rand((2, 3, 4, 5)), {"gamma": rand((3,)), "beta": rand((3,))},
     lambda x, gamma, beta: F.instance_norm(_t(x), weight=_t(gamma), bias=_t(beta)).numpy()),
    ("instance_norm", "iOS17", rand((2, 3, 6), f16), {"epsilon": f32(1e-3)},
     lambda x, epsilon: instance_ref(x, epsilon=1e-3)),
    ("l2_norm", "iOS15", rand((3, 4, 5)), {}, "ct"),
    ("l2_norm", "iOS15", rand((2, 2, 3, 4, 5)), {"epsilon": f32(1e-2)}, "ct"),
    ("l2_norm", "iOS17", rand((2, 3, 4, 5), f16), {"epsilon": f32(1e-3)}, "ct"),
    ("layer_norm", "iOS15", rand((2, 3, 4)), {"axes": [-1], "gamma": rand((4,)), "beta": rand((4,))}, "ct"),
    ("layer_norm", "iOS15", rand((2, 3, 4), f16), {"axes": [1, 2], "epsilon": f16(1e-3)}, "ct"),
    # coremltools cannot build layer_norm without axes (its default is a python range), so numpy here
    ("layer_norm", "iOS15", rand((2, 3, 4)), {},
     lambda x: (x - x.mean()) / np.sqrt(x.astype(np.float64).var() + 1e-5)),
    ("layer_norm", "iOS17", rand((2, 3, 4), f16), {"axes": [0, -1], "gamma": rand((2, 4))}, "ct"),
    ("local_response_norm", "iOS15", rand((1, 6, 4, 4)), {"size": 3}, lambda x, size: lrn_ref(x, 3)),
    ("local_response_norm", "iOS17", rand((2, 5, 7), f16),
     {"size": 4, "alpha": f32(0.5), "beta": f32(0.5), "k": f32(2.0)},
     lambda x, **_: lrn_ref(x, 4, 0.5, 0.5, 2.0)),
]


@pytest.mark.parametrize("op,target,x,consts,ref", VALUE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(VALUE_CASES)])
def test_kernel_values(op, target, x, consts, ref):
    (got,), (t,) = run_op(op, target, consts=consts, x=x)
    assert tuple(got.shape) == t.shape
    assert got.dtype == t.dtype.torch
    want = ct_value(op, {"x": x, **consts}, target)[0] if ref == "ct" else ref(x, **consts)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape
    tol = 1e-2 if t.dtype.name == "fp16" else 1e-5
    np.testing.assert_allclose(got.double().numpy(), want, rtol=tol, atol=tol)


def test_pool_kernel_follows_runtime_shape():
    # Inference saw a symbolic H; the kernel sizes its output from the tensor it gets.
    for h in (4, 9):
        (got,), _ = run_op("avg_pool", "iOS17", consts=K(3, 3, pad_type="same", strides=[2, 2]),
                           x=rand((1, 2, h, 6)))
        assert got.shape == (1, 2, -(-h // 2), 3)


# -- errors ------------------------------------------------------------------------------------

X = {"x": ((1, 3, 8, 8), "fp32")}
ERROR_CASES = [
    ("avg_pool", {"x": ((1, 3, 4, 4, 4), "fp32")}, K(2, 2, 2, ceil_mode=True), "iOS15",
     r"avg_pool.*'ceil_mode'"),
    ("avg_pool", X, K(2, 2, pad_type="same", ceil_mode=True), "iOS15", r"avg_pool.*'ceil_mode'"),
    ("max_pool", X, K(2, 2, pad_type="custom", pad=[0, 1, 0, 1], ceil_mode=True), "iOS15",
     r"max_pool.*'pad'"),
    ("max_pool", X, K(2, 2, pad_type="same_lower"), "iOS15", r"max_pool.*'pad_type'"),
    ("max_pool", X, K(2, 2, pad_type="reflect"), "iOS17", r"max_pool.*'pad_type'"),
    ("max_pool", X, {"kernel_sizes": [2, 2]}, "iOS17", r"max_pool.*required input 'pad_type'"),
    ("max_pool", X, K(2), "iOS17", r"max_pool.*'kernel_sizes'"),
    ("max_pool", {"x": ((1, 3, 8, 8), "fp32"), "kernel_sizes": ((2,), "int32")}, {"pad_type": "valid"},
     "iOS17", r"max_pool.*'kernel_sizes' must be a compile-time constant"),
    ("l2_pool", {"x": ((1, 3, 4, 4, 4), "fp32")}, K(2, 2, 2), "iOS17", r"l2_pool.*'x'"),
    ("avg_pool", {"x": ((1, 3, 8, 8), "int32")}, K(2, 2), "iOS17", r"avg_pool.*'x' has dtype int32"),
    ("batch_norm", {"x": ((2, 3, 5), "fp32"), "mean": ((3,), "fp32")}, {"variance": rand((3,))}, "iOS15",
     r"batch_norm.*'mean' must be a compile-time constant"),
    ("batch_norm", {"x": ((2, 3, 5), "fp32")}, {"mean": rand((4,)), "variance": rand((4,))}, "iOS15",
     r"batch_norm.*'mean'"),
    ("batch_norm", {"x": ((2, 3, 5), "fp16")}, {"mean": rand((3,)), "variance": rand((3,))}, "iOS15",
     r"batch_norm.*'mean'"),
    ("instance_norm", {"x": ((2, 3), "fp32")}, {}, "iOS15", r"instance_norm.*'x'"),
    ("l2_norm", {"x": ((3, 4), "fp32")}, {}, "iOS15", r"l2_norm.*'x'"),
    ("layer_norm", {"x": ((2, 3), "fp32")}, {"axes": [2]}, "iOS15", r"layer_norm.*axis 2"),
    ("layer_norm", {"x": ((2, 3), "fp32")}, {"axes": [1], "gamma": rand((2,))}, "iOS15",
     r"layer_norm.*'gamma'"),
    ("local_response_norm", {"x": ((1, 6, 4, 4), "fp32")}, {}, "iOS15",
     r"local_response_norm.*required input 'size'"),
]


@pytest.mark.parametrize("op,inputs,consts,target,match", ERROR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(ERROR_CASES)])
def test_bad_inputs_raise(op, inputs, consts, target, match):
    with pytest.raises(MILTypeError, match=match):
        our_infer(op, inputs, consts, target)
