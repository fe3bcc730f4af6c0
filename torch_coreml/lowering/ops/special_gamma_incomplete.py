"""The regularized incomplete gamma functions P(a, x) (igamma) and Q(a, x) = 1 - P(a, x) (igammac).

torch (after SciPy and Cephes) picks one of four methods per element; so does this lowering, with
torch's region boundaries, each method unrolled to a fixed length that float32 has converged by:

- the power series P = x^a e^-x / Gamma(a + 1) sum_n x^n / ((a + 1) ... (a + n)) (DLMF 8.11.4) where
  x is below a (or small): its terms shrink by x / (a + n), so 48 terms are enough both for a <= 20,
  x <= a (29 needed at a = x = 20) and for a > 20, x <= 0.7 a (at most 44, for any a);
- Legendre's continued fraction for Q (DLMF 8.9.2, modified Lentz) where x > max(a, 1.1): at most 20
  steps for a <= 20 (the slowest near x = 1.1) and 10 for x >= 1.3 a; 24 are run;
- for x <= 1.1 and a small, Q = -expm1(a log x - lgamma(1 + a)) - x^a / Gamma(a) sum_n (-x)^n /
  (n! (a + n)) (DLMF 8.7.3), which avoids 1 - P when P is near 1: 16 terms (1.1^16 / 16! < 1e-13);
- Temme's uniform expansion (DLMF 8.12.3/4) for a > 20 and x within 30% of a: P or Q is
  erfc(+-eta sqrt(a / 2)) / 2 -+ e^(-a eta^2 / 2) / sqrt(2 pi a) sum_k C_k(eta) a^-k, with
  eta^2 / 2 = sigma - log(1 + sigma), sigma = (x - a) / a. Four C_k of eight terms each (from
  Temme's coefficient table, as in torch) are within 3e-9 of the full expansion there.
torch uses the expansion for a > 200 only within 4.5 / sqrt(a) of a and sums the series (up to 2000
terms) in the rest of that 30% band; here the expansion covers the whole band for every a > 20,
where a fixed-length series would not converge. Both agree to float32 precision.

The factor x^a e^-x / Gamma(a) is computed as exp(a log x - x - lgamma(a)) for a < 3 and, above, in
Stirling's form exp(-a (sigma - log1p(sigma)) - mu(a)) sqrt(a / (2 pi)), mu being Stirling's series
for lgamma: this avoids the cancellation between a log x, x and lgamma(a), each far larger than their
sum when a is large. Everything is fp32 (see `special_gamma`).
"""

from __future__ import annotations

import math

import torch

from ..registry import lowering
from .special_gamma import F, erfc_of, float_result, fp32, lgamma_1p, lgamma_of, where

aten = torch.ops.aten

_SERIES_TERMS = 48
_FRACTION_STEPS = 24
_SMALL_X_TERMS = 16
_TINY = 1e-30  # Lentz's stand-in for a zero denominator

# Temme's C_k(eta) = sum_n d[k][n] eta^n, k < 4, n < 8 (DLMF 8.12.8; SciPy's table, which torch uses).
_TEMME = (
    (-3.3333333333333333e-1, 8.3333333333333333e-2, -1.4814814814814815e-2, 1.1574074074074074e-3,
     3.527336860670194e-4, -1.7875514403292181e-4, 3.9192631785224378e-5, -2.1854485106799922e-6),
    (-1.8518518518518519e-3, -3.4722222222222222e-3, 2.6455026455026455e-3, -9.9022633744855967e-4,
     2.0576131687242798e-4, -4.0187757201646091e-7, -1.8098550334489978e-5, 7.6491609160811101e-6),
    (4.1335978835978836e-3, -2.6813271604938272e-3, 7.7160493827160494e-4, 2.0093878600823045e-6,
     -1.0736653226365161e-4, 5.2923448829120125e-5, -1.2760635188618728e-5, 3.4235787340961381e-8),
    (6.4943415637860082e-4, 2.2947209362139918e-4, -4.6918949439525571e-4, 2.6772063206283885e-4,
     -7.5618016718839764e-5, -2.3965051138672967e-7, 1.1082654115347302e-5, -5.6749528269915966e-6),
)
# Stirling: lgamma(a) = (a - 1/2) log a - a + log(2 pi) / 2 + mu(a), mu(a) = sum B_2k / (2k (2k-1) a^(2k-1));
# five terms leave less than 1e-8 from a = 3 on.
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188)


def _half_eta_squared(sigma: F, ratio: F) -> F:
    """sigma - log(1 + sigma) >= 0 with 1 + sigma = ratio = x / a, to full relative precision also
    for small sigma, where the two terms cancel: there, with u = sigma / (2 + sigma), it is
    2 u^2 / (1 - u) - 2 (u^3/3 + u^5/5 + ...) (|u| < 0.2 for |sigma| < 0.33, so terms up to u^11
    leave 1e-8 relative). Elsewhere log(x / a), not log1p(sigma): 1 + sigma would round away the
    digits of a small x / a."""
    u = sigma / (sigma + 2.0)
    u2 = u * u
    odd = u2 * (1.0 / 11) + 1.0 / 9
    for k in (7, 5, 3):
        odd = odd * u2 + 1.0 / k
    small = 2.0 * u2 / (1.0 - u) - 2.0 * u * u2 * odd
    return where(sigma.abs() < 0.33, small, sigma - ratio.log())


