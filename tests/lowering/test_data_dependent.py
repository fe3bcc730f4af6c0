"""Data-dependent sizes end to end: nonzero, masked_select, boolean-mask indexing and assignment,
unique, unique_consecutive, nonzero_static and histogramdd, through a saved package.

The first group has results of run-time length (an unbacked size in the export); their models also use
such results downstream and run on inputs with other counts, including none at all (the reference
runtime holds empty tensors; Core ML itself does not).
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

import torch_coreml
from tests.lowering._check import Fn, check_conversion, r

gen = torch.Generator().manual_seed(0)
BATCH = Dim("batch", min=2, max=64)


def bools(*shape):
    return torch.rand(*shape, generator=gen) > 0.5


def ints(*shape, lo=-3, hi=4):
    return torch.randint(lo, hi, shape, generator=gen)


def rounded(*shape, nans=2):
    """Floats with repeats, NaNs and both zeros: what unique and nonzero must tell apart. (Which of
    several NaNs torch's sort puts first is arbitrary, so an inverse is only compared with one.)"""
    x = (torch.randn(*shape, generator=gen) * 2).round().reshape(-1)
    x[:4] = torch.tensor([float("nan"), -0.0, 0.0, float("nan") if nans == 2 else 5.0])
    return x.reshape(shape)


def _nan_shown(fn):
    """fn with NaN outputs replaced by a number (check_conversion does not take NaN as equal to NaN)."""
    def shown(*a):
        out = fn(*a)
        return tuple(t.nan_to_num(nan=99.0) if t.is_floating_point() else t for t in out) \
            if isinstance(out, tuple) else out.nan_to_num(nan=99.0)
    return shown


def _pair(fn):
    """A result and a reduction of it: a downstream op on the run-time sized tensor."""
    return lambda *a: (fn(*a), fn(*a).float().sum())


CASES = [
    ("nonzero_float", _pair(torch.nonzero), (rounded(3, 4),)),
    ("nonzero_int_3d", lambda x: torch.nonzero(x)[:, 1:] * 2, (ints(2, 3, 4),)),
    ("nonzero_bool_as_tuple", lambda m: torch.nonzero(m, as_tuple=True), (bools(4, 5),)),
    ("argwhere", lambda x: torch.argwhere(x > 0), (r(6),)),
    ("masked_select", _pair(torch.masked_select), (r(3, 4), bools(3, 4))),
    ("masked_select_broadcast_both", torch.masked_select, (r(4, 1, 5), bools(3, 5))),
    ("masked_select_scalar_self", lambda x, m: torch.masked_select(x.reshape(()), m), (r(1), bools(7))),
    ("masked_select_int_softmax", lambda x, m: torch.masked_select(x, m).float().softmax(0), (ints(5, 2), bools(2))),
    ("index_bool_rows", lambda x: x[x[:, 0] > 0] + 1, (r(6, 3),)),
    ("index_bool_2d_mask", lambda x, m: x[m], (r(3, 4, 2), bools(3, 4))),
    ("index_bool_middle", lambda x, m: x[:, m], (r(2, 3, 4, 2), bools(3, 4))),
    ("unique", _nan_shown(lambda x: torch.unique(x, return_inverse=True, return_counts=True)), (rounded(4, 5, nans=1),)),
    ("unique_values_only_unsorted", lambda x: torch.unique(x, sorted=False), (ints(20),)),
    ("unique_bool", lambda m: torch.unique(m, return_counts=True), (bools(3, 3),)),
    ("unique_consecutive", lambda x: torch.unique_consecutive(x, return_inverse=True, return_counts=True),
     (torch.tensor([[1, 1, 2], [2, 2, 3], [1, 1, 1]]),)),
    ("unique_consecutive_nan", _nan_shown(lambda x: torch.unique_consecutive(x, return_counts=True)), (rounded(9),)),
    ("unique_dim0", lambda x: torch.unique(x, dim=0, return_inverse=True, return_counts=True), (ints(12, 2, lo=0, hi=3),)),
    ("unique_dim1_3d", lambda x: torch.unique(x, dim=1, return_counts=True), (ints(2, 9, 2, lo=0, hi=2).float(),)),
    ("unique_consecutive_dim1", lambda x: torch.unique_consecutive(x, return_inverse=True, return_counts=True, dim=1),
     (torch.tensor([[1, 1, 2, 2, 3, 3], [1, 1, 2, 5, 3, 3]]),)),
]


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_data_dependent(name, fn, inputs):
    check_conversion(Fn(fn), inputs, target="iOS18")


def test_other_counts_and_empty_results():
    """Converted once; run with more, fewer and no selected elements."""
    x, m = r(3, 4), bools(3, 4)
    check_conversion(Fn(_pair(torch.masked_select)), (x, m), target="iOS18",
                     run_inputs=[(x, torch.ones(3, 4, dtype=torch.bool)), (x, torch.zeros(3, 4, dtype=torch.bool))])
    check_conversion(Fn(torch.nonzero), (rounded(2, 5),), target="iOS18", run_inputs=[(torch.zeros(2, 5),)])


def test_dynamic_batch():
    def fn(x, m):
        return torch.masked_select(x, m), x[x[:, 0] > 0], torch.unique(x.round(), return_counts=True)
    check_conversion(Fn(fn), (r(5, 3), bools(1, 3)), dynamic_shapes=(({0: BATCH}, None),), target="iOS18",
                     run_inputs=[(r(17, 3), bools(1, 3)), (r(2, 3), bools(1, 3))])


def test_float16_program():
    def fn(x, m):
        return (torch.masked_select(x, m) * 3, torch.unique(x.round(), return_inverse=True, return_counts=True),
                torch.nonzero_static(x > 0, size=6))
    check_conversion(Fn(fn), (r(3, 4), bools(4)), precision="float16", target="iOS18")


# -- boolean-mask assignment: a select, no run-time size --------------------------------------------

M45 = bools(4, 5)
COUNT = int(M45.sum())
PUT_CASES = [
    ("one_value_per_element", lambda x, v: torch.index_put(x, (M45,), v), (r(4, 5), r(COUNT))),
    ("accumulate", lambda x, v: torch.index_put(x, (M45,), v, accumulate=True), (r(4, 5), r(COUNT))),
    ("rows", lambda x, v: torch.index_put(x, (torch.tensor([False, True, True, False]),), v), (r(4, 5), r(2, 5))),
    ("rows_broadcast", lambda x, v: torch.index_put(x, (torch.tensor([True, False, True, True]),), v),
     (r(4, 5), r(5))),
    ("mask_after_a_slice", lambda x, v: torch.ops.aten.index_put(x, [None, M45[0]], v), (r(3, 5), r(3, int(M45[0].sum())))),
    ("2d_mask_in_the_middle", lambda x, v: torch.ops.aten.index_put(x, [None, M45], v, True),
     (r(2, 4, 5, 3), r(1, COUNT, 3))),
    ("scalar_value", lambda x, m: torch.index_put(x, (m,), torch.tensor(-1.0)), (r(3, 4), bools(3, 4))),
    ("ints", lambda x, v: torch.index_put(x, (M45,), v, accumulate=True), (ints(4, 5), ints(COUNT))),
    ("bools", lambda x, v: torch.index_put(x, (M45,), v), (bools(4, 5), bools(COUNT))),
]


@pytest.mark.parametrize("name, fn, inputs", PUT_CASES, ids=[c[0] for c in PUT_CASES])
def test_masked_assignment(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


def test_masked_assignment_with_run_time_mask_and_float16():
    def fn(x, m, v):
        y = x.clone()
        y[m] = v
        return y
    x, m = r(3, 4), bools(3, 4)
    check_conversion(Fn(fn), (x, m, r(int(m.sum()))), precision="float16")


# -- nonzero_static -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size, fill_value", [(3, -1), (13, 7)])
def test_nonzero_static(size, fill_value):
    x = rounded(3, 4)  # 9 or so nonzero elements: truncated at 3, padded at 13
    check_conversion(Fn(lambda x: torch.nonzero_static(x, size=size, fill_value=fill_value)), (x,),
                     run_inputs=[(torch.zeros(3, 4),)])


# -- histogramdd --------------------------------------------------------------------------------------

def _hist(**kwargs):
    return Fn(lambda x, *w: tuple(torch.histogramdd(x, weight=w[0] if w else None, **kwargs)))


def test_histogramdd_from_the_data_range():
    x = torch.cat([r(40, 3), torch.tensor([[0.0, 1.0, 5.0]] * 3)])  # one column is not constant
    check_conversion(_hist(bins=[4, 3, 5]), (x,))
    check_conversion(_hist(bins=[2, 3]), (torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 3.0]]),))  # lo == hi


