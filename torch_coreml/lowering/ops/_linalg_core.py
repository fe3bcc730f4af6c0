"""The unrolled algorithms behind linalg.py: LU with partial pivoting (LAPACK getrf), triangular
substitution (trsm), Cholesky (potrf) and Bunch-Kaufman LDL^T (sytf2 / sytrs), plus the static slicing
and constant helpers they share.

MIL has matmul but no factorization or solve op, so each algorithm is unrolled at conversion over the
matrix size: step k slices row/column k of the whole batched tensor, updates the trailing block with
broadcast mul/sub/matmul and rebuilds the matrix with concat. Where LAPACK's path depends on the data
(which row to pivot on, a 1x1 or 2x2 LDL block), every branch is computed and `select` keeps the one
each matrix of the batch takes. Matrix dims are static; batch dims may be static or symbolic.

The select-heavy code keeps one rule: each select's values span its condition's shape, because
coremltools' type inference (and so Core ML's tooling) derives select's shape from `a` and `b` alone.
"""

from __future__ import annotations

import math

import numpy as np

from ...mil import dtypes as dt
from ...mil.program import Var

# Each unrolled step adds tens of ops; beyond this size the program (and its conversion) gets unwieldy.
MAX_SIZE = 128


# -- constants, shapes and slices -------------------------------------------------------------------

def const(ctx, value, dtype: dt.DType | None = None) -> Var:
    """One const per distinct value within a lowering: the unrolled loops reuse the same slice bounds,
    masks and scalars hundreds of times, and every duplicate would cost the CSE pass a program walk."""
    root = getattr(ctx, "root", ctx)
    cache = root.__dict__.setdefault("_linalg_consts", {})
    arr = np.asarray(value)
    key = (arr.dtype.str, arr.shape, arr.tobytes(), dtype)
    if key not in cache:
        cache[key] = root.const(arr, dtype)
    return cache[key]


class Nested:
    """The lowering context seen from inside a nested block (a while_loop body): ops go to the block's
    builder `b`; consts stay in the enclosing block, which the body may read, so they can be shared."""

    def __init__(self, ctx, b):
        self.root, self.b = getattr(ctx, "root", ctx), b

    def __getattr__(self, name):
        return getattr(self.root, name)

    def cast(self, x: Var, dtype: dt.DType) -> Var:
        return x if x.dtype is dtype else self.b.op("cast", x=x, dtype=dtype.name)


def fconst(ctx, value) -> Var:
    """A float scalar in the program's float type."""
    return const(ctx, np.asarray(value, ctx.float_dtype.numpy), ctx.float_dtype)


def matrix_dims(ctx, x: Var, what: str, square: bool = True) -> tuple[int, int]:
    """The static matrix dims of x (..., m, n), or a refusal naming why the algorithm cannot unroll."""
    if x.rank < 2:
        raise ctx.unsupported(f"{what} needs a matrix (rank >= 2), got rank {x.rank}")
    m, n = x.shape[-2:]
    if not isinstance(m, int) or not isinstance(n, int):
        raise ctx.unsupported(f"{what} of a matrix of run-time size {tuple(x.shape[-2:])}: the algorithm is "
                              "unrolled at conversion, so the matrix dims must be static (batch dims may vary)")
    if square and m != n:
        raise ctx.unsupported(f"{what} needs square matrices, got {m}x{n}")
    if max(m, n) > MAX_SIZE:
        raise ctx.unsupported(f"{what} of a {m}x{n} matrix: the unrolled program grows with the size; "
                              f"sizes up to {MAX_SIZE} are supported")
    return m, n


def mT(ctx, x: Var) -> Var:
    """x with its last two dims swapped (the transpose of each matrix)."""
    perm = list(range(x.rank))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return ctx.b.op("transpose", x=x, perm=perm)


def block(ctx, x: Var, rows: tuple[int, int], cols: tuple[int, int] | None = None) -> Var:
    """x[..., r0:r1, c0:c1] (all columns when cols is None) for static bounds."""
    m, n = x.shape[-2:]
    cols = cols or (0, n)
    if rows == (0, m) and cols == (0, n):
        return x
    batch = x.rank - 2
    mask = const(ctx, [True] * batch + [False, False])
    return ctx.b.op("slice_by_index", x=x, begin=const(ctx, np.int32([0] * batch + [rows[0], cols[0]])),
                    end=const(ctx, np.int32([0] * batch + [rows[1], cols[1]])), begin_mask=mask, end_mask=mask)


