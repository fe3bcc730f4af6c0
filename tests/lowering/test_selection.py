"""Selection lowerings (kthvalue, median, nanmedian, mode, searchsorted, bucketize, isin, histc,
histogram), end to end through a saved package.

Each case is (id, function, inputs): the function is wrapped in a module, exported, converted, saved,
checked by coremltools' loader, reloaded and compared with eager (indices exactly). Inputs are built
so that indices are unambiguous: no ties where an index is returned, except in `mode`, whose index
is checked by gathering the input at it. Ids say which arguments and corner cases a row exercises.
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

from tests.lowering._check import Fn, check_conversion, r

NAN = float("nan")


def _distinct(*shape):
    """Distinct floats in random order (no ties, so indices are unambiguous)."""
    n = 1
    for s in shape:
        n *= s
    return (torch.randperm(n).float() * 0.37 - n * 0.15).reshape(shape)


def _with_nans(x, fraction=0.3):
    return torch.where(torch.rand(x.shape) < fraction, torch.full_like(x, NAN), x)


def _nan_marked(fn):
    """fn with NaN outputs replaced by a marker value (check_conversion compares without equal_nan)."""
    def marked(*args):
        out = fn(*args)
        outs = out if isinstance(out, tuple) else (out,)
        outs = tuple(torch.where(o.isnan(), -1234.5, o) if o.is_floating_point() else o for o in outs)
        return outs if isinstance(out, tuple) else outs[0]
    return marked


def _mode_checked(dim, keepdim=False):
    """mode's values, and the input gathered at its indices (torch's index among ties is
    implementation-defined; it must point at the mode value)."""
    def fn(x):
        values, indices = torch.mode(x, dim, keepdim)
        at = indices if keepdim else indices.unsqueeze(dim)
        return values, x.gather(dim, at)
    return fn


torch.manual_seed(0)
NAN_ROWS = _distinct(4, 6)
NAN_ROWS[0, 2] = NAN                 # one NaN
NAN_ROWS[1, [0, 3, 5]] = NAN         # half NaN
NAN_ROWS[2, :] = NAN                 # all NaN
EVEN = _distinct(3, 8)
REPEATS = torch.randint(0, 4, (3, 9, 5)).float()
SORTED = torch.sort(r(3, 10), dim=-1).values
EDGES = torch.tensor([-1.0, -0.25, 0.0, 0.5, 2.0])
HALVES = torch.arange(-6, 7).float() / 4  # values exactly on bin edges
UNSORTED_SEQ = torch.tensor([3.0, -1.0, 2.0, 0.5, 7.0, -4.0])

CASES = [
    # -- kthvalue
    ("kthvalue_last_dim", lambda x: tuple(torch.kthvalue(x, 3)), (_distinct(3, 4, 5),)),
    ("kthvalue_dim0_keepdim", lambda x: tuple(torch.kthvalue(x, 2, 0, True)), (_distinct(3, 4, 5),)),
    ("kthvalue_max_k_nan", _nan_marked(lambda x: tuple(torch.kthvalue(x, 6, 1))), (NAN_ROWS,)),
    ("kthvalue_int", lambda x: tuple(torch.kthvalue(x, 4, -1)), (torch.randperm(24).reshape(4, 6),)),
    ("kthvalue_0d", lambda x: tuple(torch.kthvalue(x.reshape(()), 1)), (torch.tensor([2.5]),)),
    # -- median / nanmedian: the lower of the two middle values; NaN handling
    ("median_all_odd", lambda x: torch.median(x), (_distinct(3, 5),)),
    ("median_all_even_lower", lambda x: torch.median(x), (EVEN,)),
    ("median_all_nan", _nan_marked(lambda x: torch.median(x)), (NAN_ROWS,)),
    ("median_dim_even", lambda x: tuple(torch.median(x, 1)), (EVEN,)),
    ("median_dim0_keepdim", lambda x: tuple(torch.median(x, 0, keepdim=True)), (_distinct(5, 3, 2),)),
    ("median_dim_nan_rows", _nan_marked(lambda x: tuple(torch.median(x, 1))), (NAN_ROWS,)),
    ("median_int", lambda x: tuple(torch.median(x, -1)), (torch.randperm(24).reshape(3, 8) - 10,)),
    ("median_0d_dim", lambda x: tuple(torch.median(x.reshape(()), 0)), (torch.tensor([1.5]),)),
    ("nanmedian_all", lambda x: torch.nanmedian(x), (NAN_ROWS,)),
    # (an all-NaN row's nanmedian index is implementation-defined in torch: values only there)
    ("nanmedian_dim_nan_rows", lambda x: tuple(torch.nanmedian(x, 1)), (NAN_ROWS[[0, 1, 3]],)),
    ("nanmedian_dim_all_nan_row", _nan_marked(lambda x: torch.nanmedian(x, 1).values), (NAN_ROWS,)),
    ("nanmedian_dim0_keepdim", lambda x: tuple(torch.nanmedian(x, 0, True)),
     (NAN_ROWS[[0, 1, 3]].t().contiguous(),)),
    ("nanmedian_int", lambda x: torch.nanmedian(x), (torch.randperm(7),)),
    # -- mode: most frequent, smallest among equally frequent
    ("mode_last_dim", _mode_checked(-1), (REPEATS,)),
    ("mode_dim1_keepdim", _mode_checked(1, True), (REPEATS,)),
    ("mode_unique_smallest", lambda x: tuple(torch.mode(x, 0)), (_distinct(6, 3),)),
    ("mode_int", _mode_checked(0), (torch.randint(-3, 3, (7, 4)),)),
    # -- searchsorted / bucketize: torch's binary search, including NaN and unsorted input
    ("searchsorted_1d_left", lambda s, v: torch.searchsorted(s, v), (EDGES, HALVES)),
    ("searchsorted_1d_right", lambda s, v: torch.searchsorted(s, v, right=True), (EDGES, HALVES)),
    ("searchsorted_side_right_int32", lambda s, v: torch.searchsorted(s, v, side="right", out_int32=True),
     (EDGES, HALVES.reshape(13, 1))),
    ("searchsorted_batched_sorter", lambda s, v, o: torch.searchsorted(s, v, sorter=o),
     (r(3, 10), r(3, 7), torch.argsort(r(3, 10)))),
    ("searchsorted_batched_right", lambda s, v: torch.searchsorted(s, v, right=True),
     (SORTED, torch.cat([SORTED[:, ::3], r(3, 4)], dim=1))),
    ("searchsorted_nan", lambda s, v: torch.searchsorted(s, v),
     (torch.tensor([-1.0, 0.0, 2.0, NAN]), torch.tensor([NAN, -2.0, 1.0, 5.0]))),
    ("searchsorted_unsorted_seq", lambda s, v: (torch.searchsorted(s, v), torch.searchsorted(s, v, right=True)),
     (UNSORTED_SEQ, torch.arange(-5, 9).float())),
    ("searchsorted_int_seq_float_values", lambda s, v: torch.searchsorted(s, v),
     (torch.tensor([-3, 0, 0, 2, 9]), torch.tensor([-4.0, 0.0, 0.5, 2.0, 10.0]))),
    ("searchsorted_scalar", lambda s: torch.searchsorted(s, 0.5), (EDGES,)),
    ("bucketize", lambda x, b: torch.bucketize(x, b), (HALVES.reshape(13, 1), EDGES)),
    ("bucketize_right_int32", lambda x, b: torch.bucketize(x, b, out_int32=True, right=True), (HALVES, EDGES)),
    ("bucketize_int", lambda x, b: torch.bucketize(x, b),
     (torch.randint(-5, 5, (4, 5)), torch.tensor([-2, 0, 3]))),
    # -- isin: pairwise for small problems, sort + search for large ones
    ("isin_small", lambda x, t: torch.isin(x, t),
     (torch.randint(0, 8, (4, 5)).float(), torch.tensor([1.0, 5, NAN]))),
    ("isin_invert", lambda x, t: torch.isin(x, t, invert=True),
     (torch.randint(0, 8, (20,)), torch.tensor([[2, 3], [7, 0]]))),
    ("isin_large_sorted_search", lambda x, t: (torch.isin(x, t), torch.isin(x, t, invert=True)),
     (_with_nans(torch.randint(0, 3000, (300, 40)).float()),
      _with_nans(torch.randint(0, 3000, (1000,)).float()))),
    ("isin_scalar_test", lambda x: torch.isin(x, 3), (torch.randint(0, 5, (3, 4)),)),
    ("isin_scalar_element", lambda t: torch.isin(2.0, t), (torch.tensor([1.0, 2.0]),)),
    # -- histc: linear bins; max belongs to the last bin; out-of-range and NaN are ignored
    ("histc_range", lambda x: torch.histc(x, bins=7, min=-1.5, max=1.5), (_with_nans(r(50)),)),
    ("histc_data_range", lambda x: torch.histc(x, bins=10), (r(8, 9),)),
    ("histc_edges", lambda x: torch.histc(x, bins=6, min=-1.5, max=1.5), (HALVES,)),
    ("histc_flat_data", lambda x: torch.histc(x, bins=4), (torch.full((5,), 2.0),)),
    # -- histogram: linspace edges (returned), weights, density, explicit edges
    ("histogram_bins", lambda x: tuple(torch.histogram(x, 9)), (r(40),)),
    ("histogram_range_edges", lambda x: tuple(torch.histogram(x, 12, range=(-1.5, 1.5))), (HALVES,)),
    ("histogram_flat_range", lambda x: tuple(torch.histogram(x, 3, range=(1.0, 1.0))), (torch.ones(4),)),
    ("histogram_weight_density",
     lambda x, w: tuple(torch.histogram(x, 5, range=(-2.0, 1.0), weight=w, density=True)),
     (r(6, 5), torch.rand(6, 5))),
    ("histogram_bin_tensor", lambda x, b: tuple(torch.histogram(x, b)), (_with_nans(r(30)), EDGES)),
    ("histogram_bin_tensor_density", lambda x, b, w: tuple(torch.histogram(x, b, weight=w, density=True)),
     (HALVES, EDGES, torch.rand(13))),
]


@pytest.mark.parametrize("fn,inputs", [pytest.param(f, i, id=n) for n, f, i in CASES])
def test_selection(fn, inputs):
    check_conversion(Fn(fn), inputs, target="iOS18")


FP16_CASES = [
    ("median_dim", _nan_marked(lambda x: torch.median(x, 1)[0]), (NAN_ROWS,)),
    ("kthvalue", lambda x: torch.kthvalue(x, 2)[0], (_distinct(3, 5),)),
    ("histc", lambda x: torch.histc(x, bins=5, min=-2, max=2), (r(30),)),
    ("histogram_density", lambda x: tuple(torch.histogram(x, 4, density=True)), (r(30),)),
    ("searchsorted", lambda s, v: torch.searchsorted(s, v), (EDGES, HALVES)),
    ("isin_large", lambda x, t: torch.isin(x, t), (torch.randint(0, 500, (200,)).float(),
                                                    torch.randint(0, 500, (400,)).float())),
]


@pytest.mark.parametrize("fn,inputs", [pytest.param(f, i, id=n) for n, f, i in FP16_CASES])
def test_selection_float16(fn, inputs):
    check_conversion(Fn(fn), inputs, precision="float16", target="iOS18")


def test_dynamic_sizes():
    """Dynamic sizes: the median's dim and searchsorted's values; searchsorted's sequence stays static."""
    rows = Dim("rows", min=2, max=32)
    check_conversion(Fn(_nan_marked(lambda x: tuple(torch.median(x, 0)))), (r(9, 3),), target="iOS18",
                     dynamic_shapes=(({0: rows},),), run_inputs=[(_with_nans(r(4, 3)),), (r(2, 3),)])
    n = Dim("n", min=1, max=64)
    check_conversion(Fn(lambda s, v: torch.searchsorted(s, v)), (EDGES, r(7)), target="iOS18",
                     dynamic_shapes=((None, {0: n}),), run_inputs=[(EDGES, r(30))])


