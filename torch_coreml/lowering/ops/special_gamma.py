"""Gamma-family and error-function special functions, built from MIL elementwise ops.

MIL has none of them, so each lowering evaluates a classical method elementwise: recurrences that
move the argument to where a series converges, reflection formulas for negative arguments,
Euler-Maclaurin summation for the Hurwitz zeta function, Lanczos' approximation for lgamma, rational
approximations (Cody's for erfcx, Cephes' for ndtri), Newton steps for erfinv. Every piece is
computed on the whole tensor and `select` keeps, per element, the one that is valid there; a discarded
piece may hold inf or NaN, which `select` never lets through. Where torch's own float32 kernel is an
explicit formula (trigamma, ndtri, erfcx for negative x, erfinv's first guess) the same formula is
used, so the result also agrees where float32 rounding dominates. Poles, infinities and NaN follow torch.

Iterative methods run a fixed number of steps; each count says why it is enough in float32. The
incomplete gamma functions, which need more machinery, are in `special_gamma_incomplete.py`.

All arithmetic is fp32, in fp16 programs too: x^-s, the Lanczos sum and exp(x^2) leave fp16's range
(65504) long before the results do, and torch evaluates its half-precision kernels in float as well.
Integer and bool inputs compute in float, as torch does.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from ..registry import lowering

aten = torch.ops.aten


from ._formula import F, f32, float_result, fp32, horner, special, where


_PI = math.pi
_INF = math.inf
_NAN = math.nan


# -- gamma and digamma ---------------------------------------------------------------------------------
# log Gamma(x) for x >= 1/2 in two pieces. Below 9/2, the Taylor series around 2,
# lgamma(2 + t) = (1 - gamma) t + sum_k>=2 (-1)^k (zeta(k) - 1) / k t^k, after the recurrence has moved
# x into [3/2, 5/2): it keeps full relative precision at lgamma's zeros 1 and 2, and its terms fall
# like (t / 2)^k, so 14 reach 1e-9 at |t| = 1/2 (the coefficients come from torch's float64 zeta,
# once). From 9/2 on, Lanczos' approximation (g = 7, nine terms; Godfrey's coefficients):
# Gamma(x) = sqrt(2 pi) t^(x - 1/2) e^-t A(x), t = x + g - 1/2, A(x) = c0 + sum c_k / (x + k - 1),
# accurate to 1e-13 itself; the float32 rounding of its sum of logs is all that remains.

_EULER_GAMMA = 0.57721566490153286061
_LGAMMA_NEAR_2 = [float((-1) ** k * torch.special.zeta(torch.tensor(float(k), dtype=torch.float64),
                                                       torch.tensor(2.0, dtype=torch.float64)) / k)
                  for k in range(14, 1, -1)] + [1.0 - _EULER_GAMMA, 0.0]
_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)


def _lgamma_lanczos(x: F) -> F:
    """log Gamma(x) for x >= 0.5."""
    last = len(_LANCZOS) - 1
    series = _LANCZOS[last] / (x + float(last - 1))
    for k in range(last - 1, 0, -1):  # smallest terms first
        series = series + _LANCZOS[k] / (x + float(k - 1))
    series = series + _LANCZOS[0]
    t = x + (_LANCZOS_G - 0.5)
    return (x - 0.5) * t.log() - t + (series.log() + 0.5 * math.log(2 * _PI))


def lgamma_2p(t: F) -> F:
    """log Gamma(2 + t) for |t| <= 1/2, to full relative precision near t = 0."""
    return horner(t, _LGAMMA_NEAR_2)


def lgamma_1p(t: F) -> F:
    """log Gamma(1 + t) for -1/2 <= t <= 3/2, without rounding 1 + t (exact near t = 0)."""
    return where(t < 0.5, lgamma_2p(t) - t.log1p(), lgamma_2p(t - 1.0))


def _lgamma_right(x: F) -> F:
    """log Gamma(x) for x >= 1/2: the series around 2 after shifting x by k = 1..4 into
    [3/2, 5/2) (x - k is exact there), Lanczos from 9/2 on."""
    k = where(x < 1.5, 1.0, where(x < 2.5, 2.0, where(x < 3.5, 3.0, 4.0)))
    # Gamma(x) = Gamma(2 + t) / x for k = 1, and Gamma(2 + t) (x - 1) ... (x - k + 2) for k > 2.
    shift = where(x < 1.5, -x.log(), where(x < 2.5, 0.0, where(x < 3.5, (x - 1.0).log(),
                                                                   ((x - 1.0) * (x - 2.0)).log())))
    near = lgamma_2p(x - k) + shift
    return where(x < 4.5, near, _lgamma_lanczos(x))


def _sin_pi(x: F) -> F:
    """|sin(pi x)| without the rounding of pi * x: reduce x to [-1/2, 1/2] first (exact)."""
    return (_PI * (x - x.round())).sin().abs()


def _cot_pi(x: F) -> F:
    """cot(pi x), accurate near the poles and near the zeros: reduce x to r in [-1/2, 1/2] (exact);
    where |r| >= 1/4 use cot(pi r) = tan(pi (1/2 - |r|)) with sign(r), so that a half-integer x gives
    0, not the 4e-8 that tan of float32's pi / 2 would."""
    r = x - x.round()
    a = r.abs()
    by_tan = 1.0 / (_PI * r).tan()
    shifted = (_PI * (0.5 - a)).tan()
    return where(a < 0.25, by_tan, where(r < 0.0, -shifted, shifted))