def _prefactor(a: F, x: F, h: F) -> F:
    """x^a e^-x / Gamma(a), with h = sigma - log(1 + sigma)."""
    direct = (a * x.log() - x - lgamma_of(a)).exp()
    inv_a2 = 1.0 / (a * a)
    mu = _STIRLING[-1]
    for c in reversed(_STIRLING[:-1]):
        mu = inv_a2 * mu + c
    mu = mu / a
    stirling = (-(a * h) - mu).exp() * (a * (1.0 / (2.0 * math.pi))).sqrt()
    return where(a < 3.0, direct, stirling)


def _lower_series(a: F, x: F, prefactor: F) -> F:
    """P by the power series."""
    term = x / (a + 1.0)
    terms = [term]
    for n in range(2, _SERIES_TERMS):
        term = term * (x / (a + float(n)))
        terms.append(term)
    total = terms[-1]
    for t in reversed(terms[:-1]):
        total = total + t
    return (total + 1.0) * prefactor / a


def _nonzero(v: F) -> F:
    return where(v.abs() < _TINY, _TINY, v)


def _upper_fraction(a: F, x: F, prefactor: F) -> F:
    """Q by the continued fraction 1 / (x + 1 - a - 1 (1 - a) / (x + 3 - a - 2 (2 - a) / ...))."""
    b = x + 1.0 - a
    c = fp32(a.ctx, 1.0 / _TINY)
    d = 1.0 / _nonzero(b)
    h = d
    for i in range(1, _FRACTION_STEPS + 1):
        an = (a - float(i)) * float(i)
        b = b + 2.0
        d = 1.0 / _nonzero(an * d + b)
        c = _nonzero(b + an / c)
        h = h * (d * c)
    return h * prefactor


def _upper_small_x(a: F, x: F) -> F:
    """Q for x <= 1.1 and a <= 1.21, where torch picks this series."""
    fac = -x
    terms = [fac / (a + 1.0)]
    for n in range(2, _SMALL_X_TERMS + 1):
        fac = fac * (-x / float(n))
        terms.append(fac / (a + float(n)))
    total = terms[-1]
    for t in reversed(terms[:-1]):
        total = total + t
    e = a * x.log() - lgamma_1p(a)  # log(x^a / Gamma(1 + a))
    return -e.expm1() - a * e.exp() * total  # x^a / Gamma(a) = a x^a / Gamma(1 + a)


def _temme(a: F, sigma: F, h: F, lower: bool) -> F:
    """P (lower) or Q by Temme's expansion."""
    eta = (2.0 * h).sqrt()
    eta = where(sigma < 0.0, -eta, eta)
    total = None
    for k in reversed(range(len(_TEMME))):  # sum_k C_k a^-k by Horner in 1/a
        ck = eta * _TEMME[k][-1] + _TEMME[k][-2]
        for c in reversed(_TEMME[k][:-2]):
            ck = ck * eta + c
        total = ck if total is None else total / a + ck
    sign = -1.0 if lower else 1.0
    tail = (-(a * h)).exp() * total / (a * (2.0 * math.pi)).sqrt()
    return 0.5 * erfc_of(eta * (a * 0.5).sqrt() * sign) + tail * sign


def _incomplete_gamma(a: F, x: F, lower: bool) -> F:
    sigma = (x - a) / a
    h = _half_eta_squared(sigma, x / a)
    prefactor = _prefactor(a, x, h)
    series = _lower_series(a, x, prefactor)
    fraction = _upper_fraction(a, x, prefactor)
    small_x = _upper_small_x(a, x)
    temme = _temme(a, sigma, h, lower)
    band = sigma.abs()
    use_temme = ((a > 20.0) & (band < 0.3)) | ((a > 200.0) & (band < 4.5 / a.sqrt()))
    if lower:
        upper = where(x > 1.1, fraction, small_x)
        result = where((x > 1.0) & (x > a), 1.0 - upper, series)
    else:
        small_a = where(x <= 0.5, a > -0.4 / x.log(), a > x * 1.1)
        near_zero = where(small_a, 1.0 - series, small_x)
        result = where(x > 1.1, where(x < a, 1.0 - series, fraction), near_zero)
    result = where(use_temme, temme, result)
    # torch's (SciPy's) boundary values, lowest priority first
    at_zero, at_inf = (0.0, 1.0) if lower else (1.0, 0.0)
    result = where(x.eq(math.inf), at_inf, result)
    result = where(a.eq(math.inf), where(x.eq(math.inf), math.nan, at_zero), result)
    result = where(x.eq(0.0), at_zero, result)
    result = where(a.eq(0.0), where(x > 0.0, at_inf, math.nan), result)
    return where((x < 0.0) | (a < 0.0), math.nan, result)


@lowering(aten.igamma.default)
def igamma(ctx, self, other):
    """igamma(Tensor self, Tensor other) -> Tensor"""
    return float_result(ctx, _incomplete_gamma(fp32(ctx, self), fp32(ctx, other), lower=True))


@lowering(aten.igammac.default)
def igammac(ctx, self, other):
    """igammac(Tensor self, Tensor other) -> Tensor"""
    return float_result(ctx, _incomplete_gamma(fp32(ctx, self), fp32(ctx, other), lower=False))
