"""Random ops and input mutation, end to end through a saved and reloaded package.

Random outputs cannot be compared with eager element by element, so these tests check what must hold
for every draw: value ranges and supports, masks holding only 0 and the dropout scale, integer ranges,
multinomial indices valid and distinct without replacement, and means / spreads of large samples
within loose bounds (at least 6 standard errors, so a correct lowering never fails by chance).
Deterministic cases (dropout in eval or with p = 0, fractional pooling with given samples, rrelu in
eval) are compared with eager exactly through `check_conversion`.

Input mutation: a model that changes an input in place (x.add_(1)) must leave the caller's tensor
with the same new value as eager, before and after save/load.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.export import Dim

import torch_coreml
from tests.lowering._check import Fn, check_conversion, r
from tests.oracle import assert_coremltools_accepts

aten = torch.ops.aten


def convert(model, inputs, *, precision="float32", target="iOS18", **options):
    """Convert, save, check with coremltools and reload: the module that runs the saved package."""
    cm = torch_coreml.export(model, inputs, compute_precision=precision, minimum_deployment_target=target,
                             **options)
    d = tempfile.mkdtemp(prefix="test_random_")
    path = cm.save(Path(d) / "model.mlpackage")
    assert_coremltools_accepts(path)
    loaded = torch_coreml.load(path, runtime="reference")
    weakref.finalize(loaded, shutil.rmtree, d, True)  # the package lives as long as its module
    return loaded


def run(model, *inputs, precision="float32"):
    return convert(model, inputs, precision=precision)(*inputs)


def assert_close_stat(value, expected, tol, what):
    assert abs(float(value) - expected) <= tol, f"{what}: {float(value):.4f}, expected {expected} +- {tol}"


# -- rand, randn, randint --------------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_rand_and_randn(precision):
    u, z = run(Fn(lambda x: (torch.rand(300, 200) + x * 0, torch.randn_like(x))), torch.zeros(300, 200),
               precision=precision)
    assert u.shape == z.shape == (300, 200) and u.dtype == z.dtype == torch.float32
    assert 0 <= u.min() and u.max() < 1
    assert_close_stat(u.mean(), 0.5, 0.01, "rand mean")
    assert_close_stat(u.var(), 1 / 12, 0.005, "rand variance")
    assert_close_stat(z.mean(), 0.0, 0.025, "randn mean")
    assert_close_stat(z.std(), 1.0, 0.02, "randn std")
    assert len(torch.unique(u)) > 1000  # really random, not one value


def test_rand_like_dynamic_batch():
    model = Fn(lambda x: torch.rand_like(x) * 2 - 1)
    x = r(4, 8)
    m = convert(model, (x,), dynamic_shapes=(({0: Dim("batch", min=2, max=64)},),))
    for batch in (2, 33):
        y = m(r(batch, 8))
        assert y.shape == (batch, 8) and -1 <= y.min() and y.max() < 1


def test_randint_ranges_and_dtypes():
    a, b, c = run(Fn(lambda x: (torch.randint(-3, 4, (5000,)), torch.randint_like(x, 7),
                                torch.randint(10, (50, 50), dtype=torch.float32))),
                  torch.zeros(4000, dtype=torch.int32))
    assert a.dtype == torch.int64 and b.dtype == torch.int32 and c.dtype == torch.float32
    assert set(a.unique().tolist()) == set(range(-3, 4))  # every value, and only those
    assert set(b.unique().tolist()) == set(range(7))
    assert torch.equal(c, c.floor()) and set(c.unique().tolist()) == set(map(float, range(10)))


def test_randint_run_time_bound():
    # The upper bound is a symbolic size: drawn in fp32 and scaled at run time.
    model = Fn(lambda x: torch.randint(0, x.shape[0], (2000,)))
    m = convert(model, (r(6, 2),), dynamic_shapes=(({0: Dim("n", min=2, max=100)},),))
    for n in (3, 50):
        y = m(r(n, 2))
        assert y.dtype == torch.int64 and set(y.unique().tolist()) == set(range(n))


def test_randint_refuses_a_range_beyond_fp32():
    with pytest.raises(torch_coreml.UnsupportedOpsError, match="2\\^24"):
        torch_coreml.export(Fn(lambda x: x + torch.randint(0, 2 ** 30, (3,))), (torch.zeros(3, dtype=torch.int64),))


# -- bernoulli, normal -----------------------------------------------------------------------------

def test_bernoulli_constant_and_tensor_probability():
    p = torch.tensor([0.0, 1.0, 0.25]).repeat(4000, 1)

    def sample(x, probs):
        return torch.bernoulli(x, 0.3), torch.bernoulli(probs), x.clone().bernoulli_(probs)  # p tensor

    a, b, c = run(Fn(sample), torch.zeros(4000, 3), p)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert_close_stat(a.mean(), 0.3, 0.03, "bernoulli(p=0.3) mean")
    for draws in (b, c):
        assert draws[:, 0].sum() == 0 and draws[:, 1].min() == 1
        assert_close_stat(draws[:, 2].mean(), 0.25, 0.05, "bernoulli(p tensor) mean")


def test_normal_overloads():
    mean = torch.tensor([[0.0], [10.0]])
    std = torch.full((1, 4000), 2.0)

    def sample(mean, std):
        return (torch.normal(mean, std), torch.normal(mean, 0.5), torch.normal(-1.0, std),
                torch.normal(3.0, 0.25, size=(100, 100)))

    a, b, c, d = run(Fn(sample), mean, std)
    assert a.shape == b.shape[:1] + (4000,) and b.shape == (2, 1) and c.shape == (1, 4000)
    for row, mu in enumerate((0.0, 10.0)):
        assert_close_stat(a[row].mean(), mu, 0.2, "normal(mean, std) mean")
        assert_close_stat(a[row].std(), 2.0, 0.15, "normal(mean, std) std")
    assert_close_stat(c.mean(), -1.0, 0.2, "normal(float, std) mean")
    assert_close_stat(d.mean(), 3.0, 0.015, "normal(float, float) mean")
    assert_close_stat(d.std(), 0.25, 0.012, "normal(float, float) std")


# -- in-place distributions: a mutated input -------------------------------------------------------

def _in_place(fn):
    def sample(x):
        y = fn(x)
        return y * 1  # a distinct output; x itself changes too
    return Fn(sample)


IN_PLACE = {
    "uniform_": (lambda x: x.uniform_(-2.0, 3.0),
                 lambda y: -2 <= y.min() and y.max() < 3 and abs(y.mean() - 0.5) < 0.09),
    "normal_": (lambda x: x.normal_(2.0, 0.5), lambda y: abs(y.mean() - 2) < 0.03 and abs(y.std() - 0.5) < 0.025),
    "exponential_": (lambda x: x.exponential_(2.0), lambda y: y.min() >= 0 and abs(y.mean() - 0.5) < 0.03),
    "cauchy_": (lambda x: x.cauchy_(1.0, 0.5),  # median 1, half the mass within one scale of it
                lambda y: abs(y.median() - 1.0) < 0.05 and abs(((y - 1).abs() < 0.5).float().mean() - 0.5) < 0.03),
    "log_normal_": (lambda x: x.log_normal_(0.5, 0.4),
                    lambda y: y.min() > 0 and abs(y.log().mean() - 0.5) < 0.025 and abs(y.log().std() - 0.4) < 0.02),
    "geometric_": (lambda x: x.geometric_(0.3),
                   lambda y: y.min() >= 1 and torch.equal(y, y.floor()) and abs(y.mean() - 1 / 0.3) < 0.17),
}


def test_in_place_distributions_write_back():
    # One program for all six: each input is overwritten with draws of its distribution.
    model = Fn(lambda *xs: tuple(fn(x) * 1 for x, (fn, _) in zip(xs, IN_PLACE.values())))
    m = convert(model, tuple(torch.zeros(100, 100) for _ in IN_PLACE))
    xs = [torch.zeros(100, 100) for _ in IN_PLACE]
    ys = m(*xs)
    for name, x, y, (_, check) in zip(IN_PLACE, xs, ys, IN_PLACE.values()):
        assert torch.equal(x, y), f"{name}: the input does not hold the drawn values"
        assert check(y), f"{name}: the draws do not look like the distribution"


def test_geometric_on_integers_and_fp16():
    m = convert(_in_place(lambda x: x.geometric_(0.5)), (torch.zeros(200, 100, dtype=torch.int64),),
                precision="float16")
    x = torch.zeros(200, 100, dtype=torch.int64)
    y = m(x)
    assert y.dtype == x.dtype == torch.int64 and torch.equal(x, y) and y.min() >= 1
    assert abs(y.float().mean() - 2.0) < 0.06


# -- multinomial -----------------------------------------------------------------------------------

def test_multinomial_with_replacement():
    probs = torch.tensor([[1.0, 0.0, 6.0, 3.0], [0.0, 0.0, 1.0, 0.0]])  # unnormalized weights
    picks = run(Fn(lambda p: torch.multinomial(p, 5000, replacement=True)), probs)
    assert picks.dtype == torch.int64 and picks.shape == (2, 5000)
    counts = torch.bincount(picks[0], minlength=4).float() / 5000
    assert counts[1] == 0 and torch.allclose(counts, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.045)
    assert (picks[1] == 2).all()


def test_multinomial_without_replacement():
    weights = torch.tensor([5.0, 0.0, 1.0, 2.0, 0.0, 2.0]).repeat(3000, 1)
    picks = run(Fn(lambda p: (torch.multinomial(p, 4), torch.multinomial(p[0], 1))), weights)[0]
    assert picks.shape == (3000, 4)
    # Exactly the 4 categories with weight, each once per row.
    assert torch.equal(picks.sort(dim=1).values, torch.tensor([0, 2, 3, 5]).repeat(3000, 1))
    first = torch.bincount(picks[:, 0], minlength=6).float() / 3000
    assert torch.allclose(first, torch.tensor([0.5, 0.0, 0.1, 0.2, 0.0, 0.2]), atol=0.06)


# -- dropout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_native_dropout_training(precision):
    x = torch.rand(200, 100) + 0.5
    out, mask = run(Fn(lambda x: aten.native_dropout(x, 0.3, True)), x, precision=precision)
    assert mask.dtype == torch.bool
    tol = 1e-6 if precision == "float32" else 2e-3
    torch.testing.assert_close(out, x * mask / 0.7, rtol=tol, atol=tol)  # only 0 and x / (1 - p)
    assert_close_stat(1 - mask.float().mean(), 0.3, 0.02, "dropped fraction")


def test_dropout_functional_training_values():
    y = run(Fn(lambda x: F.dropout(x, 0.5, training=True)), torch.ones(100, 100))
    assert set(y.unique().tolist()) == {0.0, 2.0}


@pytest.mark.parametrize("p, train", [(0.0, True), (0.4, False), (1.0, True)])
def test_native_dropout_deterministic_cases(p, train):
    # Eval mode and p == 0 are the identity with an all-true mask; p == 1 drops everything.
    check_conversion(Fn(lambda x: aten.native_dropout(x, p, train)), (r(3, 5),), target="iOS18")


def test_attention_with_zero_dropout_is_exact():
    q, k, v = r(2, 3, 4, 8), r(2, 3, 6, 8), r(2, 3, 6, 8)
    check_conversion(Fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=0.0)), (q, k, v),
                     target="iOS18")
    mha = torch.nn.MultiheadAttention(8, 2, dropout=0.0)
    x = r(5, 2, 8)

    def attention(x):
        return F.multi_head_attention_forward(x, x, x, 8, 2, mha.in_proj_weight, mha.in_proj_bias, None, None,
                                              False, 0.0, mha.out_proj.weight, mha.out_proj.bias,
                                              training=True, need_weights=False)[0]

    check_conversion(Fn(attention), (x,), target="iOS18")


# -- rrelu -----------------------------------------------------------------------------------------

def test_rrelu_training_slopes():
    x = torch.linspace(-3, 3, 20000).reshape(100, 200)
    out, noise = run(Fn(lambda x: aten.rrelu_with_noise_functional(x, torch.empty_like(x), 0.1, 0.3, True)), x)
    negative = x <= 0
    assert torch.equal(out[~negative], x[~negative]) and (noise[~negative] == 1).all()
    slopes = noise[negative]
    assert 0.1 <= slopes.min() and slopes.max() < 0.3
    assert_close_stat(slopes.mean(), 0.2, 0.005, "rrelu slope mean")
    torch.testing.assert_close(out, x * noise)


def test_rrelu_eval_is_exact():
    check_conversion(Fn(lambda x: F.rrelu(x, 0.1, 0.3, training=False)), (r(4, 5),), target="iOS18")
    check_conversion(Fn(lambda x: aten.rrelu_with_noise_functional(x, torch.ones_like(x), 0.1, 0.3, False)[0]),
                     (r(4, 5),), target="iOS18")


# -- fractional max pooling ------------------------------------------------------------------------

@pytest.mark.parametrize("nd, shape, kernel, out", [
    (2, (2, 3, 9, 11), [3, 2], [4, 5]),
    (2, (3, 7, 6), [2, 2], [3, 1]),  # unbatched, one output column
    (3, (1, 2, 6, 5, 7), [2, 2, 3], [3, 2, 4]),
])
def test_fractional_max_pool_given_samples_is_exact(nd, shape, kernel, out):
    pool = aten.fractional_max_pool2d if nd == 2 else aten.fractional_max_pool3d
    torch.manual_seed(nd)
    x = r(*shape)
    planes = (shape[0] if len(shape) == nd + 2 else 1, shape[-nd - 1])
    samples = torch.rand(*planes, nd)
    check_conversion(Fn(lambda x, s: pool(x, kernel, out, s)), (x, samples), target="iOS18")


def test_fractional_max_pool_ties_and_nan_follow_aten():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 2:6, 2:6] = 1.0  # ties: the first maximum in row-major order wins
    x[0, 0, 6, 1] = float("nan")  # a NaN wins its window
    samples = torch.tensor([[[0.3, 0.7]]])
    model = Fn(lambda x, s: aten.fractional_max_pool2d(x, [3, 3], [4, 4], s))
    (values, indices), (expected_values, expected_indices) = run(model, x, samples), model(x, samples)
    torch.testing.assert_close(values, expected_values, equal_nan=True)
    assert torch.equal(indices, expected_indices)


def test_fractional_max_pool_random_regions():
    x = r(2, 3, 10, 10)
    values, indices = run(Fn(lambda x: F.fractional_max_pool2d(x, 3, output_size=4, return_indices=True)), x)
    assert values.shape == indices.shape == (2, 3, 4, 4) and indices.dtype == torch.int64
    # Every output is the input element its index names, and a window's maximum is at least its corner.
    assert torch.equal(values, x.flatten(2).gather(2, indices.flatten(2)).view_as(values))
    assert (indices >= 0).all() and (indices < 100).all()


# -- input mutation --------------------------------------------------------------------------------

class AddInPlace(torch.nn.Module):
    def forward(self, x, y):
        x.add_(1)
        return x * y, y - 1


class UpdateTwo(torch.nn.Module):
    """Mutates two inputs, one of them int64, and returns one tensor."""

    def forward(self, counts, x, scale):
        counts.add_(2)
        scale.mul_(x.mean())
        return x * scale


def _check_mutation(model, inputs, loaded):
    expected_inputs = [t.clone() for t in inputs]
    expected = model(*expected_inputs)
    got_inputs = [t.clone() for t in inputs]
    got = loaded(*got_inputs)
    for e, g in zip(torch.utils._pytree.tree_leaves(expected), torch.utils._pytree.tree_leaves(got)):
        torch.testing.assert_close(g, e)
    for e, g in zip(expected_inputs, got_inputs):
        assert g.dtype == e.dtype
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("model, inputs", [
    (AddInPlace(), (r(3, 4), r(3, 4))),
    (UpdateTwo(), (torch.arange(4), r(2, 4), r(4))),
])
def test_input_mutation_writes_back_before_and_after_save(model, inputs):
    cm = torch_coreml.export(model, tuple(t.clone() for t in inputs), compute_precision="float32")
    _check_mutation(model, inputs, cm)
    with tempfile.TemporaryDirectory() as d:
        path = cm.save(Path(d) / "model.mlpackage")
        assert_coremltools_accepts(path)
        _check_mutation(model, inputs, torch_coreml.load(path, runtime="reference"))


def test_input_mutation_names_and_verify():
    x, y = r(3, 4), r(3, 4)
    cm = torch_coreml.export(AddInPlace(), (x.clone(), y), inputs=["a", "b"], outputs=["prod", "diff"])
    assert [f.name for f in cm.interface.outputs] == ["a_updated", "prod", "diff"]
    before = x.clone()
    errors = cm.verify(x, y)
    assert torch.equal(x, before), "verify must not change the caller's inputs"
    assert [(e.kind, e.index) for e in errors] == [("output", 0), ("output", 1), ("input", 0)]
    assert all(e.max_abs < 1e-2 for e in errors)  # fp16 program
    with pytest.raises(torch_coreml.ConversionError, match="output name"):
        torch_coreml.export(AddInPlace(), (x.clone(), y), outputs=["a", "b", "c"])


def test_buffer_mutation_is_still_refused():
    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("calls", torch.zeros(1))

        def forward(self, x):
            self.calls.add_(1)
            return x + self.calls

    with pytest.raises(torch_coreml.ConversionError, match="mutates buffer"):
        torch_coreml.export(Counter(), (r(2),))
