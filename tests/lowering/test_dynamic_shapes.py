"""Dynamic shapes: models exported with `dynamic_shapes`, converted once, run at several sizes.

Sizes reach the program as `sym_size` reads of the input's run-time shape, combined by Python
arithmetic on symbolic ints, and feed view/reshape/expand/slice/arange/full.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.export import Dim

from tests.lowering._check import check_conversion

BATCH = Dim("batch", min=3, max=64)


class BatchShapes(torch.nn.Module):
    def forward(self, x):
        b = x.shape[0]
        y = x.view(b, -1, 4)                       # [b, 3, 4]
        z = y.reshape(b * 3, 4)                    # symbolic arithmetic in a size
        e = x[:, None, :].expand(b, 3, 12)          # expand to a symbolic size
        s = x[: b - 1, 1:-1:2]                      # slice with a symbolic end
        pos = torch.arange(b).view(b, 1) * 2        # arange to a symbolic end
        fill = x.new_zeros(b // 2 + 1, 2)            # floordiv and full with a symbolic size
        return z, e, s, pos, fill, x[-1], x[:, 3]


class Flatten(torch.nn.Module):
    def forward(self, x):
        b, t, c = x.shape
        return x.reshape(b * t, c)[: b * t - 1].unsqueeze(0).permute(0, 2, 1)


def _batches(*sizes, rest=(12,)):
    return [(torch.randn(n, *rest),) for n in sizes]


@pytest.mark.parametrize("precision, target", [("float32", "iOS17"), ("float16", "iOS16"), ("float32", "iOS15")])
def test_batch_dependent_shapes(precision, target):
    check_conversion(BatchShapes(), (torch.randn(5, 12),), dynamic_shapes=({0: BATCH},),
                     run_inputs=_batches(3, 17, 64), precision=precision, target=target)


def test_two_dynamic_dims():
    time = Dim("time", min=2, max=32)
    check_conversion(Flatten(), (torch.randn(4, 6, 3),), dynamic_shapes=({0: BATCH, 1: time},),
                     run_inputs=[(torch.randn(3, 2, 3),), (torch.randn(9, 31, 3),)])


class GatherRows(torch.nn.Module):
    def forward(self, x, i):
        return x[i].flip(0), x.roll(1, 1), torch.cat([x, x[:, :2]], 1)


def test_indexing_with_dynamic_batch():
    idx = torch.tensor([0, 2, -1])
    check_conversion(GatherRows(), (torch.randn(5, 4), idx), dynamic_shapes=({0: BATCH}, None),
                     run_inputs=[(torch.randn(3, 4), idx), (torch.randn(40, 4), idx)])


class LayoutOps(torch.nn.Module):
    def forward(self, x):
        padded = torch.nn.functional.pad(x, (1, 2))
        halves = x.split(6, 1)
        return (padded, torch.full_like(x, 2.0) + x, x.unsqueeze(1).repeat(1, 2, 1), torch.stack(halves, 1),
                x.flip(0), x.transpose(0, 1), torch.zeros_like(x[:, :1]).squeeze(1))


@pytest.mark.parametrize("precision, target", [("float16", "iOS16"), ("float32", "iOS15")])
def test_layout_ops_with_dynamic_batch(precision, target):
    check_conversion(LayoutOps(), (torch.randn(5, 12),), dynamic_shapes=({0: BATCH},),
                     run_inputs=_batches(3, 33), precision=precision, target=target)


class SymbolicArithmetic(torch.nn.Module):
    """Exports to operator.sub/mul/mod/neg/add/floordiv and torch.sym_max/sym_min on the batch size."""

    def forward(self, x):
        b = x.shape[0]
        return (x[: torch.sym_max(b - 2, 3)], x[(b * 12) % 7:], x[-b + 2:], torch.arange(-(-b // 2)).view(-1, 1),
                torch.zeros(torch.sym_min(b, 8), 2))


def test_symbolic_int_arithmetic():
    check_conversion(SymbolicArithmetic(), (torch.randn(5, 3),), dynamic_shapes=({0: Dim.DYNAMIC},),
                     run_inputs=_batches(3, 8, 20, rest=(3,)))


class CacheUpdate(torch.nn.Module):
    """A KV-cache-like write of a run-time number of rows, and a write of the last row."""

    def forward(self, cache, new):
        n = new.shape[0]
        written = torch.slice_scatter(cache, new, 0, 0, n)
        return written, torch.select_scatter(cache, new[0], 0, -1), torch.slice_scatter(cache, new[:2], 0, -3, -1)


@pytest.mark.parametrize("target", ["iOS15", "iOS17"])
def test_slice_scatter_with_run_time_bounds(target):
    rows = Dim("rows", min=2, max=16)
    cache = torch.randn(16, 4)
    check_conversion(CacheUpdate(), (cache, torch.randn(5, 4)), dynamic_shapes=(None, {0: rows}), target=target,
                     run_inputs=[(cache, torch.randn(2, 4)), (cache, torch.randn(16, 4))])


class PadTokens(torch.nn.Module):
    def forward(self, ids, mask):
        return torch.nn.functional.pad(ids, (1, 3), value=7), torch.nn.functional.pad(mask, (0, 0, 2, 0), value=True)


def test_integer_padding_with_dynamic_length():
    seq = Dim("seq", min=2, max=128)
    ids, mask = torch.randint(0, 100, (2, 9)), torch.rand(2, 9, 3) > 0.5
    check_conversion(PadTokens(), (ids, mask), dynamic_shapes=({1: seq}, {1: seq}),
                     run_inputs=[(ids[:, :2], mask[:, :2]), (torch.randint(0, 9, (2, 100)), torch.rand(2, 100, 3) > 0.5)])


class SplitHalves(torch.nn.Module):
    def forward(self, x):
        n = x.shape[1] // 2
        first, second = torch.split(x, [n, n], 1)
        return first * 2, second


def test_split_with_run_time_sizes():
    half = Dim("half", min=1, max=32)
    check_conversion(SplitHalves(), (torch.randn(2, 8),), dynamic_shapes=({1: 2 * half},),
                     run_inputs=[(torch.randn(2, 2),), (torch.randn(2, 30),)])


class HalfRoundedUp(torch.nn.Module):
    """Exports to operator.truediv and math.ceil on the batch size."""

    def forward(self, x):
        return x[: math.ceil(x.shape[0] / 2)] * 2


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_symbolic_float_arithmetic(precision):
    check_conversion(HalfRoundedUp(), (torch.randn(6, 3),), dynamic_shapes=({0: Dim.DYNAMIC},), precision=precision,
                     target="iOS16", run_inputs=_batches(3, 7, 4097, rest=(3,)))
