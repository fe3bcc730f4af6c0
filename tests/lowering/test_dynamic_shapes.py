"""Dynamic shapes: models exported with `dynamic_shapes`, converted once, run at several sizes.

Sizes reach the program as `sym_size` reads of the input's run-time shape, combined by Python
arithmetic on symbolic ints, and feed view/reshape/expand/slice/arange/full.
"""

from __future__ import annotations

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
