"""Integer bitwise/shift ops and frexp/nextafter (lowering/ops/bits.py), end to end through a saved package.

The integer inputs span the whole int32 range (INT_MIN, INT_MAX, -1, powers of two and their
neighbours), since the arithmetic emulation has its edge cases at the sign bit. int32 tensors are used
where torch's own result must wrap (shifts), so eager and the int32 program agree bit for bit. The float
inputs are the values whose bit pattern is special: zeros, powers of two, subnormals, the largest
float, infinities and NaN (NaN compared through a sentinel).
"""

from __future__ import annotations

import math

import torch

import torch_coreml
from tests.lowering._check import Fn, check_conversion
from torch_coreml.lowering.dry_run import try_lowering
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.targets import Target

aten = torch.ops.aten
I32_MIN, I32_MAX = -2 ** 31, 2 ** 31 - 1
EDGES = [I32_MIN, I32_MIN + 1, -2 ** 30 - 1, -2 ** 30, -65537, -256, -129, -7, -2, -1, 0, 1, 2, 7, 127,
         128, 255, 65535, 2 ** 30 - 1, 2 ** 30, I32_MAX - 1, I32_MAX]
TINY = 2.0 ** -149


def _ints(dtype=torch.int32):
    g = torch.Generator().manual_seed(0)
    edges = torch.tensor(EDGES, dtype=torch.int64)
    rand = torch.randint(I32_MIN, I32_MAX, (len(EDGES),), generator=g, dtype=torch.int64)
    return edges.to(dtype), rand.to(dtype)


def test_and_or_xor_cover_the_int32_range():
    edges, rand = _ints()
    # Every edge against every edge, plus random pairs: the outer pairs broadcast [n, 1] with [n].
    a = torch.cat([edges[:, None].expand(-1, len(EDGES)), rand[:, None]], dim=1)
    b = torch.cat([edges, rand[:1]])
    check_conversion(Fn(lambda a, b: (a & b, a | b, a ^ b, b & a)), (a, b))


def test_bitwise_int64_scalars_and_bool_mix():
    x = torch.tensor([[-9, -1, 0, 3], [5, 12, -100, 77]])
    mask = torch.tensor([True, False, True, True])
    check_conversion(Fn(lambda x, m: (x & 6, x | -4, x ^ 5, 12 & x, m & x, m | m, ~x, ~m)), (x, mask))


def test_not_wraps_narrow_types():
    x8 = torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8)
    u8 = torch.tensor([0, 1, 128, 200, 255], dtype=torch.uint8)
    edges, _ = _ints()
    check_conversion(Fn(lambda a, b, c: (~a, ~b, ~c)), (x8, u8, edges))


def test_shifts_in_int32_including_out_of_range_amounts():
    edges, rand = _ints()
    x = torch.cat([edges, rand])[:, None]
    k = torch.tensor([-3, -1, 0, 1, 2, 7, 16, 29, 30, 31, 32, 33, 40], dtype=torch.int32)
    check_conversion(Fn(lambda x, k: (x << k, x >> k, x << 3, x >> 30)), (x, k))


def test_shifts_wrap_narrow_types_and_scalar_self():
    x8 = torch.tensor([[-128], [-100], [-1], [0], [5], [100], [127]], dtype=torch.int8)
    u8 = torch.tensor([[0], [1], [129], [255]], dtype=torch.uint8)
    k8 = torch.tensor([0, 1, 3, 7, 8, 9], dtype=torch.int8)
    k = torch.tensor([0, 1, 4, 28, 64, 70])  # int64 results that fit int32 (the program computes in int32)
    check_conversion(Fn(lambda a, b, kk, k: (a << kk, a >> kk, b << kk.to(torch.uint8), b >> kk.to(torch.uint8),
                                             torch.bitwise_left_shift(3, k), torch.bitwise_right_shift(-64, k))),
                     (x8, u8, k8, k))