def entry(ctx, x: Var, i: int, j: int) -> Var:
    return block(ctx, x, (i, i + 1), (j, j + 1))


def last(ctx, x: Var, start: int, end: int) -> Var:
    """x[..., start:end] along the last axis."""
    rank = x.rank
    mask = const(ctx, [True] * (rank - 1) + [False])
    return ctx.b.op("slice_by_index", x=x, begin=const(ctx, np.int32([0] * (rank - 1) + [start])),
                    end=const(ctx, np.int32([0] * (rank - 1) + [end])), begin_mask=mask, end_mask=mask)


def concat(ctx, parts: list[Var], axis: int) -> Var:
    parts = [p for p in parts if p is not None]
    return parts[0] if len(parts) == 1 else ctx.b.op("concat", values=parts, axis=axis)


def batch_scalar(ctx, ref: Var, value, dtype: dt.DType) -> Var:
    """`value` as a (..., 1, 1) tensor with ref's batch dims (all but the last two)."""
    batch = ref.shape[:-2]
    if all(isinstance(d, int) for d in batch):
        return const(ctx, np.full(tuple(batch) + (1, 1), value, dtype.numpy), dtype)
    # Run-time batch dims: an argmax over a one-element axis is 0 with exactly those dims (a `fill`
    # of a computed shape would lose every static dim in type inference).
    zero = ctx.cast(ctx.b.op("reduce_argmax", x=entry(ctx, ref, 0, 0), axis=-1, keep_dims=True), dtype)
    return zero if value == 0 else ctx.b.op("add", x=zero, y=const(ctx, np.asarray(value, dtype.numpy), dtype))


def _covers(shape, other) -> bool:
    """True when batch dims `shape` already hold every batch dim of `other` (so nothing broadcasts in)."""
    if len(shape) < len(other):
        return False
    return all(o == 1 or o is s or o == s for s, o in zip(shape[len(shape) - len(other):], other))


def broadcast_batch(ctx, x: Var, ref: Var) -> Var:
    """x with ref's batch dims broadcast in. Multiplying by ones is exact (inf, NaN and -0 too); the
    unrolled loops need it because their first row may not otherwise touch ref."""
    if _covers(x.shape[:-2], ref.shape[:-2]):
        return x
    return ctx.b.op("mul", x=x, y=batch_scalar(ctx, ref, 1, x.dtype))


def eye(ctx, m: int, n: int | None = None) -> Var:
    return const(ctx, np.eye(m, n or m), ctx.float_dtype)


def positions(shape: tuple[int, int], keep) -> np.ndarray:
    """A bool mask over the (row, col) positions of a matrix: keep(rows, cols)."""
    rows, cols = np.indices(shape)
    return keep(rows, cols)


def where(ctx, mask: np.ndarray, a, b) -> Var:
    """select with a constant condition."""
    return ctx.b.op("select", cond=const(ctx, mask, dt.bool_), a=a, b=b)


def first_true(ctx, flags: Var) -> Var:
    """1 + the index of the first true along the last axis, 0 if none: LAPACK's `info`."""
    k = flags.shape[-1]
    weight = const(ctx, np.arange(k, 0, -1, dtype=np.int32), dt.int32)  # the earliest weighs most
    top = ctx.b.op("reduce_max", x=ctx.b.op("mul", x=ctx.cast(flags, dt.int32), y=weight), axes=[-1],
                   keep_dims=False)
    return ctx.b.op("select", cond=ctx.b.op("greater", x=top, y=const(ctx, np.int32(0))),
                    a=ctx.b.op("sub", x=const(ctx, np.int32(k + 1)), y=top), b=const(ctx, np.int32(0)))


def steps(ctx, items: list[Var]) -> Var:
    """(..., 1, 1) values, one per step, as a (..., k) vector."""
    return ctx.b.op("squeeze", x=concat(ctx, items, -1), axes=[-2])


