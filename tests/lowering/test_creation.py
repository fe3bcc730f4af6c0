"""Creation lowerings (full, zeros/ones, *_like, empty, arange, scalar_tensor), end to end through a
saved package. Each case is (id, function, inputs); the created tensor is combined with an input so the
program has one.
"""

from __future__ import annotations

import pytest
import torch

from tests.lowering._check import check_conversion
from tests.lowering.test_shape_ops import Fn, bools, ints, r

CREATION = [
    ("zeros", lambda x: x + torch.zeros(2, 3), (r(2, 3),)),
    ("ones_int", lambda x: x + torch.ones(2, 3, dtype=torch.int64), (ints(2, 3),)),
    ("full_large", lambda x: x * torch.full((8, 16), 0.5), (r(8, 16),)),
    ("full_like", lambda x: torch.full_like(x, 3), (ints(2, 2),)),
    ("zeros_like_bool", lambda x: torch.zeros_like(x) | x, (bools(2, 2),)),
    ("new_ones", lambda x: x.new_ones(3, 1) + x, (r(3, 2),)),
    ("empty_shape", lambda x: torch.empty(2, 3).fill_(1.0) + x, (r(2, 3),)),
    ("arange", lambda x: torch.arange(5) + x, (ints(2, 5),)),
    ("arange_float", lambda x: torch.arange(0.5, 3.0, 0.5) * x, (r(5),)),
    ("arange_start_step", lambda x: torch.arange(1, 10, 3).float() + x, (r(3),)),
    ("scalar_tensor", lambda x: x * torch.scalar_tensor(2.0), (r(2),)),
]


@pytest.mark.parametrize("name, fn, inputs", CREATION, ids=[c[0] for c in CREATION])
def test_creation_op(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


def test_full_in_fp16_program():
    check_conversion(Fn(lambda x: x + torch.full((2, 3), 0.25)), (r(2, 3),), precision="float16", target="iOS16")
