"""Bessel, modified Bessel and Airy functions (lowering/ops/special_bessel.py), end to end.

Each function is a piecewise approximation, so the inputs visit every piece and both sides of each
boundary (2, 2.09, 5, 8, 26 where Airy's exp underflows, 104 where torch cuts Ai to 0), large
arguments where the float32 phase of J and Y is all rounding, and the edge values torch defines
(0, -0, negative x for K and Y, inf, NaN). Each function is converted on its own: a program holding
all sixteen has thousands of ops, and its conversion time grows faster than its size.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch

import torch_coreml
from tests.lowering._check import Fn, check_conversion
from tests.oracle import assert_coremltools_accepts

S = torch.special
FUNCTIONS = {
    "i0": torch.i0, "i0e": S.i0e, "i1": S.i1, "i1e": S.i1e,
    "modified_bessel_i0": S.modified_bessel_i0, "modified_bessel_i1": S.modified_bessel_i1,
    "modified_bessel_k0": S.modified_bessel_k0, "modified_bessel_k1": S.modified_bessel_k1,
    "scaled_modified_bessel_k0": S.scaled_modified_bessel_k0,
    "scaled_modified_bessel_k1": S.scaled_modified_bessel_k1,
    "bessel_j0": S.bessel_j0, "bessel_j1": S.bessel_j1, "bessel_y0": S.bessel_y0, "bessel_y1": S.bessel_y1,
    "spherical_bessel_j0": S.spherical_bessel_j0, "airy_ai": S.airy_ai,
}
# Defined (finite, no NaN) for every real x: these take negative inputs in the finite tables.
EVERYWHERE = ("i0", "i0e", "i1", "i1e", "modified_bessel_i0", "modified_bessel_i1", "bessel_j0", "bessel_j1",
              "spherical_bessel_j0", "airy_ai")

BOUNDARIES = [2.0, 2.09, 5.0, 8.0, 8.3203353, 26.0, 103.892]


def _spread(lo, hi, n, seed):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _near_boundaries():
    """Each boundary, and values one and a few float32 steps either side of it."""
    b = torch.tensor(BOUNDARIES)
    steps = [torch.nextafter(b, b * 2), torch.nextafter(b, b * 0)]
    return torch.cat([b, *steps, b * (1 + 3e-7), b * (1 - 3e-7)])


def _positive():
    return torch.cat([_spread(1e-6, 1e-2, 20, 1), _spread(0.01, 2.5, 60, 2), _spread(2.5, 10, 60, 3),
                      _spread(10, 110, 40, 4), _near_boundaries(),
                      torch.tensor([1e-30, 1e-7, 9.99e-6, 1e-5, 0.4999, 0.5, 120.0, 1e3, 1e4, 1e6, 1e8, 1e20, 1e38])])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_piece(name):
    fn, pos = FUNCTIONS[name], _positive()
    if name not in EVERYWHERE:
        check_conversion(Fn(fn), (pos,))
        return
    neg = -pos
    if name == "airy_ai":
        # Ai's oscillating side: its float32 phase (2/3)|x|^1.5 exceeds 1e3 beyond -100, where a
        # one-ulp difference in an intermediate (torch's float32 sqrt, which the reference runtime
        # uses, is not always correctly rounded) visibly moves the result.
        neg = -torch.cat([pos[pos < 100], _spread(0.0, 100.0, 50, 5)])
    check_conversion(Fn(lambda p, n: (fn(p), fn(n))), (pos, neg))


def _convert_and_run(model, inputs, precision="float32"):
    """Saved, checked and reloaded like check_conversion, for outputs with NaN (compared equal)."""
    cm = torch_coreml.export(model, inputs, compute_precision=precision, minimum_deployment_target="iOS17")
    with tempfile.TemporaryDirectory() as d:
        path = cm.save(Path(d) / "model.mlpackage")
        assert_coremltools_accepts(path)
        return torch_coreml.load(path, runtime="reference")(*inputs)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_edge_values(name):
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([0.0, -0.0, 1e-38, -1e-38, -1.0, -5.0, -8.0, -20.0, 1e30, -1e30, inf, -inf, nan])
    model = Fn(FUNCTIONS[name])
    torch.testing.assert_close(_convert_and_run(model, (x,)), model(x), rtol=1e-4, atol=1e-5, equal_nan=True)


def test_odd_functions_keep_the_sign_of_zero_like_torch():
    """j1's small-argument formula is odd in x, so j1(-0) = -0; i1 and i1e negate only x < 0."""
    x = torch.tensor([-0.0, 0.0])
    model = Fn(lambda x: (S.bessel_j1(x), S.i1(x), S.i1e(x)))
    for g, e in zip(_convert_and_run(model, (x,)), model(x)):
        assert torch.equal(torch.signbit(g), torch.signbit(e)), (g, e)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_and_bool_inputs_compute_in_float(dtype):
    x = torch.arange(-12, 13) if dtype is torch.int64 else torch.tensor([True, False, True])
    fns = [FUNCTIONS[name] for name in EVERYWHERE] + [S.bessel_y0, S.modified_bessel_k1]
    positive = (x.abs() + 1).to(dtype) if dtype is torch.int64 else x
    check_conversion(Fn(lambda x, p: tuple(f(x) for f in fns[:-2]) + tuple(f(p) for f in fns[-2:])),
                     (x, positive))


def test_float16_program():
    # fp16-exact inputs, so the comparison measures the computation (fp32 inside) and the output
    # rounding, not the rounding of x itself.
    x = _spread(-11.0, 11.0, 200, 7).half().float()
    p = _spread(0.05, 11.0, 200, 8).half().float()
    fns = [torch.i0, S.i1e, S.bessel_j1, S.spherical_bessel_j0, S.airy_ai]
    positive_only = [S.scaled_modified_bessel_k0, S.modified_bessel_k1, S.bessel_y0, S.bessel_y1]
    check_conversion(Fn(lambda x, p: tuple(f(x) for f in fns) + tuple(f(p) for f in positive_only)), (x, p),
                     precision="float16")


def test_dynamic_length():
    n = torch.export.Dim("n", min=2, max=4096)
    x = _spread(-30.0, 30.0, 64, 9)
    check_conversion(Fn(lambda x: (S.i0e(x), S.bessel_j0(x), S.airy_ai(x), S.modified_bessel_k0(x.abs() + 0.1))),
                     (x,), dynamic_shapes=(({0: n},),), run_inputs=[(_spread(-30.0, 30.0, 1000, 10),)])