def exchange(ctx, x: Var, i, j, axis: int = -2) -> Var:
    """x with rows (axis -2) or columns (axis -1) i and j exchanged; i, j are ints or (..., 1, 1) int32
    (the identity where they are equal). A gather, so the values move exactly."""
    n = x.shape[axis]
    index = const(ctx, np.arange(n, dtype=np.int32).reshape((n, 1) if axis == -2 else (1, n)))
    i, j = (v if isinstance(v, Var) else const(ctx, np.int32(v)) for v in (i, j))
    order = ctx.b.op("select", cond=ctx.b.op("equal", x=index, y=i), a=j, b=index)
    order = ctx.b.op("select", cond=ctx.b.op("equal", x=index, y=j), a=i, b=order)
    other = x.shape[-1] if axis == -2 else x.shape[-2]
    base = ctx.b.op("add", x=batch_scalar(ctx, x, 0, dt.int32),
                    y=const(ctx, np.zeros((1, other) if axis == -2 else (other, 1), np.int32)))
    return ctx.b.op("gather_along_axis", x=x, indices=ctx.b.op("add", x=order, y=base), axis=axis)


def replace_rows(ctx, x: Var, start: int, rows: Var) -> Var:
    """x with rows start.. replaced."""
    return concat(ctx, [block(ctx, x, (0, start)) if start else None, rows], -2)


def replace_trailing(ctx, x: Var, start: int, trailing: Var) -> Var:
    """x with the block [start:, start:] replaced (the rows above and columns left of it kept)."""
    n = x.shape[-1]
    lower = concat(ctx, [block(ctx, x, (start, n), (0, start)), trailing], -1)
    return replace_rows(ctx, x, start, lower)


def symmetric_from_lower(ctx, x: Var) -> Var:
    n = x.shape[-1]
    return where(ctx, positions((n, n), lambda r, c: r >= c), x, mT(ctx, x))


def power_of_two_scale(ctx, a: Var) -> tuple[Var, Var]:
    """(2^-e, 2^e) as (..., 1, 1) with 2^e >= max |a| (1 for a zero, inf or NaN matrix). Scaling by a
    power of two is exact, and with entries at most 1 sums of squares fit even fp16."""
    top = ctx.b.op("reduce_max", x=ctx.b.op("abs", x=a), axes=[-2, -1], keep_dims=True)
    e = ctx.b.op("ceil", x=ctx.b.op("mul", x=ctx.b.op("log", x=top, epsilon=0.0), y=fconst(ctx, 1.0 / math.log(2.0))))
    finite = ctx.b.op("logical_and", x=ctx.b.op("greater", x=top, y=fconst(ctx, 0.0)),
                      y=ctx.b.op("less", x=top, y=fconst(ctx, float(np.finfo(ctx.float_dtype.numpy).max))))
    e = ctx.b.op("select", cond=finite, a=e, b=fconst(ctx, 0.0))
    return ctx.b.op("exp2", x=ctx.b.op("mul", x=e, y=fconst(ctx, -1.0))), ctx.b.op("exp2", x=e)


# -- LU with partial pivoting (getrf) ---------------------------------------------------------------

class LUFactors:
    """L below the diagonal (unit diagonal implied) and U on and above it in one (..., m, n) matrix; the
    0-based row exchanged with row i at step i (..., k); U's diagonal (..., k); LAPACK's info (...)."""

    def __init__(self, lu: Var, swaps: Var, diag: Var, info: Var):
        self.lu, self.swaps, self.diag, self.info = lu, swaps, diag, info


def lu_factor(ctx, a: Var, pivot: bool = True) -> LUFactors:
    m, n = a.shape[-2:]
    swaps, diag = [], []
    for k in range(min(m, n)):
        if pivot and k < m - 1:
            # getrf's pivot: the first largest |value| of the column (argmax keeps the first of ties).
            column = ctx.b.op("abs", x=block(ctx, a, (k, m), (k, k + 1)))
            p = ctx.b.op("add", x=ctx.b.op("reduce_argmax", x=column, axis=-2, keep_dims=True),
                         y=const(ctx, np.int32(k)))
            a = exchange(ctx, a, k, p)
            swaps.append(p)
        else:
            swaps.append(batch_scalar(ctx, a, k, dt.int32))
        u_kk = entry(ctx, a, k, k)
        diag.append(u_kk)
        if k == m - 1:
            continue
        if pivot:
            # A zero pivot means the whole column below is zero: LAPACK leaves it as it is.
            u_kk = ctx.b.op("select", cond=ctx.b.op("equal", x=u_kk, y=fconst(ctx, 0.0)), a=fconst(ctx, 1.0), b=u_kk)
        multipliers = ctx.b.op("real_div", x=block(ctx, a, (k + 1, m), (k, k + 1)), y=u_kk)
        lower = [block(ctx, a, (k + 1, m), (0, k)) if k else None, multipliers]
        if k < n - 1:
            update = ctx.b.op("mul", x=multipliers, y=block(ctx, a, (k, k + 1), (k + 1, n)))
            lower.append(ctx.b.op("sub", x=block(ctx, a, (k + 1, m), (k + 1, n)), y=update))
        a = replace_rows(ctx, a, k + 1, concat(ctx, lower, -1))
    diag = steps(ctx, diag)
    return LUFactors(a, steps(ctx, swaps), diag, first_true(ctx, ctx.b.op("equal", x=diag, y=fconst(ctx, 0.0))))


