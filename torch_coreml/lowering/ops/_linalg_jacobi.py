"""Jacobi methods for the singular value and symmetric eigenvalue decompositions (no MIL op either).

LAPACK's gesdd/syevd (bidiagonal/tridiagonal reduction, then divide and conquer) branch on the data at
every step; Jacobi rotations do not, which suits a static program. Both methods here run "sweeps" in a
MIL while_loop until no pair needs a rotation (at most _MAX_SWEEPS): a sweep visits every column pair
once in the round-robin order, n/2 disjoint pairs per round, so one round is a handful of batched ops
(columns gathered so the pairs' left and right members form two halves, rotated together).

- svd: one-sided Jacobi (Hestenes): rotate column pairs of A until they are orthogonal; the column
  norms are the singular values (to high relative accuracy), the normalized columns U, the accumulated
  rotations V.
- eigh: two-sided (classical) Jacobi: rotate rows and columns of the symmetric A until it is diagonal;
  the diagonal holds the eigenvalues, the accumulated rotations the eigenvectors.

The values match LAPACK to rounding. Singular vectors and eigenvectors are unique only up to sign (and
within repeated values), and the signs Jacobi lands on differ from LAPACK's, as torch documents they may
across backends. A is first scaled by a power of two so that its largest |entry| is at most 1: exact,
and the sums of squares then fit fp16 too.
"""

from __future__ import annotations

import numpy as np

from ...mil.program import Var
from . import _linalg_core as core

_MAX_SWEEPS = 30


def _schedule(n: int) -> list[list[int]]:
    """Round-robin pairings of n (even) columns: per round, the left members then the right members."""
    players = list(range(n))
    rounds = []
    for _ in range(n - 1):
        half = n // 2
        rounds.append([players[i] for i in range(half)] + [players[n - 1 - i] for i in range(half)])
        players = [players[0], players[-1]] + players[1:-1]
    return rounds


def _gather_columns(ctx, x: Var, index: list[int]) -> Var:
    if index == list(range(len(index))):
        return x
    return ctx.b.op("gather", x=x, indices=core.const(ctx, np.int32(index)), axis=-1)


def _rotation(ctx, app, aqq, apq, tol) -> tuple[Var, Var, Var]:
    """(c, s, rotate?) of the Jacobi rotation that zeroes apq between app and aqq; no rotation (c = 1,
    s = 0) where |apq| <= tol * sqrt(|app * aqq|), which also covers apq == 0."""
    b = ctx.b
    rotate = b.op("greater", x=b.op("abs", x=apq),
                  y=b.op("mul", x=b.op("sqrt", x=b.op("abs", x=b.op("mul", x=app, y=aqq))), y=tol))
    zeta = b.op("real_div", x=b.op("sub", x=aqq, y=app), y=b.op("mul", x=apq, y=core.fconst(ctx, 2.0)))
    az = b.op("abs", x=zeta)
    one = core.fconst(ctx, 1.0)
    # sqrt(1 + az^2) without squaring a large az (fp16 overflows at 256).
    inv = b.op("real_div", x=one, y=az)
    big = b.op("mul", x=az, y=b.op("sqrt", x=b.op("add", x=one, y=b.op("mul", x=inv, y=inv))))
    small = b.op("sqrt", x=b.op("add", x=one, y=b.op("mul", x=az, y=az)))
    root = b.op("select", cond=b.op("greater", x=az, y=one), a=big, b=small)
    t = b.op("real_div", x=one, y=b.op("add", x=az, y=root))
    t = b.op("select", cond=b.op("less", x=zeta, y=core.fconst(ctx, 0.0)), a=b.op("mul", x=t, y=core.fconst(ctx, -1.0)),
             b=t)
    t = b.op("select", cond=rotate, a=t, b=core.fconst(ctx, 0.0))
    c = b.op("rsqrt", x=b.op("add", x=one, y=b.op("mul", x=t, y=t)), epsilon=0.0)
    return c, b.op("mul", x=c, y=t), rotate


def _turn(ctx, left: Var, right: Var, c: Var, s: Var) -> tuple[Var, Var]:
    """(c left - s right, s left + c right)."""
    b = ctx.b
    return (b.op("sub", x=b.op("mul", x=c, y=left), y=b.op("mul", x=s, y=right)),
            b.op("add", x=b.op("mul", x=s, y=left), y=b.op("mul", x=c, y=right)))