def lgamma_of(x: F) -> F:
    """log|Gamma(x)| for every x: `_lgamma_right` from 1/2 up, the reflection formula below."""
    reflect = x < 0.5
    right = _lgamma_right(where(reflect, 1.0 - x, x))
    # Gamma(x) Gamma(1 - x) = pi / sin(pi x); sin is 0 at the poles x = 0, -1, ..., giving +inf.
    left = (math.log(_PI) - _sin_pi(x).log()) - right
    return where(x.abs().eq(_INF), _INF, where(reflect, left, right))


@special(aten.lgamma.default)
def lgamma(x):
    """lgamma(Tensor self) -> Tensor"""
    return lgamma_of(x)


# torch's digamma: step x up to 10 or beyond with psi(x) = psi(x + 1) - 1/x, then the asymptotic
# series psi(x) ~ log x - 1/(2x) - sum B_2k / (2k x^2k), whose 7 terms at x >= 10 are exact to 1e-13.
_DIGAMMA_SHIFT = 10
_DIGAMMA_SERIES = (8.33333333333333333333e-2, -2.10927960927960927961e-2, 7.57575757575757575758e-3,
                   -4.16666666666666666667e-3, 3.96825396825396825397e-3, -8.33333333333333333333e-3,
                   8.33333333333333333333e-2)


def _digamma_positive(x: F) -> F:
    """psi(x) for x > 0 (inf gives inf)."""
    steps = where(x < float(_DIGAMMA_SHIFT), (float(_DIGAMMA_SHIFT) - x).ceil(), 0.0)  # k: x + k < 10
    terms = [where(steps > float(k), 1.0 / (x + float(k)), 0.0) for k in range(_DIGAMMA_SHIFT)]
    recurrence = terms[-1]
    for term in reversed(terms[:-1]):  # smallest first
        recurrence = recurrence + term
    w = x + steps
    z = 1.0 / (w * w)
    tail = z * horner(z, _DIGAMMA_SERIES)
    return w.log() - 0.5 / w - tail - recurrence


def digamma_of(x: F) -> F:
    negative = x < 0.0
    positive = _digamma_positive(where(negative, 1.0 - x, x))
    reflected = positive - _PI * _cot_pi(x)  # psi(1 - x) - psi(x) = pi cot(pi x)
    result = where(negative, reflected, positive)
    result = where(negative & x.is_integer(), _NAN, result)  # the poles, and -inf
    return where(x.eq(0.0), -1.0 / x, result)  # -inf at +0, +inf at -0


@special(aten.digamma.default)
def digamma(x):
    """digamma(Tensor self) -> Tensor"""
    return digamma_of(x)