def row_order(ctx, swaps: Var, m: int) -> Var:
    """The (..., m) row order the exchanges produce: B[order] is P^T B for A = P L U."""
    k = swaps.shape[-1]
    index = const(ctx, np.arange(m, dtype=np.int32), dt.int32)
    # arange(m) with the swaps' batch dims (an integer times 0 is exact).
    order = ctx.b.op("add", x=ctx.b.op("mul", x=last(ctx, swaps, 0, 1), y=const(ctx, np.int32(0))), y=index)
    for i in range(k):
        p = last(ctx, swaps, i, i + 1)
        here, there = last(ctx, order, i, i + 1), ctx.b.op("gather_along_axis", x=order, indices=p, axis=-1)
        order = ctx.b.op("select", cond=ctx.b.op("equal", x=index, y=p), a=here, b=order)
        order = where(ctx, np.arange(m) == i, there, order)
    return order


def permutation(ctx, order: Var, transpose: bool = False) -> Var:
    """The 0/1 matrix P^T of a row order (P^T[i, order[i]] = 1), or P when `transpose`. Products with
    it move values exactly (one 1 per row; only an inf or NaN elsewhere in the column would leak)."""
    m = order.shape[-1]
    index = const(ctx, np.arange(m, dtype=np.int32), dt.int32)
    if transpose:
        hits = ctx.b.op("equal", x=ctx.b.op("expand_dims", x=order, axes=[-2]),
                        y=const(ctx, np.arange(m, dtype=np.int32).reshape(m, 1)))
    else:
        hits = ctx.b.op("equal", x=ctx.b.op("expand_dims", x=order, axes=[-1]), y=index)
    return ctx.cast(hits, ctx.float_dtype)


def permutation_sign(ctx, swaps: Var) -> Var:
    """det(P) = (-1)^(number of actual exchanges), as a float (...)."""
    k = swaps.shape[-1]
    moved = ctx.b.op("not_equal", x=swaps, y=const(ctx, np.arange(k, dtype=np.int32), dt.int32))
    count = ctx.b.op("reduce_sum", x=ctx.cast(moved, dt.int32), axes=[-1], keep_dims=False)
    odd = ctx.cast(ctx.b.op("mod", x=count, y=const(ctx, np.int32(2))), ctx.float_dtype)
    return ctx.b.op("sub", x=fconst(ctx, 1.0), y=ctx.b.op("mul", x=odd, y=fconst(ctx, 2.0)))


# -- triangular substitution (trsm) -----------------------------------------------------------------

def substitute(ctx, t: Var, b: Var, *, lower: bool, unit: bool) -> Var:
    """Solve T X = B reading only T's lower (or upper) triangle; B is (..., n, k)."""
    n = t.shape[-1]
    b = broadcast_batch(ctx, b, t)
    solved = None
    for i in (range(n) if lower else range(n - 1, -1, -1)):
        row = block(ctx, b, (i, i + 1))
        if solved is not None:
            coeffs = block(ctx, t, (i, i + 1), (0, i) if lower else (i + 1, n))
            row = ctx.b.op("sub", x=row, y=ctx.b.op("matmul", x=coeffs, y=solved))
        if not unit:
            row = ctx.b.op("real_div", x=row, y=entry(ctx, t, i, i))
        solved = concat(ctx, [solved, row] if lower else [row, solved], -2)
    return solved


