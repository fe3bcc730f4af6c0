"""Indexing and scatter lowerings, end to end through a saved package.

Each case is (id, function, inputs). Index tensors are int64 in torch and int32 in the program; the
cases mix constant indices (module attributes become constants) and indices passed as inputs.
"""

from __future__ import annotations

import pytest
import torch

from tests.lowering._check import check_conversion
from tests.lowering.test_shape_ops import Fn, bools, ints, r


def idx(*values):
    return torch.tensor(values)


I2 = torch.tensor([[0, 2], [1, 0]])

CASES = [
    ("index_one", lambda x, i: x[i], (r(4, 3), idx(3, 0, 1))),
    ("index_middle_dim", lambda x, i: x[:, i], (r(2, 4, 3), idx(1, -1))),
    ("index_2d_index", lambda x, i: x[:, :, i], (ints(2, 3, 4), I2)),
    ("index_two_leading", lambda x, i, j: x[i, j], (r(3, 4, 2), idx(0, 2, 1), idx(3, 3, 0))),
    ("index_two_adjacent", lambda x, i, j: x[:, i, j], (r(2, 3, 4, 5), idx(0, 2), idx(1, -1))),
    ("index_two_apart", lambda x, i, j: x[i, :, j], (r(3, 2, 4), idx(0, 2), idx(1, 3))),
    ("index_broadcast", lambda x, i, j: x[i, j], (r(3, 4), idx(0, 2).view(2, 1), idx(1, 3, 0))),
    ("index_bool_input", lambda x, i: x[i], (bools(4, 3), idx(2, 1))),
    ("index_select", lambda x, i: torch.index_select(x, 1, i), (r(2, 5), idx(4, 0, 0))),
    ("index_select_scalar", lambda x, i: torch.index_select(x, 0, i[1]), (r(3, 2), idx(0, 2))),
    ("gather", lambda x, i: torch.gather(x, 1, i), (r(3, 4), torch.randint(0, 4, (3, 5)))),
    ("gather_smaller_index", lambda x, i: torch.gather(x, 0, i), (ints(4, 5), torch.randint(0, 4, (2, 3)))),
    ("gather_negative_dim", lambda x, i: torch.gather(x, -1, i), (r(2, 3, 4), torch.randint(0, 4, (2, 3, 2)))),
    ("scatter_src", lambda x, i, s: x.scatter(1, i, s), (r(3, 5), idx(0, 4, 2).expand(3, 3), r(3, 3))),
    ("scatter_value", lambda x, i: x.scatter(0, i, 2.5), (r(4, 2), idx(3, 1).view(2, 1).expand(2, 2))),
    ("scatter_smaller_index", lambda x, i, s: x.scatter(1, i, s), (r(3, 5), idx(4, 0).view(1, 2), r(2, 3))),
    ("scatter_add", lambda x, i, s: x.scatter_add(0, i, s), (r(3, 2), idx(0, 0, 2, 1).view(2, 2), r(2, 2))),
    ("scatter_add_int", lambda x, i, s: x.scatter_add(1, i, s), (ints(2, 3), idx(2, 2).expand(2, 2), ints(2, 2))),
    ("scatter_reduce_sum", lambda x, i, s: x.scatter_reduce(1, i, s, "sum"), (r(2, 4), idx(1, 1, 3).expand(2, 3), r(2, 3))),
    ("scatter_reduce_amax", lambda x, i, s: x.scatter_reduce(0, i, s, "amax", include_self=False),
     (r(3, 2), idx(2, 0, 2).view(3, 1).expand(3, 2), r(3, 2))),
    ("scatter_reduce_prod", lambda x, i, s: x.scatter_reduce(1, i, s, "prod"), (r(2, 3), idx(0, 0).expand(2, 2), r(2, 2))),
    ("scatter_reduce_amin_int", lambda x, i, s: x.scatter_reduce(1, i, s, "amin", include_self=False),
     (ints(2, 3), idx(0, 2, 0).expand(2, 3), ints(2, 3))),
    ("index_put", lambda x, i, v: torch.index_put(x, (i,), v), (r(4, 3), idx(3, 1), r(2, 3))),
    ("index_put_accumulate", lambda x, i, v: torch.index_put(x, (i,), v, accumulate=True),
     (r(4, 3), idx(1, 1, 0), r(3, 3))),
    ("index_put_two", lambda x, i, j, v: torch.index_put(x, (i, j), v), (r(3, 4), idx(0, 2), idx(3, 1), r(2))),
    ("index_put_middle", lambda x, i, v: torch.ops.aten.index_put(x, [None, i], v), (r(2, 4, 3), idx(3, 0), r(2, 2, 3))),
    ("index_put_broadcast_value", lambda x, i, v: torch.index_put(x, (i,), v), (ints(4, 3), idx(0, 2), ints(3))),
    ("index_put_bool_mask", lambda x, m: torch.index_put(x, (m,), torch.tensor(-1.0)), (r(3, 4), bools(3, 4))),
    ("masked_fill", lambda x, m: x.masked_fill(m, -2.0), (r(3, 4), bools(3, 4))),
    ("masked_fill_broadcast", lambda x, m: x.masked_fill(m, 5), (ints(2, 3, 4), bools(3, 1))),
    ("masked_fill_tensor", lambda x, m, v: x.masked_fill(m, v[0]), (r(2, 3), bools(2, 3), r(1))),
    ("slice_scatter", lambda x, s: torch.slice_scatter(x, s, 1, 1, 3), (r(2, 5), r(2, 2))),
    ("slice_scatter_step", lambda x, s: torch.slice_scatter(x, s, 0, 0, None, 2), (r(5, 2), r(3, 2))),
    ("slice_scatter_bool", lambda x, s: torch.slice_scatter(x, s, 1, 1, None, 2), (bools(2, 5), bools(2, 2))),
    ("select_scatter", lambda x, s: torch.select_scatter(x, s, 1, -1), (r(2, 3, 2), r(2, 2))),
    ("setitem_slice", lambda x, s: _setitem(x, s), (r(4, 4), r(2, 4))),
]


def _setitem(x, s):
    y = x.clone()
    y[1:3] = s
    return y


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_indexing_op(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


@pytest.mark.parametrize("name", ["index_two_adjacent", "scatter_add", "index_put_accumulate"])
@pytest.mark.parametrize("target", ["iOS15", "iOS18"])
def test_indexing_fp16_targets(name, target):
    _, fn, inputs = next(c for c in CASES if c[0] == name)
    check_conversion(Fn(fn), inputs, precision="float16", target=target)


class ConstIndex(torch.nn.Module):
    """Indices held by the module become constants of the program."""

    def __init__(self):
        super().__init__()
        self.register_buffer("rows", torch.tensor([2, -1, 0]))

    def forward(self, x):
        return x[self.rows], x[:, self.rows[:2]]


def test_constant_negative_index():
    check_conversion(ConstIndex(), (r(4, 3),))