def _trigamma(x: F) -> F:
    """torch's float32 trigamma, operation for operation: reflection below 1/2 (with sin(pi * x) as
    float32 computes it, so the poles come out large but finite, as in torch), six recurrence steps,
    then the asymptotic series, exact to float32 from x = 6 on."""
    reflect = x < 0.5
    pi = f32(_PI)
    sin = (x * pi).sin()
    pole_part = -f32(pi * pi) / (sin * sin)
    u = where(reflect, 1.0 - x, x)
    total = 1.0 / (u * u)
    for i in range(1, 6):
        v = u + float(i)
        total = total + 1.0 / (v * v)
    w = u + 6.0
    ixx = 1.0 / (w * w)
    total = total + (1.0 + 1.0 / (2.0 * w) + ixx * (1.0 / 6 - ixx * (1.0 / 30 - ixx * (1.0 / 42)))) / w
    return where(reflect, -(pole_part + total), total)


# -- Hurwitz zeta and polygamma --------------------------------------------------------------------
# zeta(s, q) = sum_k (q + k)^-s: nine terms directly, the rest by Euler-Maclaurin at w = q + 9, whose
# correction terms B_2j / (2j)! (s)_(2j-1) w^(1-s-2j) shrink by about ((s + 2j) / (2 pi w))^2 each:
# for s well below 2 pi w eight of them reach float32 precision, and as s grows toward and past it
# the whole tail falls below (q / w)^s ~ e^(-9 s / w) of the sum (1e-12 from s = pi w on).

_ZETA_DIRECT = 9
_ZETA_CORRECTIONS = 8