def lu_solve(ctx, lu: Var, swaps: Var, b: Var, *, left: bool = True, adjoint: bool = False) -> Var:
    """X with A X = B (X A = B when not left; A^T for adjoint) where A = P L U is given factored."""
    if not left:
        # X A = B  <=>  A^T X^T = B^T
        return mT(ctx, lu_solve(ctx, lu, swaps, mT(ctx, b), adjoint=not adjoint))
    order = row_order(ctx, swaps, lu.shape[-1])
    if not adjoint:
        y = ctx.b.op("matmul", x=permutation(ctx, order), y=b)
        y = substitute(ctx, lu, y, lower=True, unit=True)
        return substitute(ctx, lu, y, lower=False, unit=False)
    lu_t = mT(ctx, lu)
    z = substitute(ctx, lu_t, b, lower=True, unit=False)  # U^T z = B
    w = substitute(ctx, lu_t, z, lower=False, unit=True)  # L^T w = z
    return ctx.b.op("matmul", x=permutation(ctx, order), y=w, transpose_x=True)


# -- Cholesky (potrf) -------------------------------------------------------------------------------

def cholesky(ctx, a: Var) -> tuple[Var, Var]:
    """(L, info) with A = L L^T, reading only A's lower triangle. Column j is computed from the columns
    before it (left-looking), then scaled by the square root of its diagonal entry; info names the first
    non-positive (or NaN) diagonal, after which L holds NaN."""
    n = a.shape[-1]
    rows = np.arange(n).reshape(n, 1)
    columns, failed = None, []
    for j in range(n):
        col = block(ctx, a, (0, n), (j, j + 1))
        if columns is not None:
            row_j = block(ctx, columns, (j, j + 1))
            col = ctx.b.op("sub", x=col, y=ctx.b.op("matmul", x=columns, y=row_j, transpose_y=True))
        d = block(ctx, col, (j, j + 1))
        failed.append(ctx.b.op("logical_not", x=ctx.b.op("greater", x=d, y=fconst(ctx, 0.0))))
        root = ctx.b.op("sqrt", x=d)
        col = where(ctx, rows > j, ctx.b.op("real_div", x=col, y=root), root)
        col = where(ctx, rows >= j, col, fconst(ctx, 0.0))
        columns = concat(ctx, [columns, col], -1)
    return columns, first_true(ctx, steps(ctx, failed))


# -- Bunch-Kaufman LDL^T (sytf2, sytrs; lower triangle) ---------------------------------------------

_BK_ALPHA = (1 + math.sqrt(17)) / 8  # Bunch and Kaufman's growth-bounding threshold


class _Choice:
    """Step k's pivot decision for each matrix of the batch: `two` (a 2x2 block), `zero` (a zero column:
    nothing to eliminate) and kp, the 0-based row exchanged in."""

    def __init__(self, zero: Var, two: Var | None, kp):
        self.zero, self.two, self.kp = zero, two, kp


def _bunch_kaufman_choice(ctx, w: Var, k: int) -> _Choice:
    """sytf2's pivot search on the symmetric working matrix w at step k."""
    n = w.shape[-1]
    akk = entry(ctx, w, k, k)
    absakk = ctx.b.op("abs", x=akk)
    nan = ctx.b.op("not_equal", x=akk, y=akk)
    if k == n - 1:
        zero = ctx.b.op("logical_or", x=ctx.b.op("equal", x=absakk, y=fconst(ctx, 0.0)), y=nan)
        return _Choice(zero, None, k)
    below = ctx.b.op("abs", x=block(ctx, w, (k + 1, n), (k, k + 1)))
    imax = ctx.b.op("add", x=ctx.b.op("reduce_argmax", x=below, axis=-2, keep_dims=True),
                    y=const(ctx, np.int32(k + 1)))
    colmax = ctx.b.op("reduce_max", x=below, axes=[-2], keep_dims=True)
    # Row imax, off its diagonal, from column k on (w is symmetric, so this is sytf2's row and column scan).
    row = ctx.b.op("gather_along_axis", x=w, axis=-2, indices=ctx.b.op(
        "add", x=imax, y=const(ctx, np.zeros((1, n), np.int32))))
    aii = ctx.b.op("abs", x=ctx.b.op("gather_along_axis", x=row, indices=imax, axis=-1))
    cols = const(ctx, np.arange(n, dtype=np.int32).reshape(1, n))
    off = ctx.b.op("logical_and", x=const(ctx, np.arange(n).reshape(1, n) >= k),
                   y=ctx.b.op("not_equal", x=cols, y=imax))
    rowmax = ctx.b.op("reduce_max", x=ctx.b.op("select", cond=off, a=ctx.b.op("abs", x=row),
                                                  b=fconst(ctx, 0.0)), axes=[-1], keep_dims=True)
    alpha = fconst(ctx, _BK_ALPHA)
    alpha_col = ctx.b.op("mul", x=colmax, y=alpha)
    keep = ctx.b.op("greater_equal", x=absakk, y=alpha_col)
    keep = ctx.b.op("logical_or", x=keep, y=ctx.b.op("greater_equal", x=absakk, y=ctx.b.op(
        "mul", x=alpha_col, y=ctx.b.op("real_div", x=colmax, y=rowmax))))
    zero = ctx.b.op("logical_or", x=ctx.b.op("equal", x=ctx.b.op("maximum", x=absakk, y=colmax),
                                             y=fconst(ctx, 0.0)), y=nan)
    keep = ctx.b.op("logical_or", x=keep, y=zero)
    one = ctx.b.op("logical_or", x=keep, y=ctx.b.op("greater_equal", x=aii, y=ctx.b.op("mul", x=rowmax, y=alpha)))
    return _Choice(zero, ctx.b.op("logical_not", x=one),
                   ctx.b.op("select", cond=keep, a=const(ctx, np.int32(k)), b=imax))


