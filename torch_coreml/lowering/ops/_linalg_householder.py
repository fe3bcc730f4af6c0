"""Householder QR as LAPACK computes it (geqr2 with larfg, org2r, orm2r), unrolled over the static
matrix size like `_linalg_core`.

Unlike singular vectors, a Householder QR has no sign freedom left once larfg's convention is fixed
(beta = -sign(alpha) * ||x||, so R's diagonal may be negative), so Q, R and tau match torch's.
geqrf scales A by a power of two first: exact, the reflectors and tau do not change, R scales back, and
the norms cannot overflow (fp16 would from entries of a few hundred).
"""

from __future__ import annotations

import numpy as np

from ...mil.program import Var
from . import _linalg_core as core


def _hypot(ctx, x: Var, y: Var) -> Var:
    """sqrt(x^2 + y^2) without overflow, as LAPACK's lapy2: larger * sqrt(1 + (smaller / larger)^2)."""
    ax, ay = ctx.b.op("abs", x=x), ctx.b.op("abs", x=y)
    big, small = ctx.b.op("maximum", x=ax, y=ay), ctx.b.op("minimum", x=ax, y=ay)
    ratio = ctx.b.op("real_div", x=small, y=big)
    scaled = ctx.b.op("mul", x=big, y=ctx.b.op("sqrt", x=ctx.b.op(
        "add", x=core.fconst(ctx, 1.0), y=ctx.b.op("mul", x=ratio, y=ratio))))
    return ctx.b.op("select", cond=ctx.b.op("equal", x=small, y=core.fconst(ctx, 0.0)), a=big, b=scaled)


def _apply_left(ctx, c: Var, v: Var, tau: Var) -> Var:
    """H C with H = I - tau v v^T (larf 'Left': w = C^T v, then C - tau v w^T as ger computes it)."""
    w = ctx.b.op("matmul", x=v, y=c, transpose_x=True)
    return ctx.b.op("add", x=c, y=ctx.b.op("mul", x=v, y=ctx.b.op("mul", x=w, y=ctx.b.op(
        "mul", x=tau, y=core.fconst(ctx, -1.0)))))


def _apply_right(ctx, c: Var, v: Var, tau: Var) -> Var:
    """C H (larf 'Right': w = C v, then C - tau w v^T)."""
    w = ctx.b.op("matmul", x=c, y=v)
    return ctx.b.op("add", x=c, y=ctx.b.op("mul", x=w, y=ctx.b.op("mul", x=core.mT(ctx, v), y=ctx.b.op(
        "mul", x=tau, y=core.fconst(ctx, -1.0)))))


def _reflector(ctx, packed: Var, i: int) -> Var:
    """v_i = [1; packed[i+1:, i]] as a column (rows i.. of H_i)."""
    m = packed.shape[-2]
    one = core.batch_scalar(ctx, packed, 1, ctx.float_dtype)
    return core.concat(ctx, [one, core.block(ctx, packed, (i + 1, m), (i, i + 1)) if i + 1 < m else None], -2)