def _bernoulli_over_factorial(count: int) -> list[float]:
    """B_2j / (2j)! for j = 1..count, from the recurrence sum_k C(m + 1, k) B_k = 0."""
    b = [Fraction(1)]
    for m in range(1, 2 * count + 1):
        b.append(-sum(math.comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
    return [float(b[2 * j] / math.factorial(2 * j)) for j in range(1, count + 1)]


_EULER_MACLAURIN = _bernoulli_over_factorial(_ZETA_CORRECTIONS)


def _hurwitz(s: F, q: F) -> F:
    """zeta(s, q) for s > 1, q > 0 (summed smallest terms first)."""
    minus_s = -s
    w = q + float(_ZETA_DIRECT)
    b = w ** minus_s
    u = s * b / w
    corrections = []
    for j, c in enumerate(_EULER_MACLAURIN, start=1):
        corrections.append(u * c)
        u = u * ((s + float(2 * j - 1)) * (s + float(2 * j)) / (w * w))
    total = corrections[-1]
    for term in reversed(corrections[:-1]):
        total = total + term
    total = total + 0.5 * b + w * b / (s - 1.0)
    for k in range(_ZETA_DIRECT - 1, -1, -1):
        total = total + (q + float(k)) ** minus_s
    return total


def zeta_of(s: F, q: F) -> F:
    """torch's special_zeta(s, q), the Hurwitz zeta function, with its inf/NaN conventions.

    For q < 0 (defined for integer s only) write q = m + r with m = round(q) and r in [-1/2, 1/2],
    both exact. The terms q + k < 0 are (r - i)^-s = (-1)^s (i - r)^-s for i = 1..-m, which sum to
    (-1)^s (zeta(s, 1 - r) - zeta(s, 1 - q)); then comes r^-s (the term nearest the pole, from the
    exact r; (-1)^s |r|^-s for negative r) and zeta(s, 1 + r). Where these nearly cancel (odd s, q
    near a half-integer far below 0: the result is much smaller than the terms) the error is float32
    rounding of the terms (about 1e-7 of the largest), not of the result."""
    negative = q < 0.0
    r = q - q.round()
    main = _hurwitz(s, where(negative, 1.0 + r, q))
    parity = s - 2.0 * (s * 0.5).floor()
    sign = 1.0 - 2.0 * parity  # (-1)^s
    head = _hurwitz(s, where(negative, 1.0 - r, 1.0)) - _hurwitz(s, where(negative, 1.0 - q, 2.0))
    nearest = where(r < 0.0, sign, 1.0) * r.abs() ** -s
    result = where(negative, nearest + main + sign * head, main)
    result = where(negative & ~s.is_integer(), _NAN, result)
    result = where((q <= 0.0) & q.is_integer(), _INF, result)
    # s = inf: torch's loop gives inf below q = 1, 1 at q = 1 and NaN above.
    result = where(s.eq(_INF), where(q < 1.0, _INF, where(q.eq(1.0), 1.0, _NAN)), result)
    result = where(s < 1.0, _NAN, result)
    return where(s.eq(1.0), _INF, result)


@lowering(aten.special_zeta.default, aten.special_zeta.self_scalar, aten.special_zeta.other_scalar)
def special_zeta(ctx, self, other):
    """special_zeta(Tensor self, Tensor other) -> Tensor"""
    return float_result(ctx, zeta_of(fp32(ctx, self), fp32(ctx, other)))


def _factorial32(n: int) -> float:
    return float(math.factorial(n)) if n <= 34 else _INF  # 35! exceeds float32, as in torch


def _cot_derivative(n: int) -> list[int]:
    """Coefficients (highest power first) of P with d^n/dy^n cot(y) = P(cot y): P_0(c) = c and
    P_(k+1)(c) = -(1 + c^2) P_k'(c), as cot' = -(1 + cot^2)."""
    p = [0, 1]  # lowest power first while building
    for _ in range(n):
        dp = [k * p[k] for k in range(1, len(p))] + [0, 0]
        p = [-(dp[k] + (dp[k - 2] if k >= 2 else 0)) for k in range(len(dp))]
    while len(p) > 1 and p[-1] == 0:
        p.pop()
    return list(reversed(p))


def _polygamma_high(n: int, x: F) -> F:
    """psi^(n)(x) for n >= 2: (-1)^(n+1) n! zeta(n + 1, x) for x >= 0, and for x < 0 the reflection
    psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) cot^(n)(pi x), which keeps its accuracy where the
    zeta sum over negative arguments would cancel (near half-integers)."""
    negative = x < 0.0
    scale = (1.0 if n % 2 else -1.0) * _factorial32(n)
    order = fp32(x.ctx, n + 1)
    positive = _hurwitz(order, where(negative, 1.0 - x, x)) * scale
    cot_part = horner(_cot_pi(x), [float(c) for c in _cot_derivative(n)]) * (_PI ** (n + 1))
    reflected = positive * (-1.0 if n % 2 else 1.0) - cot_part
    result = where(negative, reflected, positive)
    pole = (x <= 0.0) & x.is_integer()
    return where(pole, math.copysign(_INF, scale), result)


@lowering(aten.polygamma.default)
def polygamma(ctx, n, self):
    """polygamma(int n, Tensor self) -> Tensor"""
    if n < 0:
        raise ctx.unsupported(f"polygamma of order n={n}: torch requires n >= 0")
    x = fp32(ctx, self)
    if n == 0:
        return float_result(ctx, digamma_of(x))
    if n == 1:
        return float_result(ctx, _trigamma(x))
    return float_result(ctx, _polygamma_high(n, x))


# -- error-function family ---------------------------------------------------------------------------
# erfcx(x) = exp(x^2) erfc(x) for x >= 0 (Cody, "Rational Chebyshev approximations for the error
# function", 1969): 1 - erf(x) is exact enough below 0.46875; a degree 8/8 rational in x up to 4;
# beyond, (1/sqrt(pi) - z R(z)) / x with R a degree 5/5 rational in z = 1/x^2.

_ERFCX_MID_NUM = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
                  6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
                  1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3)
_ERFCX_MID_DEN = (1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
                  1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
                  3.43936767414372164e3, 1.23033935480374942e3)
_ERFCX_FAR_NUM = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1,
                  1.25781726111229246e-1, 1.60837851487422766e-2, 6.58749161529837803e-4)
_ERFCX_FAR_DEN = (1.0, 2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
                  6.05183413124413191e-2, 2.33520497626869185e-3)
