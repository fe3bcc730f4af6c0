"""Scans: cumprod, cummax / cummin (torch's tie and NaN rules for the indices) and logcumsumexp, as
unrolled log-depth scans for a static length and as while_loops for a run-time length."""

from __future__ import annotations

import pytest
import torch

from tests.lowering._check import Fn, check_conversion

NAN, INF = float("nan"), float("inf")


def _without_nan(y):
    # check_conversion compares NaN as unequal: mark NaN with a sentinel the inputs never produce.
    return torch.where(torch.isnan(y), torch.full_like(y, -7.0), y)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumprod_along_each_dim(dim):
    torch.manual_seed(0)
    check_conversion(Fn(lambda x: torch.cumprod(x, dim)), (torch.randn(3, 11, 5) * 1.5,))


def test_cumprod_zeros_infinities_and_nan():
    x = torch.tensor([2.0, -3.0, 0.0, 5.0, INF, 1.0, -0.5, NAN, 4.0])
    check_conversion(Fn(lambda x: _without_nan(torch.cumprod(x, 0))), (x,))
    check_conversion(Fn(lambda x: _without_nan(torch.cumprod(x, 0))), (torch.tensor([3.0, INF, -2.0, 0.5]),))


def test_cumprod_integers_bools_and_dtype():
    x = torch.tensor([[2, -1, 3, 0, 4], [1, 1, -2, 2, 3]])
    check_conversion(Fn(lambda x: torch.cumprod(x, 1)), (x,))
    check_conversion(Fn(lambda x: torch.cumprod(x, 1, dtype=torch.float32)), (x,))
    check_conversion(Fn(lambda m: torch.cumprod(m, 0)), (torch.tensor([True, True, False, True]),))


def test_cumprod_short_dims():
    check_conversion(Fn(lambda x: torch.cumprod(x, 0)), (torch.randn(1, 4),))
    check_conversion(Fn(lambda x: torch.cumprod(x.reshape(()), 0)), (torch.tensor([-1.5]),))


CUM_EXTREMES = [("cummax", torch.cummax), ("cummin", torch.cummin)]


@pytest.mark.parametrize("name,fn", CUM_EXTREMES)
def test_cummax_cummin_ties_nan_and_signed_zero(name, fn):
    # Ties go to the latest index; a NaN takes over and each later NaN moves the index; -0.0 == 0.0
    # is a tie, and the value keeps the sign of the element it came from.
    x = torch.tensor([1.0, 3.0, 3.0, -INF, 2.0, 0.0, -0.0, NAN, 5.0, NAN, -1.0, INF])

    def run(x):
        values, indices = fn(x, 0)
        return _without_nan(values), indices

    check_conversion(Fn(run), (x,))
    zeros = torch.tensor([0.0, -0.0, 0.0, -0.0, -1.0, 1.0])

    def with_sign(x):  # comparisons take -0.0 == 0.0, so the sign bit is an output of its own
        values, indices = fn(x, 0)
        return values, indices, torch.signbit(values)

    check_conversion(Fn(with_sign), (zeros,))


@pytest.mark.parametrize("name,fn", CUM_EXTREMES)
def test_cummax_cummin_repeated_values_along_inner_dims(name, fn):
    torch.manual_seed(1)
    x = torch.randint(0, 3, (4, 9, 3)).float()
    check_conversion(Fn(lambda x: tuple(fn(x, 1))), (x,))
    check_conversion(Fn(lambda x: tuple(fn(x, -1))), (x.long(),))


def test_cummax_of_bools_and_scalars():
    check_conversion(Fn(lambda m: tuple(torch.cummax(m, 0))), (torch.tensor([False, True, False, True, True]),))
    check_conversion(Fn(lambda x: tuple(torch.cummin(x.reshape(()), 0))), (torch.tensor([2.5]),))


def test_logcumsumexp_is_stable_far_from_zero():
    # log(cumsum(exp(x))) would overflow at 1e4 and underflow to -inf at -1e4; torch's running
    # log-add-exp does neither, and keeps small terms next to large ones.
    x = torch.tensor([1e4, -1e4, 1e4, 0.0, 1e4 + 3.0, -30.0, 88.0, 89.0])
    check_conversion(Fn(lambda x: torch.logcumsumexp(x, 0)), (x,))
    check_conversion(Fn(lambda x: torch.logcumsumexp(x, 0)), (-x,))


def test_logcumsumexp_infinities_and_nan():
    x = torch.tensor([-INF, -INF, -2.0, INF, 3.0, INF, 1.0])
    check_conversion(Fn(lambda x: torch.logcumsumexp(x, 0)), (x,))
    y = torch.tensor([-INF, 0.5, NAN, 2.0, INF])
    check_conversion(Fn(lambda x: _without_nan(torch.logcumsumexp(x, 0))), (y,))


def test_logcumsumexp_along_a_middle_dim():
    torch.manual_seed(2)
    check_conversion(Fn(lambda x: torch.logcumsumexp(x, 1)), (torch.randn(2, 37, 3) * 20,))


def test_float16_program():
    torch.manual_seed(3)
    check_conversion(Fn(lambda x: torch.cumprod(x, 0)), (torch.rand(12) + 0.5,), precision="float16")
    check_conversion(Fn(lambda x: torch.logcumsumexp(x, 0)), (torch.randn(12) * 4,), precision="float16")
    check_conversion(Fn(lambda x: tuple(torch.cummax(x, 0))), (torch.randn(12),), precision="float16")


def test_vander_goes_through_cumprod():
    torch.manual_seed(4)
    check_conversion(Fn(lambda x: torch.linalg.vander(x, N=6)), (torch.randn(3, 4),))


LENGTH = torch.export.Dim("length", min=2, max=64)


def test_dynamic_length_runs_a_while_loop():
    torch.manual_seed(5)
    cm = check_conversion(Fn(lambda x: torch.cumprod(x, 1)), (torch.randn(2, 5),),
                          dynamic_shapes=(({1: LENGTH},),), run_inputs=[(torch.randn(2, 13),), (torch.randn(2, 2),)])
    assert "while_loop(" in str(cm.program)
    check_conversion(Fn(lambda x: tuple(torch.cummin(x, 0))), (torch.randint(0, 3, (6, 2)).float(),),
                     dynamic_shapes=(({0: LENGTH},),), run_inputs=[(torch.randint(0, 3, (11, 2)).float(),)])
    check_conversion(Fn(lambda x: torch.logcumsumexp(x, 0)), (torch.randn(5, 3),),
                     dynamic_shapes=(({0: LENGTH},),), run_inputs=[(torch.randn(9, 3) * 30,)])


def test_a_static_scan_dim_stays_unrolled_under_other_dynamic_dims():
    cm = check_conversion(Fn(lambda x: tuple(torch.cummax(x, 1))), (torch.randn(3, 6),),
                          dynamic_shapes=(({0: LENGTH},),), run_inputs=[(torch.randn(7, 6),)])
    assert "while_loop(" not in str(cm.program)
