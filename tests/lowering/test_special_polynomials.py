"""torch.special's orthogonal polynomials: torch's special cases, the closed forms, the recurrence as a
while_loop (tensor n) or unrolled (known n), scalar overloads, integer inputs, fp16 and dynamic shapes."""

from __future__ import annotations

import pytest
import torch

from tests.lowering._check import Fn, check_conversion

S = torch.special

CHEBYSHEV = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
             "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
             "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w"]
OTHERS = ["hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p"]


def _grid(x_values, n_values):
    x = torch.tensor(x_values, dtype=torch.float32)
    n = torch.tensor(n_values, dtype=torch.float32)
    return x[:, None].expand(-1, len(n_values)).contiguous(), n[None, :].expand(len(x_values), -1).contiguous()


# Every branch torch takes: the ends (+-1, and 0 / 1 for the shifted kinds), just inside them (where the
# V and W closed forms degenerate), |x| > 1, n negative, fractional (truncated), NaN and inf (count as
# negative), 0, 1, at and above each closed-form threshold, and long enough for the loop.
X = [1.0, -1.0, 0.0, -0.0, 0.5, 1 - 6e-8, -1 + 6e-8, 1 + 1.2e-7, 0.999, -0.3, 0.25, 1.7, -2.5]
N = [-3.0, -0.5, 0.0, 0.9, 1.0, 2.0, 3.7, 5.0, 6.0, 7.0, 8.0, 9.0, 12.0, 25.0, float("nan"), float("inf"),
     -float("inf")]


@pytest.mark.parametrize("name", CHEBYSHEV + OTHERS)
def test_tensor_degree_matches_torch_branch_by_branch(name):
    fn = getattr(S, name)
    x, n = _grid(X, N)
    cm = check_conversion(Fn(fn), (x, n))
    assert "while_loop(" in str(cm.program)  # n is a run-time input: its length is data dependent


def test_broadcast_degrees_and_values_outside_the_interval():
    torch.manual_seed(0)
    x = torch.rand(6, 1) * 4 - 2
    n = torch.randint(-1, 16, (1, 7)).float()
    check_conversion(Fn(S.legendre_polynomial_p), (x, n))
    check_conversion(Fn(S.laguerre_polynomial_l), (x * 3, n))


@pytest.mark.parametrize("name,n", [("chebyshev_polynomial_t", 9), ("chebyshev_polynomial_u", 4),
                                    ("shifted_chebyshev_polynomial_w", 5.5), ("hermite_polynomial_he", 40),
                                    ("laguerre_polynomial_l", -2)])
def test_scalar_degree(name, n):
    fn = getattr(S, name)
    x = torch.tensor([-1.0, -0.7, 0.0, 0.2, 0.5, 1.0, 1.5, -1.3])
    cm = check_conversion(Fn(lambda a: fn(a, n)), (x,))
    # A known small degree is unrolled; 40 steps are worth a loop.
    assert ("while_loop(" in str(cm.program)) == (n == 40)


def test_scalar_x():
    n = torch.tensor([0.0, 1.0, 2.0, 5.0, 9.0, 12.0, -1.0])
    check_conversion(Fn(lambda m: S.chebyshev_polynomial_w(0.3, m)), (n,))


def test_constant_degree_tensor_is_unrolled_per_element():
    class WithDegrees(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", torch.tensor([0.0, 1.0, 3.0, 8.0, 12.0, -1.0]))

        def forward(self, x):
            return S.chebyshev_polynomial_v(x, self.n)

    cm = check_conversion(WithDegrees(), (torch.tensor([0.1, -0.9, 1.0, -1.0, 0.6, 2.0]),))
    assert "while_loop(" not in str(cm.program)


def test_integer_inputs_compute_in_float():
    x = torch.tensor([[-2], [-1], [0], [1], [3]])
    n = torch.tensor([0, 1, 2, 5, 7, -1])
    check_conversion(Fn(S.hermite_polynomial_h), (x, n))
    check_conversion(Fn(S.shifted_chebyshev_polynomial_u), (x, n))


@pytest.mark.parametrize("name", ["chebyshev_polynomial_t", "legendre_polynomial_p"])
def test_float16_program(name):
    torch.manual_seed(1)
    x = torch.rand(24) * 2 - 1
    n = torch.randint(0, 12, (24,)).float()
    check_conversion(Fn(getattr(S, name)), (x, n), precision="float16")


def test_dynamic_length():
    torch.manual_seed(2)
    d = torch.export.Dim("d", min=2, max=64)
    x, n = torch.randn(8), torch.randint(-1, 10, (8,)).float()
    check_conversion(Fn(S.hermite_polynomial_he), (x, n), dynamic_shapes=(({0: d}, {0: d}),),
                     run_inputs=[(torch.randn(13), torch.randint(-1, 10, (13,)).float())])


def test_hermite_degrees_above_torch_limit_are_nan():
    def flagged(x, n):  # NaN cannot be compared element by element: mark it with a sentinel
        y = S.hermite_polynomial_h(x, n)
        return torch.where(torch.isnan(y), torch.full_like(y, 7.0), y)

    check_conversion(Fn(flagged), (torch.tensor([0.5, -0.2, 0.1, 0.3]), torch.tensor([5.0, 129.0, 1000.0, 3e9])))