def test_histogramdd_range_weight_density():
    x = torch.tensor([[0.0, 0.0], [0.5, 1.0], [1.0, 2.0], [2.0, -1.0], [0.25, 2.5], [float("nan"), 1.0]])
    check_conversion(_hist(bins=[4, 3], range=[0.0, 2.0, 0.0, 3.0]), (x,))  # points on edges and outside
    check_conversion(_hist(bins=[3, 2], range=[0.0, 1.0, 1.0, 1.0], density=True), (r(30, 2), r(30)))
    check_conversion(_hist(bins=[3, 3], density=True), (r(2, 25, 2),), precision="float16")


def test_histogramdd_bin_tensors():
    x = r(50, 2)
    edges = [torch.tensor([-1.0, 0.0, 0.5, 2.0]), torch.tensor([-3.0, 3.0])]
    check_conversion(_hist(bins=edges), (x, r(50)))
    check_conversion(_hist(bins=edges, density=True), (x,))


# -- refusals ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn, reason", [
    (lambda x: torch.nonzero(x.reshape(())), "0-d"),
    (lambda x: torch.nonzero_static(x, size=0), "no empty tensors"),
])
def test_refusals(fn, reason):
    with pytest.raises(torch_coreml.UnsupportedOpsError, match=reason):
        torch_coreml.export(Fn(fn), (r(1),), minimum_deployment_target="iOS18")
