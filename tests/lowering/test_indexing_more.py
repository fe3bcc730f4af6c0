"""More indexing lowerings, end to end through a saved package: diagonal, unfold, masked_scatter,
index_reduce/index_add/index_copy/index_fill, put, the "mean" scatter reductions and tril/triu.
Each case is (id, function, inputs).
"""

from __future__ import annotations

import pytest
import torch

from tests.lowering._check import check_conversion
from tests.lowering.test_indexing import idx
from tests.lowering.test_shape_ops import Fn, bools, ints, r


MORE = [
    ("diagonal", lambda x: torch.diagonal(x), (r(3, 4),)),
    ("diagonal_offset_dims", lambda x: torch.diagonal(x, -1, 2, 0), (r(4, 2, 3),)),
    ("masked_scatter", lambda x, m, s: x.masked_scatter(m, s), (r(3, 4), bools(3, 4), r(12))),
    ("masked_scatter_broadcast", lambda x, m, s: x.masked_scatter(m, s), (ints(2, 3), bools(3), ints(3, 3))),
]


@pytest.mark.parametrize("name, fn, inputs", MORE, ids=[c[0] for c in MORE])
def test_view_and_masked_ops(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


MORE_WRITES = [
    ("unfold", lambda x: x.unfold(1, 3, 2), (r(2, 7, 3),)),
    ("unfold_last", lambda x: x.unfold(-1, 2, 1), (ints(3, 4),)),
    ("narrow_copy", lambda x: torch.narrow_copy(x, 0, 1, 2), (r(4, 3),)),
    ("index_reduce_amax", lambda x, i, s: x.index_reduce(0, i, s, "amax"), (r(4, 3), idx(1, 3, 1), r(3, 3))),
    ("index_reduce_prod", lambda x, i, s: x.index_reduce(1, i, s, "prod", include_self=False),
     (r(2, 4), idx(0, 0, 2), r(2, 3))),
    ("put", lambda x, i, s: x.put(i, s), (r(3, 4), idx(0, 11, -2), r(3))),
    ("put_accumulate", lambda x, i, s: x.put(i, s, accumulate=True), (ints(3, 2), idx(1, 1, 5), ints(3))),
    ("new_empty_strided", lambda x: x.new_empty_strided((2, 3), (3, 1)).fill_(2) + x, (r(2, 3),)),
]


@pytest.mark.parametrize("name, fn, inputs", MORE_WRITES, ids=[c[0] for c in MORE_WRITES])
def test_more_index_ops(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


MEANS = [
    ("scatter_reduce_mean", lambda x, i, s: x.scatter_reduce(1, i, s, "mean"), (r(2, 4), idx(1, 1, 3).expand(2, 3), r(2, 3))),
    ("scatter_reduce_mean_exclude_int", lambda x, i, s: x.scatter_reduce(0, i, s, "mean", include_self=False),
     (ints(3, 2), idx(0, 0, 2).view(3, 1).expand(3, 2), ints(3, 2))),
    ("index_reduce_mean", lambda x, i, s: x.index_reduce(0, i, s, "mean", include_self=False), (r(4, 3), idx(1, 3, 1), r(3, 3))),
]


@pytest.mark.parametrize("name, fn, inputs", MEANS, ids=[c[0] for c in MEANS])
def test_mean_reductions(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


INDEX_WRITES = [
    ("index_add", lambda x, i, s: x.index_add(1, i, s, alpha=2), (r(2, 4), idx(3, 0, 3), r(2, 3))),
    ("index_add_int", lambda x, i, s: x.index_add(0, i, s), (ints(3, 2), idx(2, 0), ints(2, 2))),
    ("index_copy", lambda x, i, s: x.index_copy(0, i, s), (r(4, 2), idx(3, 0), r(2, 2))),
    ("index_fill", lambda x, i: x.index_fill(1, i, -3.0), (r(2, 4), idx(0, 2))),
    ("tril", lambda x: torch.tril(x, 1), (r(2, 4, 4),)),
    ("tril_below", lambda x: torch.tril(x, -1), (r(3, 5),)),
    ("triu", lambda x: torch.triu(x), (ints(4, 3),)),
    ("triu_above", lambda x: torch.triu(x, 2), (r(4, 4),)),
]


@pytest.mark.parametrize("name, fn, inputs", INDEX_WRITES, ids=[c[0] for c in INDEX_WRITES])
def test_index_writes_and_triangles(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


STRIDED = [
    ("as_strided_windows", lambda x: torch.as_strided(x, (3, 4), (2, 1)), (r(10),)),
    ("as_strided_offset", lambda x: torch.as_strided(x, (2, 2), (1, 3), 1), (ints(3, 3),)),
    ("as_strided_scatter", lambda x, s: torch.as_strided_scatter(x, s, (2, 2), (1, 3), 1), (r(3, 3), r(2, 2))),
]


@pytest.mark.parametrize("name, fn, inputs", STRIDED, ids=[c[0] for c in STRIDED])
def test_as_strided(name, fn, inputs):
    check_conversion(Fn(fn), inputs)
