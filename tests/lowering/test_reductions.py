"""Reduction lowerings (sum, mean, prod, amax/amin, max/min, argmax/argmin, var/std, any/all,
logsumexp, vector norms, cumsum), end to end through a saved package.

Each case is (id, function, input): the function is wrapped in a module, exported, converted, saved,
checked by coremltools' loader, reloaded and compared with eager. Inputs cover float, int and bool
tensors; ids say which dims and flags a row exercises. Add a row to cover a new variant.
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

from tests.lowering._check import check_conversion


class Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


torch.manual_seed(0)
X = torch.randn(2, 3, 4)
INTS = torch.randint(-5, 6, (2, 3, 4))
BOOLS = INTS > 0
# Values without ties, so max/min/argmax indices are unambiguous.
DISTINCT = torch.randperm(24).reshape(2, 3, 4).float() - 12

CASES = [
    ("sum_all", lambda x: x.sum(), X),
    ("sum_dims_keepdim", lambda x: x.sum((0, -1), keepdim=True), X),
    ("sum_int", lambda x: x.sum(1), INTS),
    ("sum_bool", lambda x: x.sum(-1), BOOLS),
    ("sum_dtype", lambda x: x.sum(2, dtype=torch.float32), INTS),
    ("mean_all", lambda x: x.mean(), X),
    ("mean_dims", lambda x: x.mean((0, 2)), X),
    ("mean_negative_keepdim", lambda x: x.mean(-2, keepdim=True), X),
    ("mean_int_dtype", lambda x: x.mean(-1, dtype=torch.float32), INTS),
    ("prod_dim", lambda x: x.prod(1), X),
    ("prod_all_int", lambda x: x.prod(), INTS),
    ("prod_bool_keepdim", lambda x: x.prod(0, keepdim=True), BOOLS),
    ("amax_dims", lambda x: x.amax((0, 2)), X),
    ("amin_keepdim_int", lambda x: x.amin(-1, keepdim=True), INTS),
    ("amax_bool", lambda x: x.amax(1), BOOLS),
    ("max_all", lambda x: x.max(), X),
    ("min_all_bool", lambda x: x.min(), BOOLS),
    ("max_dim", lambda x: tuple(x.max(1)), DISTINCT),
    ("min_dim_keepdim", lambda x: tuple(x.min(-1, keepdim=True)), DISTINCT),
    ("max_dim_int", lambda x: tuple(x.max(0)), torch.randperm(24).reshape(2, 3, 4)),
    ("argmax_flat", lambda x: x.argmax(), DISTINCT),
    ("argmax_flat_keepdim", lambda x: x.argmax(keepdim=True), DISTINCT),
    ("argmin_dim_keepdim", lambda x: x.argmin(1, keepdim=True), DISTINCT),
    ("argmax_negative_dim", lambda x: x.argmax(-1), DISTINCT),
    ("var_dim", lambda x: x.var(1), X),
    ("var_all", lambda x: x.var(), X),
    ("var_correction0_keepdim", lambda x: x.var((0, 2), correction=0, keepdim=True), X),
    ("std_dims", lambda x: x.std((0, 2), correction=0, keepdim=True), X),
    ("std_int", lambda x: x.float().std(-1), INTS),
    ("var_mean", lambda x: torch.var_mean(x, 1), X),
    ("std_mean", lambda x: torch.std_mean(x, -1, keepdim=True), X),
    ("any_all", lambda x: x.any(), BOOLS),
    ("any_dim_float", lambda x: x.any(-1, keepdim=True), X.relu()),
    ("any_dims_int", lambda x: x.any((0, 2)), INTS),
    ("all_dim", lambda x: x.all(1), BOOLS),
    ("all_all_int", lambda x: x.all(), INTS),
    ("logsumexp", lambda x: torch.logsumexp(x, 1), X),
    ("logsumexp_dims_keepdim", lambda x: torch.logsumexp(x, (0, -1), keepdim=True), X),
    ("norm_l2", lambda x: torch.linalg.vector_norm(x, dim=1), X),
    ("norm_l1", lambda x: x.norm(p=1, dim=-1), X),
    ("norm_inf", lambda x: torch.linalg.vector_norm(x, ord=float("inf")), X),
    ("norm_minus_inf", lambda x: torch.linalg.vector_norm(x, ord=float("-inf"), dim=0), X),
    ("norm_zero", lambda x: torch.linalg.vector_norm(x, ord=0, dim=2), X.relu()),
    ("norm_p3_keepdim", lambda x: torch.linalg.vector_norm(x, ord=3, dim=(0, 2), keepdim=True), X),
    ("cumsum", lambda x: x.cumsum(1), X),
    ("cumsum_int_negative", lambda x: x.cumsum(-1), INTS),
    ("cumsum_bool", lambda x: x.cumsum(0), BOOLS),
    # 0-d tensors (model inputs need rank >= 1, so the scalar is made inside the model)
    ("scalar_norm", lambda x: torch.linalg.vector_norm(x.reshape(())), -X[0, 0, :1]),
    ("scalar_max_dim", lambda x: tuple(x.reshape(()).max(0)), X[0, 0, :1]),
    ("scalar_argmax", lambda x: x.reshape(()).argmax(), X[0, 0, :1]),
    ("scalar_var", lambda x: x.reshape(()).var(correction=0), X[0, 0, :1]),
]


@pytest.mark.parametrize("name, fn, x", CASES, ids=[c[0] for c in CASES])
def test_reduction(name, fn, x):
    check_conversion(Fn(fn), (x,))


# fp16 programs, alternating the oldest and newest targets (the MIL op versions differ).
FP16_CASES = [("sum_dims_keepdim", "iOS15"), ("mean_dims", "iOS18"), ("max_dim", "iOS15"),
              ("argmin_dim_keepdim", "iOS18"), ("var_dim", "iOS15"), ("std_mean", "iOS18"),
              ("logsumexp", "iOS15"), ("norm_l2", "iOS18"), ("norm_p3_keepdim", "iOS15"),
              ("cumsum", "iOS18"), ("any_dim_float", "iOS15")]


@pytest.mark.parametrize("name, target", FP16_CASES, ids=[c[0] for c in FP16_CASES])
def test_reduction_fp16(name, target):
    _, fn, x = next(c for c in CASES if c[0] == name)
    check_conversion(Fn(fn), (x,), precision="float16", target=target)


DYNAMIC_CASES = [
    ("sum_over_dynamic", lambda x: x.sum(0)),
    ("mean_over_dynamic", lambda x: x.mean((0, 1))),
    ("var_over_dynamic", lambda x: x.var(0)),
    ("std_all_dynamic", lambda x: x.std()),
    ("max_dim_dynamic", lambda x: tuple(x.max(0))),
    ("argmax_flat_dynamic", lambda x: x.argmax()),
    ("cumsum_dynamic", lambda x: x.cumsum(0)),
]


@pytest.mark.parametrize("name, fn", DYNAMIC_CASES, ids=[c[0] for c in DYNAMIC_CASES])
def test_reduction_dynamic_batch(name, fn):
    batch = Dim("batch", min=1, max=16)
    check_conversion(Fn(fn), (torch.randperm(24).reshape(2, 3, 4).float(),),
                     dynamic_shapes=({0: batch},),
                     run_inputs=[(torch.randperm(60).reshape(5, 3, 4).float(),)])


def test_variance_of_many_elements_in_fp16():
    # 90,000 elements: more than fp16 can count (65,504), so the count must never be a fp16 value.
    x = torch.randn(1, 1, 300, 300)
    check_conversion(Fn(lambda x: torch.var_mean(x, (2, 3))), (x,), precision="float16", target="iOS15")