def _sweeps(ctx, w: Var, sweep) -> Var:
    """Run `sweep(ctx, w) -> (w, any rotation?)` in a while_loop until a sweep needs no rotation; the
    sweep builds its ops through the context it is given (the loop body's)."""
    def more(b, loop_vars):
        _, count, busy = loop_vars
        return b.op("logical_and", x=b.op("less", x=count, y=core.const(ctx, np.int32(_MAX_SWEEPS))),
                    y=b.op("greater", x=busy, y=core.const(ctx, np.int32(0))))

    def body(b, loop_vars):
        w, count, _ = loop_vars
        w, busy = sweep(core.Nested(ctx, b), w)
        return [w, b.op("add", x=count, y=core.const(ctx, np.int32(1))), busy]

    start = [w, core.const(ctx, np.int32(0)), core.const(ctx, np.int32(1))]
    return ctx.b.while_loop(start, more, body)[0]


def _any(ctx, flags: Var) -> Var:
    """1 if any flag is set, else 0, as an int32 scalar."""
    b = ctx.b
    flat = b.op("reshape", x=b.op("cast", x=flags, dtype="int32"), shape=[-1])
    return b.op("reduce_max", x=flat, axes=[0], keep_dims=False)


def _tolerance(ctx, size: int) -> Var:
    return core.fconst(ctx, size * float(np.finfo(ctx.float_dtype.numpy).eps))


def _padded(ctx, x: Var, n: int, axes: tuple[int, ...]) -> Var:
    """x with a zero row/column appended along `axes` when n is odd (round-robin pairs need n even)."""
    if n % 2 == 0:
        return x
    pad = [0, 0] * x.rank
    for axis in axes:
        pad[2 * (x.rank + axis) + 1] = 1
    return ctx.b.op("pad", x=x, pad=core.const(ctx, np.int32(pad)), mode="constant", constant_val=0.0)


def _sorted_columns(ctx, order: Var, x: Var) -> Var:
    """x's columns in `order` (..., 1, n), per matrix."""
    index = ctx.b.op("add", x=order, y=core.const(ctx, np.zeros((x.shape[-2], 1), np.int32)))
    return ctx.b.op("gather_along_axis", x=x, indices=index, axis=-1)


def svd(ctx, a: Var, compute_uv: bool) -> tuple[Var | None, Var, Var | None]:
    """(U, S, Vh) of the reduced SVD, S descending; U and Vh are None unless compute_uv."""
    m, n = a.shape[-2:]
    if m < n:
        u, s, vh = svd(ctx, core.mT(ctx, a), compute_uv)
        return (core.mT(ctx, vh) if compute_uv else None), s, (core.mT(ctx, u) if compute_uv else None)
    shrink, grow = core.power_of_two_scale(ctx, a)
    x = _padded(ctx, ctx.b.op("mul", x=a, y=shrink), n, (-1,))
    size = n + n % 2
    if compute_uv:  # V accumulates below A: column rotations apply to both
        x = ctx.b.op("concat", values=[x, core.broadcast_batch(ctx, core.eye(ctx, size), x)], axis=-2)
    tol = _tolerance(ctx, m)
    rounds, half = _schedule(size), size // 2

    def sweep(inner, w):
        b, busy, layout = inner.b, None, list(range(size))
        for order in rounds:
            w = _gather_columns(inner, w, [layout.index(j) for j in order])
            layout = order
            left, right = (core.block(inner, w, (0, w.shape[-2]), cols) for cols in ((0, half), (half, size)))
            top_l, top_r = (core.block(inner, v, (0, m)) for v in (left, right))
            norms = [b.op("reduce_sum", x=b.op("mul", x=p, y=q), axes=[-2], keep_dims=True)
                     for p, q in ((top_l, top_l), (top_r, top_r), (top_l, top_r))]
            c, s, rotate = _rotation(inner, *norms, tol)
            w = b.op("concat", values=list(_turn(inner, left, right, c, s)), axis=-1)
            busy = _any(inner, rotate) if busy is None else b.op("maximum", x=busy, y=_any(inner, rotate))
        return _gather_columns(inner, w, [layout.index(j) for j in range(size)]), busy

    w = _sweeps(ctx, x, sweep)
    cols = core.block(ctx, w, (0, m), (0, n))
    sigma = ctx.b.op("sqrt", x=ctx.b.op("reduce_sum", x=ctx.b.op("mul", x=cols, y=cols), axes=[-2], keep_dims=True))
    order = ctx.b.op("argsort", x=sigma, axis=-1, ascending=False)
    sigma = ctx.b.op("gather_along_axis", x=sigma, indices=order, axis=-1)
    s = ctx.b.op("squeeze", x=ctx.b.op("mul", x=sigma, y=grow), axes=[-2])
    if not compute_uv:
        return None, s, None
    # A zero singular value leaves its U column 0 (LAPACK completes an orthonormal basis instead).
    safe = ctx.b.op("select", cond=ctx.b.op("greater", x=sigma, y=core.fconst(ctx, 0.0)), a=sigma,
                    b=core.fconst(ctx, float("inf")))
    u = ctx.b.op("real_div", x=_sorted_columns(ctx, order, cols), y=safe)
    v = _sorted_columns(ctx, order, core.block(ctx, w, (m, m + n), (0, n)))
    return u, s, core.mT(ctx, v)