def ldl_factor(ctx, a: Var) -> tuple[Var, Var, Var]:
    """(LD, pivots, info) as LAPACK's sytf2 on A's lower triangle: D's 1x1 and 2x2 blocks on and below
    the diagonal of LD, L's multipliers below them; pivots are 1-based, negative for both columns of a
    2x2 block. Each step computes both block kinds and keeps, per matrix, the one sytf2 takes; the step
    after a 2x2 block keeps what that block wrote."""
    n = a.shape[-1]
    rows = np.arange(n).reshape(n, 1)
    w = symmetric_from_lower(ctx, a)
    columns, pivots, zeros = [], [], []
    skip = pending = pending_pivot = None
    for k in range(n):
        choice = _bunch_kaufman_choice(ctx, w, k)
        w_in = w
        if choice.two is not None:
            kk = ctx.b.op("add", x=ctx.cast(choice.two, dt.int32), y=const(ctx, np.int32(k)))
            w = exchange(ctx, exchange(ctx, w, kk, choice.kp), kk, choice.kp, axis=-1)
        c_k = block(ctx, w, (0, n), (k, k + 1))
        # A 1x1 block: L's column is w's below the diagonal over D(k); rank-1 update of the rest.
        inv_d = ctx.b.op("real_div", x=fconst(ctx, 1.0), y=entry(ctx, w, k, k))
        one = where(ctx, rows > k, ctx.b.op("mul", x=c_k, y=inv_d), c_k)
        col = ctx.b.op("select", cond=choice.zero, a=where(ctx, rows >= k, c_k, fconst(ctx, 0.0)),
                       b=where(ctx, rows >= k, one, fconst(ctx, 0.0)))
        kp1 = ctx.b.op("add", x=choice.kp, y=const(ctx, np.int32(1))) if isinstance(choice.kp, Var) \
            else batch_scalar(ctx, w, k + 1, dt.int32)
        pivot = kp1
        if k < n - 1:
            x = block(ctx, c_k, (k + 1, n))
            scaled = ctx.b.op("mul", x=mT(ctx, x), y=ctx.b.op("mul", x=inv_d, y=fconst(ctx, -1.0)))
            trailing = ctx.b.op("add", x=block(ctx, w, (k + 1, n), (k + 1, n)), y=ctx.b.op("mul", x=x, y=scaled))
            w_one = replace_trailing(ctx, w, k + 1, symmetric_from_lower(ctx, trailing))
            w_next = ctx.b.op("select", cond=choice.zero, a=w, b=w_one)
        if choice.two is not None:
            col_2, next_2, w_two = _two_by_two(ctx, w, k)
            col = ctx.b.op("select", cond=choice.two, a=col_2, b=col)
            w_next = ctx.b.op("select", cond=choice.two, a=w_two, b=w_next)
            minus_kp1 = ctx.b.op("mul", x=kp1, y=const(ctx, np.int32(-1)))
            pivot = ctx.b.op("select", cond=choice.two, a=minus_kp1, b=kp1)
        zero, two = choice.zero, choice.two
        if skip is not None:
            # The second column of the previous step's 2x2 block: already factored.
            col = ctx.b.op("select", cond=skip, a=pending, b=col)
            pivot = ctx.b.op("select", cond=skip, a=pending_pivot, b=pivot)
            if k < n - 1:
                w_next = ctx.b.op("select", cond=skip, a=w_in, b=w_next)
            not_skip = ctx.b.op("logical_not", x=skip)
            zero = ctx.b.op("logical_and", x=zero, y=not_skip)
            two = ctx.b.op("logical_and", x=two, y=not_skip) if two is not None else None
        columns.append(col)
        pivots.append(pivot)
        zeros.append(zero)
        if two is not None:
            skip, pending, pending_pivot = two, next_2, minus_kp1
        if k < n - 1:
            w = w_next
    return concat(ctx, columns, -1), steps(ctx, pivots), first_true(ctx, steps(ctx, zeros))


