"""Sampling, distance and assorted nn lowerings (torch_coreml/lowering/ops/sampling.py), end to end
through a saved package: grid sampling in every mode, antialiased resizing, cdist / pdist / dist,
bilinear, embedding_bag, segment_reduce, diagonal_scatter, addmv, ldexp and transposed convolution
with a run-time weight.

Each case is (id, module, inputs), exported, converted, saved, checked by coremltools' loader, reloaded
and compared with eager. Further tables cover fp16 programs, dynamic batch sizes and refusals.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

import torch_coreml
from tests.lowering._check import Fn, check_conversion, r
from torch_coreml.lowering.unsupported import UnsupportedOpsError

aten = torch.ops.aten
torch.manual_seed(0)


def grid(*shape, reach=1.3):
    """Sampling coordinates, some beyond [-1, 1] so every padding mode matters."""
    return (torch.rand(*shape) * 2 - 1) * reach


def sample(mode, padding, align):
    return Fn(lambda x, g: F.grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=align))


# Nearest ties: with align_corners and 5 pixels, -0.75 and -0.25 land on 0.5 and 1.5 exactly, which
# torch rounds to even (0 and 2), not up.
TIES = torch.tensor([-0.75, -0.25, 0.25, 0.75]).reshape(1, 1, 4, 1).expand(1, 2, 4, 2).contiguous()

# Every interpolation with every padding mode, alternating align_corners (both for bilinear).
ALIGNED = {("nearest", "zeros"), ("nearest", "reflection"), ("bicubic", "border")}
GRID_MODES = [(m, p, a)
              for m, p in itertools.product(("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"))
              for a in ((False, True) if m == "bilinear" else ((m, p) in ALIGNED,))]
GRID_CASES = [
    (f"grid_sample_{m}_{p}_{'aligned' if a else 'edges'}", sample(m, p, a), (r(2, 3, 5, 7), grid(2, 4, 6, 2)))
    for m, p, a in GRID_MODES
] + [
    (f"grid_sample_3d_{m}_{p}", sample(m, p, a), (r(2, 2, 3, 4, 5), grid(2, 3, 2, 4, 3)))
    for m, p, a in (("bilinear", "zeros", False), ("nearest", "border", True), ("bilinear", "reflection", True))
] + [
    ("grid_sample_nearest_ties", sample("nearest", "zeros", True), (r(1, 2, 5, 5), TIES)),
    ("grid_sample_reflection_far", sample("bilinear", "reflection", False), (r(1, 2, 4, 6), grid(1, 3, 5, 2, reach=7))),
    ("grid_sample_single_row_reflection", sample("bicubic", "reflection", True), (r(1, 2, 1, 6), grid(1, 3, 5, 2))),
]

RESIZE_AA_CASES = [
    ("aa_down", Fn(lambda x: F.interpolate(x, size=(3, 7), mode="bilinear", antialias=True)), (r(2, 3, 10, 20),)),
    ("aa_scales", Fn(lambda x: F.interpolate(x, scale_factor=(1.7, 0.45), mode="bilinear", antialias=True)),
     (r(1, 2, 9, 13),)),
    ("aa_aligned", Fn(lambda x: F.interpolate(x, size=(4, 20), mode="bilinear", antialias=True, align_corners=True)),
     (r(1, 2, 9, 13),)),
]

def bits(*shape):
    """0.0 / 1.0 values: p = 0 counts differing entries, so some must be equal."""
    return torch.randint(0, 2, shape).float()


DISTANCE_CASES = [
    ("cdist_p2_direct", Fn(lambda a, b: torch.cdist(a, b)), (r(2, 5, 3), r(2, 6, 3))),
    ("cdist_p2_product", Fn(lambda a, b: torch.cdist(a, b)), (r(30, 4), r(7, 4))),
    ("cdist_p2_never_product", Fn(lambda a, b: torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")),
     (r(30, 4), r(7, 4))),
    ("cdist_p0", Fn(lambda a, b: torch.cdist(a, b, p=0)), (bits(4, 3), bits(5, 3))),
    ("cdist_p1_broadcast", Fn(lambda a, b: torch.cdist(a, b, p=1)), (r(2, 1, 4, 3), r(3, 5, 3))),
    ("cdist_pinf", Fn(lambda a, b: torch.cdist(a, b, p=float("inf"))), (r(4, 3), r(5, 3))),
    ("cdist_p1_5", Fn(lambda a, b: torch.cdist(a, b, p=1.5)), (r(4, 3), r(5, 3))),
    ("pdist_p2", Fn(F.pdist), (r(5, 4),)),
    ("pdist_pinf", Fn(lambda x: F.pdist(x, p=float("inf"))), (r(4, 3),)),
    ("dist_p2_broadcast", Fn(lambda a, b: torch.dist(a, b)), (r(3, 4), r(4))),
    ("dist_p0", Fn(lambda a, b: torch.dist(a, b, p=0)), (bits(3, 4), bits(3, 4))),
    ("dist_pneginf", Fn(lambda a, b: torch.dist(a, b, p=-float("inf"))), (r(3, 4), r(3, 4))),
]

BILINEAR_CASES = [
    ("bilinear_module", nn.Bilinear(4, 3, 5), (r(2, 6, 4), r(2, 6, 3))),
    ("bilinear_runtime_weight", Fn(lambda a, w, b: F.bilinear(a, b, w)), (r(6, 4), r(5, 4, 3), r(6, 3))),
    ("bilinear_int", Fn(lambda a, w, b, c: F.bilinear(a, b, w, c)),
     (torch.randint(-3, 3, (2, 4)), torch.randint(-3, 3, (5, 4, 3)), torch.randint(-3, 3, (2, 3)),
      torch.randint(-3, 3, (5,)))),
    # Not nn.functional.bilinear's pattern: the general unsqueeze-multiply-sum form.
    ("trilinear_other_pattern", Fn(lambda a, b, c: aten._trilinear(a, b, c, [0], [1], [], [2])),
     (r(3, 4), r(2, 4), r(2, 3, 4))),
]

class Bags(nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(10, 4, mode="max")

    def forward(self, ids):
        return self.bag(ids)


EMBEDDING_BAG_CASES = [
    ("embedding_bag_sum_weights", Fn(lambda w, i, o, s: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=s)),
     (r(10, 3), torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 3, 3, 6]), r(8))),
    ("embedding_bag_mean_padding", Fn(lambda w, i, o: F.embedding_bag(i, w, o, mode="mean", padding_idx=4)),
     (r(10, 3), torch.tensor([1, 4, 4, 5, 4, 3]), torch.tensor([0, 2, 3]))),
    ("embedding_bag_max_empty_bag", Fn(lambda w, i, o: F.embedding_bag(i, w, o, mode="max")),
     (r(10, 3), torch.tensor([1, 2, 4, 5, 4, 3]), torch.tensor([0, 2, 2, 5]))),
    ("embedding_bag_include_last_offset", Fn(lambda w, i, o: F.embedding_bag(i, w, o, mode="sum",
                                                                              include_last_offset=True)),
     (r(10, 3), torch.tensor([1, 2, 4, 5, 4, 3]), torch.tensor([0, 2, 4]))),
    ("embedding_bag_2d_mean", Fn(lambda w, i: F.embedding_bag(i, w, mode="mean")),
     (r(10, 3), torch.randint(0, 10, (4, 3)))),
    ("embedding_bag_module_max", Bags(), (torch.randint(0, 10, (3, 5)),)),
]


def segment(reduce, by="lengths", **kwargs):
    # An empty segment's mean is NaN, which the comparison would not match: map it to a number.
    return Fn(lambda x, s: torch.nan_to_num(aten.segment_reduce(x, reduce, **{by: s}, **kwargs), nan=-7.0))


SEGMENT_CASES = [
    (f"segment_{reduce}{'_initial' if initial is not None else ''}",
     segment(reduce, initial=initial), (r(7), torch.tensor([2, 0, 4, 1])))
    for reduce, initial in (("sum", 1.5), ("mean", None), ("mean", 1.5), ("max", None), ("min", 1.5), ("prod", None))
] + [
    ("segment_mean_axis1_offsets", segment("mean", "offsets", axis=1),
     (r(2, 6, 3), torch.tensor([[0, 2, 2, 6], [0, 1, 5, 6]]))),
    ("segment_max_axis1_lengths", segment("max", axis=1, initial=0.0),
     (r(2, 6, 3), torch.tensor([[2, 0, 4], [1, 4, 1]]))),
]

MISC_CASES = [
    ("diagonal_scatter", Fn(lambda x, s: torch.diagonal_scatter(x, s)), (r(4, 5), r(4))),
    ("diagonal_scatter_offset", Fn(lambda x, s: torch.diagonal_scatter(x, s, 2)), (r(4, 5), r(3))),
    ("diagonal_scatter_negative_offset_3d", Fn(lambda x, s: torch.diagonal_scatter(x, s, -1, 2, 0)),
     (r(4, 3, 5), r(3, 4))),
    ("diagonal_scatter_int", Fn(lambda x, s: torch.diagonal_scatter(x, s, 1)),
     (torch.randint(-5, 5, (4, 4)), torch.randint(-5, 5, (3,)))),
    ("addmv", Fn(lambda c, m, v: torch.addmv(c, m, v, beta=0.5, alpha=2)), (r(3), r(3, 4), r(4))),
    ("addmv_beta0_ignores_nan", Fn(lambda c, m, v: torch.addmv(c, m, v, beta=0)),
     (torch.full((3,), float("nan")), r(3, 4), r(4))),
    ("addmv_int", Fn(torch.addmv),
     (torch.randint(-5, 5, (1,)), torch.randint(-5, 5, (3, 4)), torch.randint(-5, 5, (4,)))),
    ("ldexp", Fn(torch.ldexp), (r(3, 4), torch.randint(-10, 10, (4,)))),
    ("ldexp_float_exponent", Fn(torch.ldexp), (r(3, 4), torch.tensor([0.5, -1.0, 3.0, 2.5]))),
]


def conv_t(fn, **kwargs):
    return Fn(lambda x, w, b: fn(x, w, b, **kwargs))


CONV_T_CASES = [
    ("conv_transpose1d_runtime", conv_t(F.conv_transpose1d, stride=2, padding=1, output_padding=1),
     (r(2, 3, 5), r(3, 4, 3), r(4))),
    ("conv_transpose2d_runtime_grouped_dilated",
     conv_t(F.conv_transpose2d, stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2, dilation=(2, 1)),
     (r(1, 4, 4, 5), r(4, 3, 3, 2), r(6))),
    # More padding than dilation * (kernel - 1): the spread input is cropped instead of padded.
    ("conv_transpose2d_runtime_crop", conv_t(F.conv_transpose2d, stride=3, padding=3, output_padding=1),
     (r(1, 2, 5, 4), r(2, 3, 2, 2), r(3))),
    ("conv_transpose3d_runtime", conv_t(F.conv_transpose3d, stride=(1, 2, 2), padding=1),
     (r(1, 2, 3, 3, 4), r(2, 2, 3, 3, 3), r(2))),
]

CASES = GRID_CASES + RESIZE_AA_CASES + DISTANCE_CASES + BILINEAR_CASES + EMBEDDING_BAG_CASES + SEGMENT_CASES \
    + MISC_CASES + CONV_T_CASES


@pytest.mark.parametrize("name, model, inputs", CASES, ids=[c[0] for c in CASES])
def test_sampling_op(name, model, inputs):
    check_conversion(model, inputs)


FP16_CASES = [("grid_sample_bicubic_border_aligned", "iOS16"), ("grid_sample_3d_bilinear_zeros", "iOS18"),
              ("aa_scales", "iOS15"), ("cdist_p2_product", "iOS16"), ("embedding_bag_max_empty_bag", "iOS18"),
              ("conv_transpose2d_runtime_grouped_dilated", "iOS15")]


@pytest.mark.parametrize("name, target", FP16_CASES, ids=[c[0] for c in FP16_CASES])
def test_sampling_op_fp16(name, target):
    _, model, inputs = next(c for c in CASES if c[0] == name)
    check_conversion(model, inputs, precision="float16", target=target, atol=2e-2, rtol=2e-2)


def test_grid_sample_dynamic_batch_and_grid():
    batch, points = Dim("batch", min=1, max=8), Dim("points", min=2, max=16)
    x, g = r(2, 3, 5, 7), grid(2, 4, 6, 2)
    check_conversion(sample("bicubic", "border", False), (x, g),
                     dynamic_shapes=(({0: batch}, {0: batch, 2: points}),),
                     run_inputs=[(r(3, 3, 5, 7), grid(3, 4, 9, 2))])


def test_conv_transpose_runtime_weight_dynamic_batch():
    model, inputs = next((m, i) for n, m, i in CASES if n == "conv_transpose1d_runtime")
    check_conversion(model, inputs, dynamic_shapes=(({0: Dim("batch", min=1, max=8)}, None, None),),
                     run_inputs=[(r(5, 3, 5), *inputs[1:])])


def test_embedding_bag_dynamic_bag_count():
    model, inputs = next((m, i) for n, m, i in CASES if n == "embedding_bag_mean_padding")
    dynamic = (None, {0: Dim("length", min=2, max=32)}, {0: Dim("bags", min=2, max=16)})
    check_conversion(model, inputs, dynamic_shapes=(dynamic,),
                     run_inputs=[(inputs[0], torch.tensor([3, 4, 1, 1, 7, 8, 9, 4]), torch.tensor([0, 1, 1, 5, 6]))])


REFUSED = [
    ("embedding_bag_offset2bag_read",
     Fn(lambda w, i, o: aten._embedding_bag_forward_only(w, i, o)[1]),
     (r(10, 3), torch.tensor([1, 2, 3]), torch.tensor([0, 2])), "offset2bag"),
    ("pdist_single_row", Fn(F.pdist), (r(1, 3),), "empty"),
]


@pytest.mark.parametrize("name, model, inputs, reason", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(name, model, inputs, reason):
    with pytest.raises(UnsupportedOpsError, match=reason):
        torch_coreml.export(model, inputs, compute_precision="float32")