def eigh(ctx, a: Var, compute_v: bool) -> tuple[Var, Var | None]:
    """(eigenvalues ascending, eigenvectors as columns or None) of the symmetric a."""
    n = a.shape[-1]
    shrink, grow = core.power_of_two_scale(ctx, a)
    x = _padded(ctx, ctx.b.op("mul", x=a, y=shrink), n, (-2, -1))
    size = n + n % 2
    tol = _tolerance(ctx, size)
    rounds, half = _schedule(size), size // 2
    eye_half = core.const(ctx, np.eye(half, dtype=bool))

    def diagonal(inner, block_):  # (..., half, half) -> (..., 1, half)
        picked = inner.b.op("select", cond=eye_half, a=block_, b=core.fconst(ctx, 0.0))
        return inner.b.op("reduce_sum", x=picked, axes=[-2], keep_dims=True)

    def permute(inner, w, index):  # rows (of A) and columns alike
        w = _gather_columns(inner, w, index)
        top = inner.b.op("gather", x=core.block(inner, w, (0, size)), indices=core.const(ctx, np.int32(index)),
                         axis=-2)
        return _over(inner, top, w, size)

    def sweep(inner, w):
        b, busy, layout = inner.b, None, list(range(size))
        for order in rounds:
            w = permute(inner, w, [layout.index(j) for j in order])
            layout = order
            top = core.block(inner, w, (0, size))
            app = diagonal(inner, core.block(inner, top, (0, half), (0, half)))
            aqq = diagonal(inner, core.block(inner, top, (half, size), (half, size)))
            apq = diagonal(inner, core.block(inner, top, (0, half), (half, size)))
            c, s, rotate = _rotation(inner, app, aqq, apq, tol)
            # J^T A on A's rows (c and s as columns), then [A; V] J on the columns.
            rows = _turn(inner, core.block(inner, top, (0, half)), core.block(inner, top, (half, size)),
                         core.mT(inner, c), core.mT(inner, s))
            w = _over(inner, b.op("concat", values=list(rows), axis=-2), w, size)
            left, right = (core.block(inner, w, (0, w.shape[-2]), cols) for cols in ((0, half), (half, size)))
            w = b.op("concat", values=list(_turn(inner, left, right, c, s)), axis=-1)
            # Rows then columns round differently on either side of the diagonal: keep A symmetric.
            w = _over(inner, core.symmetric_from_lower(inner, core.block(inner, w, (0, size))), w, size)
            busy = _any(inner, rotate) if busy is None else b.op("maximum", x=busy, y=_any(inner, rotate))
        return permute(inner, w, [layout.index(j) for j in range(size)]), busy

    if compute_v:
        x = ctx.b.op("concat", values=[x, core.broadcast_batch(ctx, core.eye(ctx, size), x)], axis=-2)
    w = _sweeps(ctx, x, sweep)
    mask = core.const(ctx, np.eye(n, dtype=bool))
    values = ctx.b.op("reduce_sum", x=ctx.b.op("select", cond=mask, a=core.block(ctx, w, (0, n), (0, n)),
                                               b=core.fconst(ctx, 0.0)), axes=[-2], keep_dims=True)
    order = ctx.b.op("argsort", x=values, axis=-1, ascending=True)
    values = ctx.b.op("gather_along_axis", x=values, indices=order, axis=-1)
    values = ctx.b.op("squeeze", x=ctx.b.op("mul", x=values, y=grow), axes=[-2])
    if not compute_v:
        return values, None
    return values, _sorted_columns(ctx, order, core.block(ctx, w, (size, size + n), (0, n)))


def _over(ctx, top: Var, w: Var, size: int) -> Var:
    """top stacked over w's rows from `size` on (the accumulated rotations), if w has any."""
    if w.shape[-2] == size:
        return top
    return ctx.b.op("concat", values=[top, core.block(ctx, w, (size, w.shape[-2]))], axis=-2)