def geqrf(ctx, a: Var) -> tuple[Var, Var]:
    """(packed, tau): R on and above the diagonal, the reflectors' tails below it, as geqr2."""
    m, n = a.shape[-2:]
    shrink, grow = core.power_of_two_scale(ctx, a)
    a = ctx.b.op("mul", x=a, y=shrink)
    taus = []
    for i in range(min(m, n)):
        if i == m - 1:  # a single row: H = I
            taus.append(core.batch_scalar(ctx, a, 0, ctx.float_dtype))
            continue
        alpha, x = core.entry(ctx, a, i, i), core.block(ctx, a, (i + 1, m), (i, i + 1))
        norm = ctx.b.op("sqrt", x=ctx.b.op("reduce_sum", x=ctx.b.op("mul", x=x, y=x), axes=[-2], keep_dims=True))
        hyp = _hypot(ctx, alpha, norm)
        beta = ctx.b.op("select", cond=ctx.b.op("greater_equal", x=alpha, y=core.fconst(ctx, 0.0)),
                        a=ctx.b.op("mul", x=hyp, y=core.fconst(ctx, -1.0)), b=hyp)
        # A zero tail needs no reflection: tau = 0 and the column stays as it is.
        reflect = ctx.b.op("not_equal", x=norm, y=core.fconst(ctx, 0.0))
        tau = ctx.b.op("real_div", x=ctx.b.op("sub", x=beta, y=alpha), y=beta)
        tau = ctx.b.op("select", cond=reflect, a=tau, b=core.fconst(ctx, 0.0))
        scale = ctx.b.op("real_div", x=core.fconst(ctx, 1.0), y=ctx.b.op("sub", x=alpha, y=beta))
        x = ctx.b.op("select", cond=reflect, a=ctx.b.op("mul", x=x, y=scale), b=x)
        head = ctx.b.op("select", cond=reflect, a=beta, b=alpha)
        column = ctx.b.op("concat", values=[head, x], axis=-2)
        parts = [core.block(ctx, a, (i, m), (0, i)) if i else None, column]
        if i < n - 1:
            v = ctx.b.op("concat", values=[core.batch_scalar(ctx, a, 1, ctx.float_dtype), x], axis=-2)
            parts.append(_apply_left(ctx, core.block(ctx, a, (i, m), (i + 1, n)), v, tau))
        a = core.replace_rows(ctx, a, i, core.concat(ctx, parts, -1))
        taus.append(tau)
    upper = core.positions((m, n), lambda r, c: r <= c)
    a = core.where(ctx, upper, ctx.b.op("mul", x=a, y=grow), a)
    return a, core.steps(ctx, taus)


def householder_product(ctx, packed: Var, tau: Var) -> Var:
    """The first n columns of H_0 H_1 ... H_{k-1} (m x n), as org2r: columns k.. start as the identity's,
    then the reflectors apply from the last to the first."""
    m, n = packed.shape[-2:]
    k = tau.shape[-1]
    rows = np.arange(m).reshape(m, 1)
    q = core.where(ctx, core.positions((m, n), lambda r, c: c >= k), core.eye(ctx, m, n), packed)
    q = core.broadcast_batch(ctx, q, ctx.b.op("expand_dims", x=tau, axes=[-1]))
    for i in range(k - 1, -1, -1):
        t = ctx.b.op("expand_dims", x=core.last(ctx, tau, i, i + 1), axes=[-1])  # (..., 1, 1)
        v = _reflector(ctx, q, i)
        right = None
        if i < n - 1:
            right = core.concat(ctx, [core.block(ctx, q, (0, i), (i + 1, n)) if i else None,
                                      _apply_left(ctx, core.block(ctx, q, (i, m), (i + 1, n)), v, t)], -2)
        col = core.block(ctx, q, (0, m), (i, i + 1))
        col = core.where(ctx, rows > i, ctx.b.op("mul", x=col, y=ctx.b.op("mul", x=t, y=core.fconst(ctx, -1.0))),
                         ctx.b.op("sub", x=core.fconst(ctx, 1.0), y=t))
        col = core.where(ctx, rows >= i, col, core.fconst(ctx, 0.0))
        q = core.concat(ctx, [core.block(ctx, q, (0, m), (0, i)) if i else None, col, right], -1)
    return q


def apply_q(ctx, packed: Var, tau: Var, c: Var, *, left: bool, transpose: bool) -> Var:
    """Q C, Q^T C, C Q or C Q^T with Q = H_0 ... H_{k-1} (the full square product), as orm2r."""
    k = tau.shape[-1]
    c = core.broadcast_batch(ctx, c, packed)
    forward = left == transpose  # Q^T C and C Q take H_0 first
    for i in (range(k) if forward else range(k - 1, -1, -1)):
        t = ctx.b.op("expand_dims", x=core.last(ctx, tau, i, i + 1), axes=[-1])
        v = _reflector(ctx, packed, i)
        if left:
            rows = c.shape[-2]
            c = core.replace_rows(ctx, c, i, _apply_left(ctx, core.block(ctx, c, (i, rows)), v, t))
        else:
            m, n = c.shape[-2:]
            changed = _apply_right(ctx, core.block(ctx, c, (0, m), (i, n)), v, t)
            c = core.concat(ctx, [core.block(ctx, c, (0, m), (0, i)) if i else None, changed], -1)
    return c