@pytest.mark.parametrize("target,args,kwargs,reason", [
    pytest.param(torch.ops.aten.histc.default, (r(5), 4, 3, 1), {}, "min 3.0 exceeds max", id="histc_min_gt_max"),
    pytest.param(torch.ops.aten.histogram.bin_ct, (r(5), 3), {"range": [0.0, float("inf")]}, "not finite",
                 id="histogram_infinite_range"),
    pytest.param(torch.ops.aten.searchsorted.Tensor, (EDGES, r(3)), {"side": "left", "right": True},
                 "contradicts right=True", id="searchsorted_side_conflict"),
    pytest.param(torch.ops.aten.kthvalue.default, (r(3, 4), 5), {}, "out of range", id="kthvalue_k_too_large"),
    pytest.param(torch.ops.aten.histogram.bin_ct, (r(3, 4), 3), {"weight": r(12)}, "equal shapes",
                 id="histogram_weight_shape"),
])
def test_refusals(target, args, kwargs, reason):
    """Arguments torch rejects at run time are refused by the lowering (its dry run), with the reason."""
    from torch_coreml.lowering.dry_run import try_lowering
    from torch_coreml.mil import dtypes as dt
    from torch_coreml.mil.targets import Target

    ok, why = try_lowering(target, args, kwargs, mil_target=Target.iOS18, float_dtype=dt.fp32)
    assert not ok and reason in why, why