def _two_by_two(ctx, w: Var, k: int) -> tuple[Var, Var, Var]:
    """A 2x2 block at rows/columns k, k+1 of the (exchanged) working matrix: LD's columns k and k+1
    and the working matrix after sytf2's rank-2 update, in sytf2's order of operations."""
    n = w.shape[-1]
    rows = np.arange(n).reshape(n, 1)
    c_k, c_k1 = block(ctx, w, (0, n), (k, k + 1)), block(ctx, w, (0, n), (k + 1, k + 2))
    d21 = entry(ctx, w, k + 1, k)
    d11 = ctx.b.op("real_div", x=entry(ctx, w, k + 1, k + 1), y=d21)
    d22 = ctx.b.op("real_div", x=entry(ctx, w, k, k), y=d21)
    t = ctx.b.op("real_div", x=fconst(ctx, 1.0),
                 y=ctx.b.op("sub", x=ctx.b.op("mul", x=d11, y=d22), y=fconst(ctx, 1.0)))
    d21 = ctx.b.op("real_div", x=t, y=d21)
    w_k = ctx.b.op("mul", x=d21, y=ctx.b.op("sub", x=ctx.b.op("mul", x=d11, y=c_k), y=c_k1))
    w_k1 = ctx.b.op("mul", x=d21, y=ctx.b.op("sub", x=ctx.b.op("mul", x=d22, y=c_k1), y=c_k))
    col = where(ctx, rows >= k + 2, w_k, where(ctx, rows >= k, c_k, fconst(ctx, 0.0)))
    col_next = where(ctx, rows >= k + 2, w_k1, where(ctx, rows == k + 1, c_k1, fconst(ctx, 0.0)))
    if k + 2 >= n:
        return col, col_next, w
    a_k, a_k1 = block(ctx, c_k, (k + 2, n)), block(ctx, c_k1, (k + 2, n))
    trailing = block(ctx, w, (k + 2, n), (k + 2, n))
    trailing = ctx.b.op("sub", x=trailing, y=ctx.b.op("mul", x=a_k, y=mT(ctx, block(ctx, w_k, (k + 2, n)))))
    trailing = ctx.b.op("sub", x=trailing, y=ctx.b.op("mul", x=a_k1, y=mT(ctx, block(ctx, w_k1, (k + 2, n)))))
    return col, col_next, replace_trailing(ctx, w, k + 2, symmetric_from_lower(ctx, trailing))


