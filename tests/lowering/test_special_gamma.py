"""Gamma-family and error-function special functions (lowering/ops/special_gamma.py and
special_gamma_incomplete.py), end to end through a saved package.

Inputs sit where the lowerings switch method (lgamma's series and Lanczos pieces, digamma's recurrence
bound, Cody's erfcx intervals, ndtri's tails, the incomplete gamma regions), at the poles, zeros and
infinities torch defines, and at values where a naive formula would lose its relative precision. The
rows of a table share one conversion; NaN results are compared through a sentinel (the comparison
treats NaN as unequal to itself).
"""

from __future__ import annotations

import math

import torch

from tests.lowering._check import check_conversion
from torch_coreml.lowering.dry_run import try_lowering
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.targets import Target

aten = torch.ops.aten
inf, nan = math.inf, math.nan


class Rows(torch.nn.Module):
    """Every row's function applied to the shared inputs, NaN mapped to a sentinel."""

    def __init__(self, rows):
        super().__init__()
        self.fns = [fn for _, fn in rows]

    def forward(self, *inputs):
        return tuple(torch.nan_to_num(fn(*inputs), nan=-12345.0, posinf=inf, neginf=-inf)
                     for fn in self.fns)


def check_rows(rows, inputs, **kwargs):
    try:
        check_conversion(Rows(rows), inputs, **kwargs)
    except AssertionError as e:
        names = ", ".join(f"{i}: {name}" for i, (name, _) in enumerate(rows))
        raise AssertionError(f"{e}\n(outputs are {names})") from e


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


# -- lgamma, digamma, polygamma, mvlgamma ----------------------------------------------------------

# Piece boundaries (1/2 ... 9/2, 10), zeros (1, 2, digamma's 1.4616), poles (0, -0, negative integers),
# near-poles, large and tiny arguments, infinities and NaN.
GAMMA_EDGES = t(0.5, 1.5, 2.5, 3.5, 4.5, 4.4999, 9.999, 10.0, 1.0, 2.0, 1.00001, 1.99999, 1.4616321,
                0.0, -0.0, -1.0, -4.0, -2.9999, -0.5, -1e-4, -7.25, -2.457, 1e-20, 123.4, 1e5, 3e30,
                inf, -inf, nan, 0.3)
# Off the poles (torch's own trigamma turns sin(pi x) = tiny into a large finite value there).
GAMMA_SMOOTH = t(-8.6, -5.5, -3.3, -1.9, -0.7, -0.2, 0.01, 0.4, 0.6, 1.3, 2.2, 3.9, 6.5, 11.0, 33.3,
                 1e4, -19.5, -12.01, 0.2, 7.0, -0.99, 2.7, 8.1, 0.05, -3.75, -6.5, 5.0, 17.2, 0.9, 1.2)

GAMMA_ROWS = [
    ("lgamma", lambda e, s: torch.lgamma(e)),
    ("lgamma_smooth", lambda e, s: torch.lgamma(s)),
    ("digamma", lambda e, s: torch.digamma(e)),
    ("polygamma_0", lambda e, s: torch.polygamma(0, s)),
    ("trigamma", lambda e, s: torch.polygamma(1, s)),
    ("polygamma_2", lambda e, s: torch.polygamma(2, e)),
    ("polygamma_3", lambda e, s: torch.polygamma(3, s)),
    ("polygamma_4", lambda e, s: torch.polygamma(4, s)),
    ("special_polygamma_5", lambda e, s: torch.special.polygamma(5, s)),
    ("mvlgamma_3", lambda e, s: torch.mvlgamma(s.abs() + 1.01, 3)),
]


def test_gamma_family():
    check_rows(GAMMA_ROWS, (GAMMA_EDGES, GAMMA_SMOOTH))


def test_gamma_relative_accuracy():
    """Near lgamma's zeros at 1 and 2 (where Lanczos alone keeps only absolute accuracy) and at
    the integer shift points; compared with no absolute tolerance."""
    x = t(1.0 + 2**-20, 1.0 - 2**-21, 2.0 + 2**-19, 2.0 - 2**-20, 1.001, 0.999, 2.01, 1.99, 0.5, 4.5, 0.75)
    check_rows([("lgamma", lambda x: torch.lgamma(x)), ("digamma", lambda x: torch.digamma(x + 3.0))], (x,),
               atol=0.0)


# -- Hurwitz zeta -----------------------------------------------------------------------------------

def _zeta_grid():
    s = t(1.0, 1.5, 2.0, 3.0, 4.5, 7.0, 0.5, 30.0, inf, nan)
    q = t(-2.3, -0.7, -1e-3, -3.0, 0.0, 0.25, 1.0, 3.5, 40.0, inf)
    s, q = torch.meshgrid(s, q, indexing="ij")
    return s.reshape(-1).clone(), q.reshape(-1).clone()


ZETA_ROWS = [
    ("zeta", lambda s, q: torch.special.zeta(s, q)),
    ("zeta_other_scalar", lambda s, q: torch.special.zeta(s.abs() + 1.0, 2.0)),
    ("zeta_self_scalar", lambda s, q: torch.special.zeta(3.0, q)),
]


def test_zeta():
    check_rows(ZETA_ROWS, _zeta_grid())


# -- erfcx, log_ndtr, erfinv, ndtri ---------------------------------------------------------------

ERF_X = t(-30.0, -9.0, -5.0, -1.0001, -1.0, -0.5, -0.0, 0.0, 0.3, 0.46875, 0.5, 2.0, 4.0, 4.01, 10.0,
          26.0, 50.0, 1e8, inf, -inf, nan, 1.7)
