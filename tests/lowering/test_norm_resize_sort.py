"""nn compute lowerings, second part: normalization, embedding, resizing and sorting, end to end
through a saved package (see test_nn_ops.py for the table layout and the helpers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

from tests.lowering._check import check_conversion
from tests.lowering.test_nn_ops import Fn, check_dynamic_batch, op_types, r


def _bn(module):
    """A batch norm with non-trivial running statistics and affine parameters."""
    module.running_mean.uniform_(-1, 1)
    module.running_var.uniform_(0.5, 2)
    if module.weight is not None:
        nn.init.uniform_(module.weight, 0.5, 2)
        nn.init.uniform_(module.bias, -1, 1)
    return module


class LayerNormStats(nn.Module):
    """All three outputs of native_layer_norm (mean and rstd are built only when read)."""

    def forward(self, x):
        return torch.ops.aten.native_layer_norm(x, [4], None, None, 1e-5)


class GroupNormStats(nn.Module):
    def forward(self, x):
        n, c, h, w = x.shape
        return torch.ops.aten.native_group_norm(x, None, None, n, c, h * w, 3, 1e-5)


def _sorted_ints(*shape):
    """Distinct values, so sort / topk indices are unambiguous."""
    n = 1
    for s in shape:
        n *= s
    return torch.randperm(n).view(*shape)


torch.manual_seed(0)
CASES = [
    # -- normalization
    ("batch_norm2d", _bn(nn.BatchNorm2d(4)), (r(2, 4, 3, 3),)),
    ("batch_norm1d_rank2", _bn(nn.BatchNorm1d(4)), (r(5, 4),)),
    ("batch_norm1d_no_affine", _bn(nn.BatchNorm1d(4, affine=False)), (r(2, 4, 6),)),
    ("batch_norm3d", _bn(nn.BatchNorm3d(2)), (r(1, 2, 2, 3, 3),)),
    ("batch_norm_batch_stats", nn.BatchNorm2d(4, track_running_stats=False), (r(2, 4, 3, 3),)),
    ("layer_norm", nn.LayerNorm(4), (r(2, 3, 4),)),
    ("layer_norm_2d_no_affine", nn.LayerNorm((3, 4), elementwise_affine=False), (r(2, 3, 4),)),
    ("layer_norm_stats", LayerNormStats(), (r(2, 3, 4),)),
    ("layer_norm_runtime_weight", Fn(lambda x, w: F.layer_norm(x, (4,), w)), (r(2, 3, 4), r(4))),
    ("group_norm", nn.GroupNorm(3, 6), (r(2, 6, 4, 4),)),
    ("group_norm_rank3", nn.GroupNorm(2, 4), (r(2, 4, 5),)),
    ("group_norm_stats", GroupNormStats(), (r(2, 6, 2, 2),)),
    ("instance_norm_affine", nn.InstanceNorm2d(4, affine=True), (r(2, 4, 5, 5),)),
    ("instance_norm1d", nn.InstanceNorm1d(4), (r(2, 4, 5),)),
    # -- embedding
    ("embedding", nn.Embedding(10, 4), (torch.randint(0, 10, (2, 3)),)),
    # -- resizing
    ("nearest_scale2", Fn(lambda x: F.interpolate(x, scale_factor=2)), (r(1, 2, 5, 6),)),
    ("nearest_size", Fn(lambda x: F.interpolate(x, size=(7, 4))), (r(1, 2, 5, 6),)),
    ("nearest_fractional_scales", Fn(lambda x: F.interpolate(x, scale_factor=(1.5, 0.5))), (r(1, 2, 5, 6),)),
    ("nearest_exact_size", Fn(lambda x: F.interpolate(x, size=(10, 3), mode="nearest-exact")), (r(1, 2, 5, 6),)),
    ("bilinear_scale2", Fn(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear")), (r(1, 2, 5, 6),)),
    ("bilinear_align_corners", Fn(lambda x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True)),
     (r(1, 2, 5, 6),)),
    ("bilinear_down", Fn(lambda x: F.interpolate(x, size=(3, 4), mode="bilinear")), (r(1, 2, 5, 6),)),
    ("bilinear_fractional_scale", Fn(lambda x: F.interpolate(x, scale_factor=1.7, mode="bilinear")), (r(1, 2, 4, 5),)),
    ("bilinear_fractional_align_corners",
     Fn(lambda x: F.interpolate(x, scale_factor=(0.6, 2.3), mode="bilinear", align_corners=True)), (r(1, 2, 4, 5),)),
    # -- sorting
    ("sort_dim1", Fn(lambda x: tuple(torch.sort(x, dim=1))), (r(3, 5, 4),)),
    ("sort_descending_int", Fn(lambda x: tuple(torch.sort(x, descending=True))), (_sorted_ints(3, 7),)),
    ("sort_stable_bool", Fn(lambda x: tuple(torch.sort(x, stable=True))), (torch.rand(3, 6) > 0.5,)),
    ("argsort_dim0", Fn(lambda x: torch.argsort(x, dim=0)), (r(6, 3),)),
    ("topk_smallest", Fn(lambda x: tuple(torch.topk(x, 3, dim=1, largest=False))), (r(3, 8, 2),)),
    ("topk_int", Fn(lambda x: tuple(torch.topk(x, 2))), (_sorted_ints(3, 9),)),
]


@pytest.mark.parametrize("name, model, inputs", CASES, ids=[c[0] for c in CASES])
def test_nn_op(name, model, inputs):
    check_conversion(model, inputs)


# fp16 programs, alternating the oldest and newest targets (the MIL op versions differ).
FP16_CASES = [("batch_norm2d", "iOS15"), ("batch_norm1d_rank2", "iOS18"), ("layer_norm", "iOS18"),
              ("group_norm", "iOS15"), ("instance_norm_affine", "iOS18"), ("embedding", "iOS15"),
              ("bilinear_align_corners", "iOS15"), ("nearest_size", "iOS18"), ("bilinear_fractional_scale", "iOS15"),
              ("topk_smallest", "iOS15"), ("sort_dim1", "iOS18")]


@pytest.mark.parametrize("name, target", FP16_CASES, ids=[c[0] for c in FP16_CASES])
def test_nn_op_fp16(name, target):
    _, model, inputs = next(c for c in CASES if c[0] == name)
    check_conversion(model, inputs, precision="float16", target=target)


@pytest.mark.parametrize("name, mil_op", [("instance_norm_affine", "instance_norm"), ("argsort_dim0", "argsort"),
                                          ("nearest_exact_size", "resize_nearest_neighbor"),
                                          ("layer_norm", "layer_norm")])
def test_kept_whole(name, mil_op):
    _, model, inputs = next(c for c in CASES if c[0] == name)
    assert mil_op in op_types(model, inputs)


DYNAMIC = [
    ("batch_norm", _bn(nn.BatchNorm2d(3)), (2, 3, 6, 6)),
    ("layer_norm", nn.LayerNorm(6), (2, 3, 6, 6)),
    ("group_norm", nn.GroupNorm(3, 6), (2, 6, 3, 3)),
    ("instance_norm", nn.InstanceNorm2d(3), (2, 3, 4, 4)),
    ("embedding", nn.Embedding(10, 4), (2, 3)),
    ("nearest_scale2", Fn(lambda x: F.interpolate(x, scale_factor=2)), (2, 3, 4, 4)),
    ("bilinear_scale2", Fn(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear")), (2, 3, 4, 4)),
    ("sort", Fn(lambda x: tuple(torch.sort(x, dim=0))), (2, 3, 4)),
]


@pytest.mark.parametrize("name, model, shape", DYNAMIC, ids=[c[0] for c in DYNAMIC])
def test_dynamic_batch(name, model, shape):
    make = {"embedding": lambda *s: torch.randint(0, 10, s), "sort": _sorted_ints}.get(name, torch.randn)
    check_dynamic_batch(model, shape, make)


def test_group_norm_dynamic_spatial():
    size = Dim("size", min=2, max=16)
    check_conversion(nn.GroupNorm(2, 4), (torch.randn(1, 4, 3, 5),), dynamic_shapes=({2: size},),
                     run_inputs=[(torch.randn(1, 4, 7, 5),)])
