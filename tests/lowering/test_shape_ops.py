"""Shape, view, slicing and padding lowerings, end to end through a saved package.

Each case is (id, function, inputs): the function is wrapped in a module, exported, converted, saved,
checked by coremltools' loader, reloaded and compared with eager. Add a row to cover a new variant.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.lowering._check import Fn, check_conversion, r




def ints(*shape):
    return torch.randint(-50, 50, shape)


def bools(*shape):
    return torch.rand(*shape) > 0.5


CASES = [
    ("view", lambda x: x.view(2, -1, 3), (r(4, 6),)),
    ("view_to_scalar", lambda x: x.view(()), (r(1, 1),)),
    ("reshape_int", lambda x: x.reshape(3, 8), (ints(2, 3, 4),)),
    ("flatten", lambda x: x.flatten(1), (r(2, 3, 4),)),
    ("permute", lambda x: x.permute(2, 0, 1), (r(2, 3, 4),)),
    ("permute_negative", lambda x: x.permute(-1, -3, -2), (r(2, 3, 4),)),
    ("transpose", lambda x: x.transpose(0, 2), (bools(2, 3, 4),)),
    ("expand", lambda x: x.expand(3, 4, 5), (r(4, 1),)),
    ("expand_minus_one", lambda x: x.expand(2, -1, 6), (ints(1, 3, 1),)),
    ("expand_bool", lambda x: x.expand(3, 2), (bools(1, 2),)),
    ("squeeze_all", lambda x: x.squeeze(), (r(1, 3, 1, 4),)),
    ("squeeze_dim", lambda x: x.squeeze(-2), (r(3, 1, 4),)),
    ("squeeze_dims", lambda x: x.squeeze((0, 2)), (r(1, 3, 1),)),
    ("squeeze_not_one", lambda x: x.squeeze(1) + 1, (r(2, 3),)),
    ("unsqueeze", lambda x: x.unsqueeze(1), (r(2, 3),)),
    ("cat", lambda x, y: torch.cat([x, y, x], 1), (r(2, 3), r(2, 4))),
    ("cat_negative_dim", lambda x, y: torch.cat([x, y], -1), (ints(2, 3), ints(2, 1))),
    ("cat_promotes", lambda x, y: torch.cat([x, y]), (r(2, 3), ints(1, 3))),
    ("stack", lambda x, y: torch.stack([x, y], 1), (r(2, 3), r(2, 3))),
    ("split", lambda x: x.split(2, 1), (r(3, 7),)),
    ("split_sizes", lambda x: torch.split(x, [1, 3, 2], -1), (ints(2, 6),)),
    ("unbind", lambda x: x.unbind(1), (r(2, 3),)),
    ("slice", lambda x: x[1:3], (r(5, 2),)),
    ("slice_step", lambda x: x[:, 1::2], (r(2, 7),)),
    ("slice_negative", lambda x: x[-3:-1, :-2], (r(5, 6),)),
    ("slice_clamped", lambda x: x[2:100, -100:3], (r(5, 6),)),
    ("select", lambda x: x[1], (r(3, 4),)),
    ("select_negative", lambda x: x[:, -1], (ints(3, 4),)),
    ("select_to_scalar", lambda x: x[2], (r(4),)),
    ("narrow", lambda x: x.narrow(1, 1, 2), (bools(2, 4),)),
    ("clone_detach", lambda x: x.clone().detach() * 2, (r(2, 3),)),
    ("clone_identity", lambda x: x.clone(), (r(2, 3),)),
    ("flip", lambda x: x.flip(0, -1), (r(2, 3, 4),)),
    ("roll", lambda x: x.roll(2, 1), (r(2, 5),)),
    ("roll_multi", lambda x: x.roll((1, -1), (0, 1)), (ints(3, 4),)),
    ("roll_flat", lambda x: x.roll(3), (r(2, 4),)),
    ("repeat", lambda x: x.repeat(2, 1, 3), (r(2, 2),)),
    ("pad_constant", lambda x: F.pad(x, (1, 2), value=1.5), (r(2, 3),)),
    ("pad_constant_3dims", lambda x: F.pad(x, (1, 1, 0, 2, 1, 0)), (r(2, 3, 4),)),
    ("pad_negative_crop", lambda x: F.pad(x, (-1, 2, 1, -2)), (r(4, 5),)),
    ("pad_int", lambda x: F.pad(x, (1, 2, 2, 0), value=7), (ints(2, 3),)),
    ("pad_bool", lambda x: F.pad(x, (1, 0), value=True), (bools(2, 3),)),
    ("reflection_pad1d", lambda x: F.pad(x, (2, 1), mode="reflect"), (r(2, 3, 5),)),
    ("reflection_pad2d", lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"), (r(1, 2, 4, 5),)),
    ("reflection_pad3d", lambda x: F.pad(x, (1, 0, 0, 1, 2, 1), mode="reflect"), (r(1, 2, 3, 4, 5),)),
    ("replication_pad1d", lambda x: F.pad(x, (0, 3), mode="replicate"), (r(2, 3, 4),)),
    ("replication_pad2d", lambda x: F.pad(x, (2, 2, 1, 0), mode="replicate"), (r(1, 2, 3, 3),)),
    ("replication_pad3d", lambda x: F.pad(x, (1, 1, 1, 1, 1, 2), mode="replicate"), (r(1, 1, 2, 3, 4),)),
]


@pytest.mark.parametrize("name, fn, inputs", CASES, ids=[c[0] for c in CASES])
def test_shape_op(name, fn, inputs):
    check_conversion(Fn(fn), inputs)


FP16_CASES = ["expand", "pad_constant", "reflection_pad2d"]


@pytest.mark.parametrize("name", FP16_CASES)
def test_shape_op_fp16(name):
    _, fn, inputs = next(c for c in CASES if c[0] == name)
    check_conversion(Fn(fn), inputs, precision="float16", target="iOS16")


@pytest.mark.parametrize("target", ["iOS15", "iOS18"])
def test_shape_ops_across_targets(target):
    def fn(x):
        y = x.permute(1, 0, 2)[:, 1:, None].expand(3, 2, 5, 4)
        return torch.cat([y, y.flip(-1)], 2).reshape(3, -1)

    check_conversion(Fn(fn), (r(3, 3, 4),), target=target)
