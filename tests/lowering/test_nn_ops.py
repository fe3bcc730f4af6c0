"""nn compute lowerings (matrix products, convolution, pooling, attention), end to end through a
saved package. Normalization, embedding, resizing and sorting are in test_norm_resize_sort.py.

Each case is (id, module, inputs): the module is exported, converted, saved, checked by coremltools'
loader, reloaded and compared with eager. Further tables cover fp16 programs per target, dynamic
shapes, and nodes that must be refused (or left to torch's decomposition) rather than mistranslated.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

import torch_coreml
from tests.lowering._check import Fn, check_conversion, r
from torch_coreml.lowering.unsupported import UnsupportedOpsError




class TiedLinear(nn.Module):
    """A weight computed at run time: linear lowers to matmul instead of MIL linear."""

    def forward(self, x, w, b):
        return F.linear(x, w, b)


torch.manual_seed(0)
CASES = [
    # -- matrix products
    ("linear", nn.Linear(4, 3), (r(2, 4),)),
    ("linear_3d_no_bias", nn.Linear(4, 3, bias=False), (r(2, 5, 4),)),
    ("linear_runtime_weight", TiedLinear(), (r(2, 4), r(3, 4), r(3))),
    ("mm", Fn(torch.mm), (r(3, 4), r(4, 5))),
    ("bmm", Fn(torch.bmm), (r(2, 3, 4), r(2, 4, 5))),
    ("addmm", Fn(lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2)), (r(5), r(3, 4), r(4, 5))),
    ("baddbmm", Fn(lambda c, a, b: torch.baddbmm(c, a, b, beta=0.5, alpha=2)),
     (r(2, 3, 5), r(2, 3, 4), r(2, 4, 5))),
    ("addbmm", Fn(lambda c, a, b: torch.addbmm(c, a, b, beta=0.5, alpha=2)), (r(3, 5), r(2, 3, 4), r(2, 4, 5))),
    ("baddbmm_beta0", Fn(lambda c, a, b: torch.baddbmm(c, a, b, beta=0)), (r(2, 3, 5), r(2, 3, 4), r(2, 4, 5))),
    ("matmul_broadcast", Fn(torch.matmul), (r(3, 4), r(2, 4, 5))),
    ("matmul_vector_right", Fn(torch.matmul), (r(2, 3, 4), r(4))),
    ("matmul_vector_left", Fn(torch.matmul), (r(4), r(2, 4, 5))),
    ("matmul_dot", Fn(torch.matmul), (r(4), r(4))),
    ("matmul_int", Fn(torch.matmul), (torch.randint(-5, 5, (3, 4)), torch.randint(-5, 5, (4, 2)))),
    # -- convolution
    ("conv1d_stride_pad", nn.Conv1d(3, 4, 3, stride=2, padding=1), (r(1, 3, 9),)),
    ("conv2d_dilated_grouped", nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), (r(2, 4, 8, 7),)),
    ("conv2d_same", nn.Conv2d(4, 6, 3, padding="same", bias=False), (r(2, 4, 8, 7),)),
    ("conv2d_depthwise", nn.Conv2d(4, 4, 3, groups=4), (r(1, 4, 6, 6),)),
    ("conv3d", nn.Conv3d(2, 4, (1, 3, 3), padding=(0, 1, 1)), (r(1, 2, 3, 5, 5),)),
    ("conv_transpose2d_output_padding", nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
     (r(1, 4, 5, 5),)),
    ("conv_transpose2d_output_padding_beyond", nn.ConvTranspose2d(4, 6, 3, stride=3, output_padding=2, groups=2),
     (r(1, 4, 5, 5),)),
    ("conv_transpose1d_dilated", nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1, dilation=2), (r(1, 4, 5),)),
    ("conv_transpose3d", nn.ConvTranspose3d(2, 2, 2, stride=2), (r(1, 2, 2, 3, 3),)),
    ("conv2d_runtime_weight", Fn(lambda x, w, b: F.conv2d(x, w, b, padding=1)), (r(1, 3, 5, 5), r(4, 3, 3, 3), r(4))),
    ("conv2d_runtime_weight_dilated", Fn(lambda x, w, b: F.conv2d(x, w, b, padding=2, dilation=(2, 3))),
     (r(1, 3, 9, 9), r(4, 3, 3, 3), r(4))),
    # -- pooling
    ("max_pool1d", nn.MaxPool1d(3, stride=2, padding=1), (r(1, 3, 9),)),
    ("max_pool2d_ceil", nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (r(2, 4, 8, 7),)),
    ("max_pool2d_ceil_stride_gt_kernel", nn.MaxPool2d(2, stride=3, ceil_mode=True), (r(2, 4, 8, 7),)),
    ("max_pool3d", nn.MaxPool3d(2), (r(1, 2, 4, 4, 4),)),
    ("max_pool3d_ceil", nn.MaxPool3d(3, stride=2, padding=1, ceil_mode=True), (r(1, 2, 6, 5, 4),)),
    ("max_pool2d_unbatched", nn.MaxPool2d(3, stride=2, padding=1), (r(4, 8, 7),)),
    ("max_pool1d_unbatched", nn.MaxPool1d(2), (r(3, 8),)),
    ("max_pool2d_indices", Fn(lambda x: F.max_pool2d(x, 2, return_indices=True)), (r(2, 3, 7, 8),)),
    ("max_pool2d_indices_pad_ceil", Fn(lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)),
     (r(2, 3, 7, 8),)),
    ("max_pool1d_indices", Fn(lambda x: F.max_pool1d(x, 3, stride=2, padding=1, return_indices=True)), (r(2, 3, 9),)),
    ("max_pool3d_indices", Fn(lambda x: F.max_pool3d(x, 2, stride=(1, 2, 2), padding=1, return_indices=True)),
     (r(1, 2, 4, 5, 6),)),
    ("max_pool2d_dilated_indices", Fn(lambda x: F.max_pool2d(x, 3, 1, 1, dilation=2, return_indices=True)),
     (r(2, 3, 9, 8),)),
    ("max_pool2d_dilated_ceil", nn.MaxPool2d(2, dilation=(2, 3), ceil_mode=True), (r(2, 3, 9, 8),)),
    ("max_pool2d_indices_unbatched", Fn(lambda x: F.max_pool2d(x, (2, 3), return_indices=True)), (r(3, 7, 8),)),
    ("adaptive_max_pool2d_indices", Fn(lambda x: F.adaptive_max_pool2d(x, (7, 4), return_indices=True)),
     (r(2, 3, 7, 8),)),
    ("adaptive_max_pool2d_uneven_indices_ties", Fn(lambda x: F.adaptive_max_pool2d(x, 3, return_indices=True)),
     (torch.randint(0, 3, (2, 3, 7, 8)).float(),)),
    ("adaptive_max_pool3d_uneven_indices", Fn(lambda x: F.adaptive_max_pool3d(x, (2, 3, 5), return_indices=True)),
     (r(1, 2, 3, 7, 8),)),
    ("avg_pool1d_exclude_pad", nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (r(1, 3, 9),)),
    ("avg_pool2d_ceil", nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (r(2, 4, 8, 7),)),
    ("avg_pool2d_ceil_exclude_pad", nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
     (r(2, 4, 8, 7),)),
    ("avg_pool2d_divisor", nn.AvgPool2d(3, stride=2, padding=1, divisor_override=5), (r(2, 4, 8, 7),)),
    ("avg_pool3d_exclude_pad", nn.AvgPool3d(2, padding=1, count_include_pad=False), (r(1, 2, 4, 4, 4),)),
    ("avg_pool3d_ceil_exclude_pad", nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
     (r(1, 2, 6, 5, 4),)),
    ("avg_pool3d_ceil_no_pad", nn.AvgPool3d(2, ceil_mode=True), (r(1, 2, 5, 4, 4),)),
    ("avg_pool2d_ceil_divisor", nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, divisor_override=4),
     (r(1, 2, 6, 5),)),
    ("adaptive_avg_pool2d_global", nn.AdaptiveAvgPool2d(1), (r(2, 4, 8, 7),)),
    ("adaptive_avg_pool2d_divisible", nn.AdaptiveAvgPool2d((4, 7)), (r(2, 4, 8, 7),)),
    ("adaptive_avg_pool1d", nn.AdaptiveAvgPool1d(3), (r(2, 4, 9),)),
    ("adaptive_avg_pool3d", nn.AdaptiveAvgPool3d((1, 2, 2)), (r(2, 4, 3, 4, 4),)),
    ("adaptive_avg_pool2d_unbatched", nn.AdaptiveAvgPool2d((2, 2)), (r(3, 4, 4),)),
    ("adaptive_avg_pool2d_uneven", nn.AdaptiveAvgPool2d((3, 5)), (r(2, 4, 8, 7),)),
    ("adaptive_avg_pool1d_uneven", nn.AdaptiveAvgPool1d(4), (r(2, 3, 7),)),
    ("adaptive_max_pool2d", nn.AdaptiveMaxPool2d((2, 7)), (r(2, 4, 8, 7),)),
    ("adaptive_max_pool2d_global", nn.AdaptiveMaxPool2d(1), (r(2, 4, 8, 7),)),
    ("adaptive_max_pool2d_uneven", nn.AdaptiveMaxPool2d((3, 3)), (r(1, 2, 8, 7),)),
    ("adaptive_max_pool3d_uneven_unbatched", nn.AdaptiveMaxPool3d((2, 3, 4)), (r(2, 3, 8, 7),)),
    ("adaptive_avg_pool3d_uneven", nn.AdaptiveAvgPool3d((2, 3, 3)), (r(1, 2, 3, 8, 7),)),
]


@pytest.mark.parametrize("name, model, inputs", CASES, ids=[c[0] for c in CASES])
def test_nn_op(name, model, inputs):
    check_conversion(model, inputs)


# fp16 programs, alternating the oldest and newest targets (the MIL op versions differ).
FP16_CASES = [("linear", "iOS15"), ("linear_runtime_weight", "iOS18"), ("baddbmm", "iOS15"),
              ("conv2d_dilated_grouped", "iOS15"), ("conv_transpose2d_output_padding", "iOS18"),
              ("conv2d_runtime_weight", "iOS15"), ("conv2d_runtime_weight_dilated", "iOS18"),
              ("max_pool2d_ceil", "iOS18"), ("avg_pool2d_ceil", "iOS15"),
              ("max_pool2d_indices_pad_ceil", "iOS15"), ("adaptive_avg_pool2d_uneven", "iOS15")]


@pytest.mark.parametrize("name, target", FP16_CASES, ids=[c[0] for c in FP16_CASES])
def test_nn_op_fp16(name, target):
    _, model, inputs = next(c for c in CASES if c[0] == name)
    check_conversion(model, inputs, precision="float16", target=target)


# -- attention -----------------------------------------------------------------------------------

Q, K, V = r(2, 3, 5, 8), r(2, 3, 6, 8), r(2, 3, 6, 4)
ATTENTION = [
    ("plain", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), ()),
    ("causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), ()),
    ("bool_mask_scale", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3),
     (torch.rand(5, 6) > 0.3,)),
    ("float_mask", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), (r(3, 5, 6),)),
]


@pytest.mark.parametrize("name, fn, extra", ATTENTION, ids=[c[0] for c in ATTENTION])
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_attention_ios18_is_one_op(name, fn, extra, precision):
    cm = check_conversion(Fn(fn), (Q, K, V, *extra), precision=precision, target="iOS18")
    assert "scaled_dot_product_attention" in _op_types(cm)


def test_attention_before_ios18_is_decomposed():
    fn = ATTENTION[0][1]
    try:
        cm = torch_coreml.export(Fn(fn), (Q, K, V), minimum_deployment_target="iOS17")
    except UnsupportedOpsError as e:  # the decomposition needs other families' ops
        assert "scaled_dot_product_attention" not in str(e)
        return
    assert "scaled_dot_product_attention" not in _op_types(cm)


def _op_types(cm) -> set[str]:
    return {op.op_type for op in cm.program.main.block.walk()}


# -- kept-whole ops really are kept --------------------------------------------------------------

@pytest.mark.parametrize("name, mil_op", [("linear", "linear"), ("matmul_vector_left", "matmul"),
                                          ("max_pool1d", "max_pool"), ("adaptive_avg_pool1d", "avg_pool")])
def test_kept_whole(name, mil_op):
    _, model, inputs = next(c for c in CASES if c[0] == name)
    assert mil_op in op_types(model, inputs)


def op_types(model, inputs, **options) -> set[str]:
    """The MIL op types of the converted program (to check an op was kept whole)."""
    cm = torch_coreml.export(model, inputs, compute_precision="float32", **options)
    return _op_types(cm)


# -- dynamic shapes ------------------------------------------------------------------------------

DYNAMIC = [
    ("linear", nn.Linear(4, 3), (2, 4)),
    ("matmul", Fn(lambda x: torch.matmul(x, torch.ones(4, 2))), (2, 3, 4)),
    ("conv2d", nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
    ("conv_transpose2d", nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), (2, 3, 4, 4)),
    ("max_pool2d", nn.MaxPool2d(2), (2, 3, 6, 6)),
    ("max_pool2d_indices", Fn(lambda x: F.max_pool2d(x, 2, return_indices=True)), (2, 3, 6, 6)),
    ("avg_pool2d", nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 6, 6)),
    ("adaptive_avg_pool_global", nn.AdaptiveAvgPool2d(1), (2, 3, 6, 6)),
]


@pytest.mark.parametrize("name, model, shape", DYNAMIC, ids=[c[0] for c in DYNAMIC])
def test_nn_op_dynamic_batch(name, model, shape):
    check_dynamic_batch(model, shape)


def check_dynamic_batch(model, shape, make=torch.randn):
    """Convert with a dynamic dim 0 and compare at the example batch size and another one."""
    batch = Dim("batch", min=1, max=8)
    dynamic = (({0: batch},),) if isinstance(model, Fn) else ({0: batch},)
    check_conversion(model, (make(*shape),), dynamic_shapes=dynamic, run_inputs=[(make(5, *shape[1:]),)])


# -- refused, never mistranslated ------------------------------------------------------------------

REFUSED = [
    ("adaptive_max_indices_dynamic", None, None, "dynamic"),
    ("avg_pool3d_ceil_include_pad", nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True), (r(1, 1, 6, 6, 6),),
     "count_include_pad"),
    ("adaptive_uneven_dynamic", None, None, "dynamic"),
]


@pytest.mark.parametrize("name, model, inputs, reason", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(name, model, inputs, reason):
    dynamic = None
    if name == "adaptive_uneven_dynamic":  # uneven windows are built from static sizes
        model, inputs = nn.AdaptiveMaxPool2d((3, 3)), (r(1, 2, 8, 7),)
        dynamic = ({3: Dim("w", min=4, max=9)},)
    elif name == "adaptive_max_indices_dynamic":  # so are the indices
        model, inputs = nn.AdaptiveMaxPool2d((3, 3), return_indices=True), (r(1, 2, 8, 7),)
        dynamic = ({3: Dim("w", min=4, max=9)},)
    with pytest.raises(UnsupportedOpsError, match=reason):
        torch_coreml.export(model, inputs, dynamic_shapes=dynamic, compute_precision="float32")