ERF_Y = t(-1.0, -(1 - 2**-24), -0.9999, -0.7, -0.3, 0.0, 1e-30, 0.2, 0.7, 0.70001, 0.99, 1 - 2**-24, 1.0,
          1.5, -2.0, nan, 0.5, -0.05, 0.85, 0.999, -0.6, 0.1)
ERF_P = t(0.0, 1e-38, 1e-20, 1.2e-14, 1e-3, 0.1353, 0.1354, 0.3, 0.5, 0.7, 0.8646, 0.8647, 0.99,
          1 - 2**-24, 1.0, -0.1, 1.1, nan, 0.25, 0.75, 0.05, 0.95)

ERF_ROWS = [
    ("erfcx", lambda x, y, p: torch.special.erfcx(x)),
    ("log_ndtr", lambda x, y, p: torch.special.log_ndtr(x)),
    ("erfinv", lambda x, y, p: torch.erfinv(y)),
    ("ndtri", lambda x, y, p: torch.special.ndtri(p)),
]


def test_error_function_family():
    check_rows(ERF_ROWS, (ERF_X, ERF_Y, ERF_P))


def test_error_function_tails_relative():
    """Tails where 1 - erf(x) would be 0 or noise: erfcx and log_ndtr for large x, ndtri and erfinv
    next to 0 and 1, compared with no absolute tolerance."""
    x = t(3.0, 5.0, 8.0, 12.0, 30.0)
    p = t(1e-30, 1e-10, 1e-5, 0.99999, 0.9999999)
    rows = [("erfcx", lambda x, p: torch.special.erfcx(x)), ("log_ndtr", lambda x, p: torch.special.log_ndtr(x)),
            ("ndtri", lambda x, p: torch.special.ndtri(p)), ("erfinv", lambda x, p: torch.erfinv(p))]
    check_rows(rows, (x, p), atol=0.0)


# -- regularized incomplete gamma ------------------------------------------------------------------

def _igamma_grid():
    # Every method region: small x (series, and DLMF 8.7.3 below 1.1), x > max(a, 1.1) (continued
    # fraction), Temme's band around large a; and torch's boundary values (0, inf, negative, NaN).
    a = t(0.0, 0.2, 1.0, 2.5, 9.0, 19.0, 50.0, 500.0, 1e4, inf, -1.0, nan)
    x = t(0.0, 0.3, 0.9, 1.05, 2.0, 8.0, 21.0, 45.0, 520.0, 9.9e3, inf, -0.5)
    a, x = torch.meshgrid(a, x, indexing="ij")
    return a.reshape(-1).clone(), x.reshape(-1).clone()


def test_incomplete_gamma():
    rows = [("igamma", lambda a, x: torch.igamma(a, x)), ("igammac", lambda a, x: torch.igammac(a, x))]
    check_rows(rows, _igamma_grid())


# -- integer inputs, fp16, dynamic shapes, refusals ------------------------------------------------

INT_ROWS = [
    ("lgamma", lambda i, j: torch.lgamma(i)),
    ("digamma", lambda i, j: torch.digamma(i)),
    ("polygamma_2", lambda i, j: torch.polygamma(2, i)),
    ("erfcx", lambda i, j: torch.special.erfcx(i)),
    ("log_ndtr", lambda i, j: torch.special.log_ndtr(i)),
    ("erfinv", lambda i, j: torch.erfinv(i.clamp(-1, 1))),
    ("ndtri", lambda i, j: torch.special.ndtri(i.clamp(0, 1))),
    ("zeta", lambda i, j: torch.special.zeta(i, j)),
]


def test_integer_inputs():
    i = torch.tensor([-3, -1, 0, 1, 2, 5, 9, 3])
    j = torch.tensor([4, 2, -2, 0, 3, 1, -5, 7])
    check_rows(INT_ROWS, (i, j))


def test_float16_program():
    # Multiples of 1/64: exact in fp16, so the program sees the values torch does.
    x = t(-3.671875, -0.703125, 0.015625, 0.5, 1.25, 2.984375, 7.5, 15.25)
    u = t(-0.984375, -0.5, -0.015625, 0.0, 0.25, 0.6875, 0.96875, 0.75)
    rows = [
        ("lgamma", lambda x, u: torch.lgamma(x)),
        ("digamma", lambda x, u: torch.digamma(x)),
        ("trigamma", lambda x, u: torch.polygamma(1, x)),
        ("polygamma_2", lambda x, u: torch.polygamma(2, x.abs() + 0.5)),
        ("erfinv", lambda x, u: torch.erfinv(u)),
        ("ndtri", lambda x, u: torch.special.ndtri((u + 1) / 2)),
        ("log_ndtr", lambda x, u: torch.special.log_ndtr(x)),
        ("igamma", lambda x, u: torch.igamma(x.abs(), u.abs() * 8)),
        ("zeta", lambda x, u: torch.special.zeta(x.abs() + 1.5, u.abs() + 0.5)),
    ]
    check_rows(rows, (x, u), precision="float16")


def test_dynamic_batch():
    rows = [("digamma", lambda a, x: torch.digamma(x)), ("zeta", lambda a, x: torch.special.zeta(a + 1, x)),
            ("igammac", lambda a, x: torch.igammac(a, x.abs()))]
    batch = torch.export.Dim("batch", min=1, max=16)
    a = torch.rand(3, 4) * 6 + 0.1
    check_rows(rows, (a, torch.randn(2, 3, 4) * 3), dynamic_shapes=((None, {0: batch}),),
               run_inputs=[(a, torch.randn(5, 3, 4) * 3)])


def test_negative_polygamma_order_is_refused():
    ok, reason = try_lowering(aten.polygamma.default, (-1, torch.empty(3)), {}, mil_target=Target.iOS17,
                              float_dtype=dt.fp32)
    assert not ok and "n >= 0" in reason