_ERFCX_NEAR = 0.46875
_ERFCX_MID = 4.0


def _exp_square(x: F, sign: float) -> F:
    """exp(sign * x^2) without x^2's rounding error (which exp would scale by x^2): split x = h + d
    with h a multiple of 1/16, so h^2 is exact and only the small (x - h)(x + h) rounds."""
    x = x.abs().clip(0.0, 20.0)  # exp(400) is inf and exp(-400) 0 already; keeps 16 x finite
    h = (x * 16.0).floor() / 16.0
    return (sign * (h * h)).exp() * (sign * ((x - h) * (x + h))).exp()


def _erfcx_positive(a: F) -> F:
    near = _exp_square(a, 1.0) * (1.0 - a.erf())
    mid = horner(a, _ERFCX_MID_NUM) / horner(a, _ERFCX_MID_DEN)
    z = 1.0 / (a * a)
    far = ((1.0 / math.sqrt(_PI)) - z * horner(z, _ERFCX_FAR_NUM) / horner(z, _ERFCX_FAR_DEN)) / a
    return where(a <= _ERFCX_NEAR, near, where(a <= _ERFCX_MID, mid, far))


def erfcx_of(x: F) -> F:
    positive = _erfcx_positive(x.abs())
    # erfcx(-a) = 2 exp(a^2) - erfcx(a), torch's formula (+inf once exp(a^2) overflows).
    return where(x < 0.0, 2.0 * _exp_square(x, 1.0) - positive, positive)


def erfc_of(x: F) -> F:
    """erfc(x) to full relative precision in both tails (1 - erf(x) loses it for x above ~1)."""
    a = x.abs()
    upper = _erfcx_positive(a) * _exp_square(a, -1.0)
    return where(x < 0.0, 2.0 - upper, where(a <= _ERFCX_NEAR, 1.0 - x.erf(), upper))


@special(aten.special_erfcx.default)
def special_erfcx(x):
    """special_erfcx(Tensor self) -> Tensor"""
    return erfcx_of(x)


@lowering(aten.special_log_ndtr.default)
def special_log_ndtr(ctx, self):
    """special_log_ndtr(Tensor self) -> Tensor

    Kept whole: torch's decomposition takes erfc as aten.erfc, whose tail the log1p needs exactly."""
    x = fp32(ctx, self)
    t = x * (1.0 / math.sqrt(2.0))
    # log Phi(x) = log(erfc(-t) / 2): for x < -1 as log(erfcx(-t) / 2) - t^2, which cannot underflow.
    lower = (erfcx_of(-t) / 2.0).log() - t * t
    upper = (-erfc_of(t) / 2.0).log1p()
    return float_result(ctx, where(x < -1.0, lower, upper))


# torch's erfinv: a rational first guess (central for |y| <= 0.7, in sqrt(-log((1 - |y|) / 2))
# outside), then two Newton steps, which reach float32's precision. Outside the centre the steps solve
# erfc(x) = 1 - |y| instead of erf(x) = y: erf(x) is within an ulp of 1 there, so the residual
# erf(x) - y would be rounding noise divided by a tiny slope (torch's scalar erf happens to round
# well enough; a vectorized or on-device erf need not).
_ERFINV_A = (-0.140543331, 0.914624893, -1.645349621, 0.886226899)
_ERFINV_B = (0.012229801, -0.329097515, 1.442710462, -2.118377725, 1.0)
_ERFINV_C = (1.641345311, 3.429567803, -1.624906493, -1.970840454)
_ERFINV_D = (1.637067800, 3.543889200, 1.0)