def ldl_solve(ctx, ld: Var, pivots: Var, b: Var) -> Var:
    """X with A X = B from sytf2's (LD, pivots), as LAPACK's sytrs: L D Y = P B forward, then
    L^T P^T X = Y backward, each step taking the 1x1 or 2x2 path its pivot says."""
    n = ld.shape[-1]
    b = broadcast_batch(ctx, b, ld)
    piv = ctx.b.op("expand_dims", x=ctx.cast(pivots, dt.int32), axes=[-1])  # (..., n, 1)
    minus_one = const(ctx, np.int32(-1))

    def pivot_at(k):
        # (2x2 block?, the 0-based row exchanged): a 1x1 pivot p names row p, a 2x2 one row -p.
        p = block(ctx, piv, (k, k + 1))
        return ctx.b.op("less", x=p, y=const(ctx, np.int32(0))), ctx.b.op("add", x=ctx.b.op("abs", x=p), y=minus_one)

    skip = None
    for k in range(n):
        pair, kp = pivot_at(k)
        one = exchange(ctx, b, k, kp)
        row = ctx.b.op("mul", x=block(ctx, one, (k, k + 1)),
                       y=ctx.b.op("real_div", x=fconst(ctx, 1.0), y=entry(ctx, ld, k, k)))
        rest = None
        if k < n - 1:
            rest = ctx.b.op("sub", x=block(ctx, one, (k + 1, n)),
                            y=ctx.b.op("mul", x=block(ctx, ld, (k + 1, n), (k, k + 1)), y=block(ctx, one, (k, k + 1))))
        new = replace_rows(ctx, one, k, concat(ctx, [row, rest], -2))
        if k < n - 1:
            new = ctx.b.op("select", cond=pair, a=_forward_pair(ctx, ld, exchange(ctx, b, k + 1, kp), k), b=new)
        if skip is not None:
            new = ctx.b.op("select", cond=skip, a=b, b=new)
            pair = ctx.b.op("logical_and", x=pair, y=ctx.b.op("logical_not", x=skip))
        b, skip = new, pair
    skip = None
    for k in range(n - 1, -1, -1):
        pair, kp = pivot_at(k)
        updated = b
        if k < n - 1:
            rest = block(ctx, b, (k + 1, n))
            fix = ctx.b.op("matmul", x=block(ctx, ld, (k + 1, n), (k, k + 1)), y=rest, transpose_x=True)
            row = ctx.b.op("sub", x=block(ctx, b, (k, k + 1)), y=fix)
            updated = replace_rows(ctx, b, k, concat(ctx, [row, rest], -2))
        new = exchange(ctx, updated, k, kp)
        if k > 0:
            # The second row of a 2x2 block (rows k-1, k): row k-1 gets its share too.
            both = updated
            if k < n - 1:
                fix = ctx.b.op("matmul", x=block(ctx, ld, (k + 1, n), (k - 1, k)), y=rest, transpose_x=True)
                first = ctx.b.op("sub", x=block(ctx, b, (k - 1, k)), y=fix)
                both = replace_rows(ctx, updated, k - 1, concat(ctx, [first, block(ctx, updated, (k, n))], -2))
            new = ctx.b.op("select", cond=pair, a=exchange(ctx, both, k, kp), b=new)
        if skip is not None:
            new = ctx.b.op("select", cond=skip, a=b, b=new)
            pair = ctx.b.op("logical_and", x=pair, y=ctx.b.op("logical_not", x=skip))
        b, skip = new, pair
    return b


def _forward_pair(ctx, ld: Var, b: Var, k: int) -> Var:
    """sytrs's forward step on a 2x2 block at rows k, k+1 (after its row exchange)."""
    n = ld.shape[-1]
    r0, r1 = block(ctx, b, (k, k + 1)), block(ctx, b, (k + 1, k + 2))
    rest = None
    if k + 2 < n:
        rest = block(ctx, b, (k + 2, n))
        rest = ctx.b.op("sub", x=rest, y=ctx.b.op("mul", x=block(ctx, ld, (k + 2, n), (k, k + 1)), y=r0))
        rest = ctx.b.op("sub", x=rest, y=ctx.b.op("mul", x=block(ctx, ld, (k + 2, n), (k + 1, k + 2)), y=r1))
    akm1k = entry(ctx, ld, k + 1, k)
    akm1 = ctx.b.op("real_div", x=entry(ctx, ld, k, k), y=akm1k)
    ak = ctx.b.op("real_div", x=entry(ctx, ld, k + 1, k + 1), y=akm1k)
    denom = ctx.b.op("sub", x=ctx.b.op("mul", x=akm1, y=ak), y=fconst(ctx, 1.0))
    bkm1, bk = ctx.b.op("real_div", x=r0, y=akm1k), ctx.b.op("real_div", x=r1, y=akm1k)
    new0 = ctx.b.op("real_div", x=ctx.b.op("sub", x=ctx.b.op("mul", x=ak, y=bkm1), y=bk), y=denom)
    new1 = ctx.b.op("real_div", x=ctx.b.op("sub", x=ctx.b.op("mul", x=akm1, y=bk), y=bkm1), y=denom)
    return replace_rows(ctx, b, k, concat(ctx, [new0, new1, rest], -2))