def _nan_safe(t):
    return torch.nan_to_num(t, nan=-12345.0, posinf=math.inf, neginf=-math.inf)


SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, -0.75, 1.5, 2.0 ** 100, 2.0 ** 127, 3.4028234663852886e38,
           -3.4028234663852886e38, 2.0 ** -126, -2.0 ** -126, 2.0 ** -126 * 1.5, TINY, -TINY, 3 * TINY,
           2.0 ** -140 + TINY, 1.1754942e-38, 1e-30, 123.456, -7e20, 1 + 2.0 ** -23, 2 - 2.0 ** -23,
           math.inf, -math.inf, math.nan]


def test_frexp_special_values():
    x = torch.tensor(SPECIAL)
    x = torch.cat([x, torch.randn(64, generator=torch.Generator().manual_seed(1)) * 1e3])

    def fn(x):
        m, e = torch.frexp(x)
        return _nan_safe(m), e

    check_conversion(Fn(fn), (x,))


def test_nextafter_table():
    xs = torch.tensor(SPECIAL)
    x = xs[:, None].expand(-1, 8)
    y = torch.tensor([math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, math.nan, 2.0 ** -126])
    check_conversion(Fn(lambda x, y: (_nan_safe(torch.nextafter(x, y)),
                                      _nan_safe(torch.nextafter(x, x)))), (x, y), atol=0.0, rtol=0.0)


def test_float16_program():
    x = torch.tensor([0.0, -0.0, 1.0, -3.0, 0.375, 1000.0, -60000.0, 2.0 ** -14, 2.0 ** -20, math.inf])
    ints = torch.tensor([-70000, -5, 0, 9, 123456], dtype=torch.int32)

    def fn(x, i):
        m, e = torch.frexp(x)
        return m, e, i ^ 0x5555, i >> 2, ~i

    check_conversion(Fn(fn), (x, ints), precision="float16")


def test_nextafter_in_float16_moves_by_an_fp16_step():
    ep_fn = Fn(lambda x, y: torch.nextafter(x, y))
    x = torch.tensor([1.0, 1.0, 0.0, 65504.0, 2.0 ** -14])
    y = torch.tensor([2.0, 0.0, -1.0, math.inf, 0.0])
    got = torch_coreml.export(ep_fn, (x, y), compute_precision="float16", minimum_deployment_target="iOS17")(x, y)
    expected = torch.nextafter(x.half(), y.half()).float()
    assert torch.equal(got.float(), expected), (got, expected)


def test_refusals():
    ok, reason = try_lowering(aten.bitwise_left_shift.Tensor, (torch.empty(3), torch.empty(3)), {},
                              mil_target=Target.iOS17, float_dtype=dt.fp32)
    assert not ok and "floating-point" in reason
    ok, reason = try_lowering(aten.frexp.Tensor, (torch.zeros(3, dtype=torch.int64),), {},
                              mil_target=Target.iOS17, float_dtype=dt.fp32)
    assert not ok and "floats only" in reason


def test_max_pool2d_backward_sums_overlapping_windows():
    g = torch.Generator().manual_seed(2)
    x4 = torch.randn(2, 3, 7, 6, generator=g)
    x3 = torch.randn(2, 5, 5, generator=g)

    def fn(x4, x3):
        outs = []
        # Overlapping windows (stride < kernel) with padding and dilation; a flat 3-D input.
        for x, args in ((x4, ([3, 3], [1, 2], [1, 1], [1, 1], False)), (x4, ([2, 2], [2, 2], [0, 0], [2, 1], True)),
                        (x3, ([3, 3], [1, 1], [0, 0], [1, 1], False))):
            y, idx = aten.max_pool2d_with_indices.default(x, *args)
            outs.append(aten.max_pool2d_with_indices_backward.default(y * 2 + 1, x, *args, idx))
        return tuple(outs)

    check_conversion(Fn(fn), (x4, x3))