@special(aten.erfinv.default)
def erfinv(y):
    """erfinv(Tensor self) -> Tensor"""
    slope = 2.0 / math.sqrt(_PI)  # erf'(x) = slope * exp(-x^2)
    z = y * y
    central = y * horner(z, _ERFINV_A) / horner(z, _ERFINV_B)
    for _ in range(2):
        central = central - (central.erf() - y) / (slope * (-(central * central)).exp())
    a = y.abs()
    c = 1.0 - a  # exact: the erfc(x) to reach
    w = (-(c / 2.0).log()).sqrt()
    tail = horner(w, _ERFINV_C) / horner(w, _ERFINV_D)
    for _ in range(2):
        # (erfc(t) - c) / (slope exp(-t^2)), scaled by exp(t^2) so neither side underflows
        tail = tail + (_erfcx_positive(tail) - c * _exp_square(tail, 1.0)) / slope
    x = where(a <= 0.7, central, where(y < 0.0, -tail, tail))
    x = where(a.eq(1.0), where(y < 0.0, -_INF, _INF), x)
    return where(a > 1.0, _NAN, x)


# Cephes' ndtri: p - 1/2 in a rational of (p - 1/2)^2 for exp(-2) < p < 1 - exp(-2); in the tails
# x = sqrt(-2 log p) - log(x) / x - a rational in 1/x (one for x < 8, one beyond).
_NDTRI_P0 = (-5.99633501014107895267e1, 9.80010754185999661536e1, -5.66762857469070293439e1,
             1.39312609387279679503e1, -1.23916583867381258016e0)
_NDTRI_Q0 = (1.0, 1.95448858338141759834e0, 4.67627912898881538453e0, 8.63602421390890590575e1,
             -2.25462687854119370527e2, 2.00260212380060660359e2, -8.20372256168333339912e1,
             1.59056225126211695515e1, -1.18331621121330003142e0)
_NDTRI_P1 = (4.05544892305962419923e0, 3.15251094599893866154e1, 5.71628192246421288162e1,
             4.40805073893200834700e1, 1.46849561928858024014e1, 2.18663306850790267539e0,
             -1.40256079171354495875e-1, -3.50424626827848203418e-2, -8.57456785154685413611e-4)
_NDTRI_Q1 = (1.0, 1.57799883256466749731e1, 4.53907635128879210584e1, 4.13172038254672030440e1,
             1.50425385692907503408e1, 2.50464946208309415979e0, -1.42182922854787788574e-1,
             -3.80806407691578277194e-2, -9.33259480895457427372e-4)
_NDTRI_P2 = (3.23774891776946035970e0, 6.91522889068984211695e0, 3.93881025292474443415e0,
             1.33303460815807542389e0, 2.01485389549179081538e-1, 1.23716634817820021358e-2,
             3.01581553508235416007e-4, 2.65806974686737550832e-6, 6.23974539184983293730e-9)
_NDTRI_Q2 = (1.0, 6.02427039364742014255e0, 3.67983563856160859403e0, 1.37702099489081330271e0,
             2.16236993594496635890e-1, 1.34204006088543189037e-2, 3.28014464682127739104e-4,
             2.89247864745380683936e-6, 6.79019408009981274425e-9)
_EXP_MINUS_2 = 0.13533528323661269189


@special(aten.special_ndtri.default)
def special_ndtri(p):
    """special_ndtri(Tensor self) -> Tensor"""
    upper = p > 1.0 - _EXP_MINUS_2
    y = where(upper, 1.0 - p, p)  # exact for p >= 1/2
    c = y - 0.5
    c2 = c * c
    central = (c + c * (c2 * horner(c2, _NDTRI_P0) / horner(c2, _NDTRI_Q0))) * math.sqrt(2 * _PI)
    t = (-2.0 * y.log()).sqrt()
    r = 1.0 / t
    near_tail = r * horner(r, _NDTRI_P1) / horner(r, _NDTRI_Q1)
    far_tail = r * horner(r, _NDTRI_P2) / horner(r, _NDTRI_Q2)
    magnitude = t - t.log() / t - where(t < 8.0, near_tail, far_tail)
    x = where(y > _EXP_MINUS_2, central, where(upper, magnitude, -magnitude))
    x = where(p.eq(0.0), -_INF, where(p.eq(1.0), _INF, x))
    return where((p < 0.0) | (p > 1.0), _NAN, x)


from . import special_gamma_incomplete  # noqa: E402,F401  (igamma, igammac: they use the helpers above)
