"""Dense linear algebra lowerings: det, slogdet, inv, solve, LU (lu_factor, lu, lu_unpack, lu_solve),
Cholesky (cholesky, cholesky_solve, cholesky_inverse), LDL^T (ldl_factor, ldl_solve), triangular solves,
QR (geqrf, qr, householder_product, ormqr), SVD, symmetric eigendecomposition, pinv and matrix_exp.
tensorinv, tensorsolve, logdet, cond, matrix_rank, svdvals, the nuclear and 2-norms and the ops without
`_ex` reach these through torch's decompositions.

MIL has matmul but no factorization or solve op: `_linalg_core` unrolls LAPACK's algorithms over the
(static) matrix size on whole batched tensors (`_linalg_householder` likewise for QR), `_linalg_jacobi`
runs Jacobi sweeps in a while_loop for SVD and eigh; batch dims may vary at run time.

torch's outputs depend on LAPACK's choices, which are kept: getrf's pivot is the first largest |value| of
the column, a zero pivot leaves its column unscaled, pivots are 1-based int32, det/slogdet/solve/inv factor
A^T as torch does for contiguous real A, LDL^T takes sytf2's 1x1/2x2 blocks, and info outputs name the
first zero pivot (LU, LDL^T) or non-positive diagonal (Cholesky). torch raises on a nonzero info through
`_linalg_check_errors` (exported behind an effect token); a Core ML program cannot raise, so that check is
dropped and a singular or indefinite input yields inf/NaN where torch would raise. Singular vectors and
eigenvectors are unique only up to sign: Jacobi's signs differ from LAPACK's (torch documents that they
may differ across backends), while everything built from them (pinv, reconstructions) matches.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...mil import dtypes as dt
from ...mil.program import Var
from ..registry import lowering
from . import _linalg_core as core
from . import _linalg_householder as householder
from . import _linalg_jacobi as jacobi
from .elementwise import to_float

aten = torch.ops.aten


def _solve(ctx, a: Var, b: Var, left: bool = True) -> tuple[Var, core.LUFactors]:
    """torch's solve: factor A^T (A is contiguous in its eyes) and solve with the adjoint."""
    factored = core.lu_factor(ctx, core.mT(ctx, a))
    return core.lu_solve(ctx, factored.lu, factored.swaps, b, left=left, adjoint=True), factored


def _pivots(ctx, swaps: Var) -> Var:
    return ctx.b.op("add", x=swaps, y=core.const(ctx, np.int32(1)))  # LAPACK numbers rows from 1


def _swaps(ctx, pivots: Var) -> Var:
    return ctx.b.op("sub", x=ctx.cast(pivots, dt.int32), y=core.const(ctx, np.int32(1)))


def _matrix(ctx, x: Var, what: str, square: bool = True) -> Var:
    """x in the program's float type, refused unless its matrix dims are static and small enough."""
    x = to_float(ctx, x)
    core.matrix_dims(ctx, x, what, square)
    return x


def _lower_factor(ctx, factor: Var, upper: bool) -> Var:
    """A Cholesky factor given as U (A = U^T U) or L (A = L L^T), as the L with A = L L^T."""
    return core.mT(ctx, factor) if upper else factor


# -- determinants -----------------------------------------------------------------------------------

@lowering(aten._linalg_det.default)
def linalg_det(ctx, A):
    """_linalg_det(Tensor A) -> (Tensor result, Tensor LU, Tensor pivots)"""
    f = core.lu_factor(ctx, core.mT(ctx, _matrix(ctx, A, "det")))
    diag_product = ctx.b.op("reduce_prod", x=f.diag, axes=[-1], keep_dims=False)
    det = ctx.b.op("mul", x=diag_product, y=core.permutation_sign(ctx, f.swaps))
    return det, f.lu, _pivots(ctx, f.swaps)


@lowering(aten._linalg_slogdet.default)
def linalg_slogdet(ctx, A):
    """_linalg_slogdet(Tensor A) -> (Tensor sign, Tensor logabsdet, Tensor LU, Tensor pivots)"""
    f = core.lu_factor(ctx, core.mT(ctx, _matrix(ctx, A, "slogdet")))
    signs = ctx.b.op("reduce_prod", x=ctx.b.op("sign", x=f.diag), axes=[-1], keep_dims=False)
    sign = ctx.b.op("mul", x=signs, y=core.permutation_sign(ctx, f.swaps))
    log_abs = ctx.b.op("log", x=ctx.b.op("abs", x=f.diag), epsilon=0.0)  # a zero pivot gives -inf
    return sign, ctx.b.op("reduce_sum", x=log_abs, axes=[-1], keep_dims=False), f.lu, _pivots(ctx, f.swaps)


# -- LU ---------------------------------------------------------------------------------------------

@lowering(aten.linalg_lu_factor_ex.default)
def linalg_lu_factor_ex(ctx, A, pivot=True, check_errors=False):
    """linalg_lu_factor_ex(Tensor A, *, bool pivot=True, bool check_errors=False) -> (Tensor LU, Tensor pivots, Tensor info)"""
    # pivot=False (CUDA-only in torch) factors without exchanges; its pivots are then 1..k.
    f = core.lu_factor(ctx, _matrix(ctx, A, "LU factorization", square=False), pivot)
    return f.lu, _pivots(ctx, f.swaps), f.info


def _unpack(ctx, lu: Var, swaps: Var) -> tuple[Var, Var, Var]:
    """(P, L, U) from a packed LU matrix: L is m x k with a unit diagonal, U is k x n."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    p = core.permutation(ctx, core.row_order(ctx, swaps, m), transpose=True)
    lower = core.where(ctx, core.positions((m, k), lambda r, c: r > c), core.block(ctx, lu, (0, m), (0, k)),
                       core.eye(ctx, m, k))
    upper = core.where(ctx, core.positions((k, n), lambda r, c: r <= c), core.block(ctx, lu, (0, k)),
                       core.fconst(ctx, 0.0))
    return p, lower, upper


@lowering(aten.linalg_lu.default)
def linalg_lu(ctx, A, pivot=True):
    """linalg_lu(Tensor A, *, bool pivot=True) -> (Tensor P, Tensor L, Tensor U)"""
    if not pivot:
        raise ctx.unsupported("linalg_lu with pivot=False returns an empty P; Core ML has no empty tensors")
    f = core.lu_factor(ctx, _matrix(ctx, A, "LU factorization", square=False))
    return _unpack(ctx, f.lu, f.swaps)


@lowering(aten.lu_unpack.default)
def lu_unpack(ctx, LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    """lu_unpack(Tensor LU_data, Tensor LU_pivots, bool unpack_data=True, bool unpack_pivots=True) -> (Tensor P, Tensor L, Tensor U)"""
    if not (unpack_data and unpack_pivots):
        raise ctx.unsupported("lu_unpack with unpack_data=False or unpack_pivots=False returns empty tensors; "
                              "Core ML has no empty tensors")
    return _unpack(ctx, _matrix(ctx, LU_data, "lu_unpack", square=False), _swaps(ctx, LU_pivots))


@lowering(aten.linalg_lu_solve.default)
def linalg_lu_solve(ctx, LU, pivots, B, left=True, adjoint=False):
    """linalg_lu_solve(Tensor LU, Tensor pivots, Tensor B, *, bool left=True, bool adjoint=False) -> Tensor"""
    lu = _matrix(ctx, LU, "lu_solve")
    return core.lu_solve(ctx, lu, _swaps(ctx, pivots), to_float(ctx, B), left=left, adjoint=adjoint)


# -- inverse and solves -----------------------------------------------------------------------------

@lowering(aten.linalg_inv_ex.default)
def linalg_inv_ex(ctx, A, check_errors=False):
    """linalg_inv_ex(Tensor A, *, bool check_errors=False) -> (Tensor inverse, Tensor info)"""
    a = _matrix(ctx, A, "inverse")
    x, f = _solve(ctx, a, core.eye(ctx, a.shape[-1]))
    return x, f.info


@lowering(aten._linalg_solve_ex.default)
def linalg_solve_ex(ctx, A, B, left=True, check_errors=False):
    """_linalg_solve_ex(Tensor A, Tensor B, *, bool left=True, bool check_errors=False) -> (Tensor result, Tensor LU, Tensor pivots, Tensor info)"""
    a, b = _matrix(ctx, A, "solve"), to_float(ctx, B)
    # torch treats B as a vector when it is 1-D or has A's shape without its last dim.
    vector = b.rank == 1 or (b.rank == a.rank - 1 and tuple(b.shape) == tuple(a.shape[:-1]))
    axis = -1 if left else -2
    if vector:
        b = ctx.b.op("expand_dims", x=b, axes=[axis])
    x, f = _solve(ctx, a, b, left)
    if vector:
        x = ctx.b.op("squeeze", x=x, axes=[axis])
    return x, f.lu, _pivots(ctx, f.swaps), f.info


@lowering(aten._linalg_check_errors.default)
def linalg_check_errors(ctx, info, api_name, is_matrix):
    """_linalg_check_errors(Tensor info, str api_name, *, bool is_matrix) -> ()"""
    # torch raises here when info is nonzero; a Core ML program cannot raise, so the check is dropped
    # (the result then holds inf/NaN, and the *_ex ops' info outputs still report the failure).
    return None


@lowering(aten.linalg_solve_triangular.default)
def linalg_solve_triangular(ctx, self, B, upper, left=True, unitriangular=False):
    """linalg_solve_triangular(Tensor self, Tensor B, *, bool upper, bool left=True, bool unitriangular=False) -> Tensor"""
    t, b = _matrix(ctx, self, "solve_triangular"), to_float(ctx, B)
    if left:
        return core.substitute(ctx, t, b, lower=not upper, unit=unitriangular)
    # X T = B  <=>  T^T X^T = B^T, and T^T is triangular the other way.
    x_t = core.substitute(ctx, core.mT(ctx, t), core.mT(ctx, b), lower=upper, unit=unitriangular)
    return core.mT(ctx, x_t)


@lowering(aten.triangular_solve.default)
def triangular_solve(ctx, self, A, upper=True, transpose=False, unitriangular=False):
    """triangular_solve(Tensor self, Tensor A, bool upper=True, bool transpose=False, bool unitriangular=False) -> (Tensor solution, Tensor cloned_coefficient)"""
    b, t = to_float(ctx, self), _matrix(ctx, A, "triangular_solve")
    x = core.substitute(ctx, core.mT(ctx, t) if transpose else t, b, lower=upper == transpose, unit=unitriangular)
    return x, core.broadcast_batch(ctx, t, b)


# -- Cholesky ---------------------------------------------------------------------------------------

def _cholesky(ctx, a, upper: bool) -> tuple[Var, Var]:
    """(L, or U when `upper`, and info). LAPACK reads only the lower (upper) triangle of A."""
    a = _matrix(ctx, a, "Cholesky factorization")
    lower, info = core.cholesky(ctx, core.mT(ctx, a) if upper else a)
    return (core.mT(ctx, lower) if upper else lower), info


@lowering(aten.linalg_cholesky_ex.default)
def linalg_cholesky_ex(ctx, self, upper=False, check_errors=False):
    """linalg_cholesky_ex(Tensor self, *, bool upper=False, bool check_errors=False) -> (Tensor L, Tensor info)"""
    return _cholesky(ctx, self, upper)


@lowering(aten.cholesky.default)
def cholesky(ctx, self, upper=False):
    """cholesky(Tensor self, bool upper=False) -> Tensor"""
    return _cholesky(ctx, self, upper)[0]


@lowering(aten.cholesky_solve.default)
def cholesky_solve(ctx, self, input2, upper=False):
    """cholesky_solve(Tensor self, Tensor input2, bool upper=False) -> Tensor"""
    lower = _lower_factor(ctx, _matrix(ctx, input2, "cholesky_solve"), upper)
    y = core.substitute(ctx, lower, to_float(ctx, self), lower=True, unit=False)
    return core.substitute(ctx, core.mT(ctx, lower), y, lower=False, unit=False)


@lowering(aten.cholesky_inverse.default)
def cholesky_inverse(ctx, self, upper=False):
    """cholesky_inverse(Tensor self, bool upper=False) -> Tensor"""
    lower = _lower_factor(ctx, _matrix(ctx, self, "cholesky_inverse"), upper)
    inv_lower = core.substitute(ctx, lower, core.eye(ctx, lower.shape[-1]), lower=True, unit=False)
    # A^-1 = L^-T L^-1; as one matmul of L^-1 with itself the result is exactly symmetric.
    return ctx.b.op("matmul", x=inv_lower, y=inv_lower, transpose_x=True)


# -- LDL^T (Bunch-Kaufman) --------------------------------------------------------------------------

@lowering(aten.linalg_ldl_factor_ex.default)
def linalg_ldl_factor_ex(ctx, self, hermitian=False, check_errors=False):
    """linalg_ldl_factor_ex(Tensor self, *, bool hermitian=False, bool check_errors=False) -> (Tensor LD, Tensor pivots, Tensor info)"""
    # For real matrices hermitian and symmetric are the same factorization.
    return core.ldl_factor(ctx, _matrix(ctx, self, "LDL factorization"))


@lowering(aten.linalg_ldl_solve.default)
def linalg_ldl_solve(ctx, LD, pivots, B, hermitian=False):
    """linalg_ldl_solve(Tensor LD, Tensor pivots, Tensor B, *, bool hermitian=False) -> Tensor"""
    return core.ldl_solve(ctx, _matrix(ctx, LD, "ldl_solve"), pivots, to_float(ctx, B))


# -- QR (Householder) -------------------------------------------------------------------------------

@lowering(aten.geqrf.default)
def geqrf(ctx, self):
    """geqrf(Tensor self) -> (Tensor a, Tensor tau)"""
    return householder.geqrf(ctx, _matrix(ctx, self, "geqrf", square=False))


@lowering(aten.linalg_qr.default)
def linalg_qr(ctx, A, mode="reduced"):
    """linalg_qr(Tensor A, str mode="reduced") -> (Tensor Q, Tensor R)"""
    if mode not in ("reduced", "complete", "r"):
        raise ctx.unsupported(f"qr with mode={mode!r}")
    a = _matrix(ctx, A, "qr", square=False)
    m, n = a.shape[-2:]
    packed, tau = householder.geqrf(ctx, a)
    rows = m if mode == "complete" else min(m, n)
    r = core.where(ctx, core.positions((rows, n), lambda i, j: i <= j), core.block(ctx, packed, (0, rows)),
                   core.fconst(ctx, 0.0))
    if mode == "r":
        return None, r  # torch's Q is then empty; nothing reads it
    if rows > n:  # complete Q of a tall matrix: the columns past the reflectors start as the identity's
        pad = [0, 0] * (a.rank - 1) + [0, rows - n]
        basis = ctx.b.op("pad", x=packed, pad=core.const(ctx, np.int32(pad)), mode="constant", constant_val=0.0)
    else:
        basis = core.block(ctx, packed, (0, m), (0, rows))
    return householder.householder_product(ctx, basis, tau), r


@lowering(aten.linalg_householder_product.default)
def linalg_householder_product(ctx, input, tau):  # noqa: A002 - the schema's name
    """linalg_householder_product(Tensor input, Tensor tau) -> Tensor"""
    a = _matrix(ctx, input, "householder_product", square=False)
    m, n = a.shape[-2:]
    k = tau.shape[-1] if tau.rank else None
    if not isinstance(k, int) or not m >= n >= k:
        raise ctx.unsupported(f"householder_product needs m >= n >= k (static), got {m}x{n} and k={k}")
    return householder.householder_product(ctx, a, to_float(ctx, tau))


@lowering(aten.ormqr.default)
def ormqr(ctx, self, input2, input3, left=True, transpose=False):
    """ormqr(Tensor self, Tensor input2, Tensor input3, bool left=True, bool transpose=False) -> Tensor"""
    a = _matrix(ctx, self, "ormqr", square=False)
    c = _matrix(ctx, input3, "ormqr", square=False)
    k = input2.shape[-1] if input2.rank else None
    if not isinstance(k, int) or k > a.shape[-1]:
        raise ctx.unsupported(f"ormqr needs a static tau of at most {a.shape[-1]} reflectors, got {input2.shape}")
    return householder.apply_q(ctx, a, to_float(ctx, input2), c, left=left, transpose=transpose)


# -- SVD, symmetric eigendecomposition and pseudo-inverse (Jacobi) -------------------------------------

@lowering(aten._linalg_svd.default)
def linalg_svd(ctx, A, full_matrices=False, compute_uv=True, driver=None):
    """_linalg_svd(Tensor A, bool full_matrices=False, bool compute_uv=True, *, str? driver=None) -> (Tensor U, Tensor S, Tensor Vh)"""
    a = _matrix(ctx, A, "svd", square=False)
    m, n = a.shape[-2:]
    if compute_uv and full_matrices and m != n:
        raise ctx.unsupported(f"svd with full_matrices=True of a {m}x{n} matrix: completing U or V to a square "
                              "orthonormal basis is not implemented (full_matrices=False is)")
    # Without compute_uv torch returns empty U and Vh, which nothing reads; they are left out.
    return jacobi.svd(ctx, a, compute_uv)


@lowering(aten._linalg_eigh.default)
def linalg_eigh(ctx, A, UPLO="L", compute_v=True):
    """_linalg_eigh(Tensor A, str UPLO="L", bool compute_v=True) -> (Tensor eigenvalues, Tensor eigenvectors)"""
    a = _matrix(ctx, A, "eigh")
    if UPLO not in ("L", "U"):
        raise ctx.unsupported(f"eigh with UPLO={UPLO!r}")
    # LAPACK reads one triangle only.
    return jacobi.eigh(ctx, core.symmetric_from_lower(ctx, a if UPLO == "L" else core.mT(ctx, a)), compute_v)


def _default_rtol(ctx, n: int) -> float:
    """torch's default relative cutoff: eps of the input's dtype times its larger matrix dim."""
    val = ctx.node.args[0].meta.get("val") if ctx.node is not None and ctx.node.args else None
    dtype = val.dtype if isinstance(val, torch.Tensor) and val.dtype.is_floating_point else torch.float32
    return torch.finfo(dtype).eps * n


@lowering(aten.linalg_pinv.atol_rtol_tensor)
def linalg_pinv(ctx, self, atol=None, rtol=None, hermitian=False):
    """linalg_pinv.atol_rtol_tensor(Tensor self, *, Tensor? atol=None, Tensor? rtol=None, bool hermitian=False) -> Tensor"""
    a = _matrix(ctx, self, "pinv", square=hermitian)
    zero = core.fconst(ctx, 0.0)
    default = core.fconst(ctx, _default_rtol(ctx, max(a.shape[-2:])))
    if rtol is None:
        # Given a positive atol alone, torch drops the relative cutoff.
        rtol = default if atol is None else ctx.b.op("mul", x=default, y=ctx.cast(
            ctx.b.op("less_equal", x=to_float(ctx, atol), y=zero), ctx.float_dtype))
    atol = zero if atol is None else to_float(ctx, atol)
    cut = [v if v.rank == 0 and v.is_const else ctx.b.op("expand_dims", x=to_float(ctx, v), axes=[-1])
           for v in (atol, to_float(ctx, rtol))]
    if hermitian:
        values, vectors = jacobi.eigh(ctx, core.symmetric_from_lower(ctx, a), True)
        magnitude = ctx.b.op("abs", x=values)
        top = ctx.b.op("reduce_max", x=magnitude, axes=[-1], keep_dims=True)
        left, right = vectors, core.mT(ctx, vectors)
    else:
        u, values, vh = jacobi.svd(ctx, a, True)
        magnitude, top = values, core.last(ctx, values, 0, 1)  # sorted: the first is the largest
        left, right = core.mT(ctx, vh), core.mT(ctx, u)
    tol = ctx.b.op("maximum", x=cut[0], y=ctx.b.op("mul", x=cut[1], y=top))
    inverse = ctx.b.op("select", cond=ctx.b.op("greater", x=magnitude, y=tol),
                       a=ctx.b.op("real_div", x=core.fconst(ctx, 1.0), y=values), b=zero)
    scaled = ctx.b.op("mul", x=left, y=ctx.b.op("expand_dims", x=inverse, axes=[-2]))
    return ctx.b.op("matmul", x=scaled, y=right)


# -- matrix exponential -----------------------------------------------------------------------------

# torch's float32 bound on the 1-norm for its degree-18 approximant: scaling to it gives torch's count
# of squarings, which is what decides how rounding errors grow.
_EXP_THETA = 3.010066362817634
_EXP_DEGREE = 18
_EXP_BLOCK = 4  # Paterson-Stockmeyer block: powers up to A^4, then Horner in A^4 (7 matmuls in all)


def _taylor_exp(ctx, a: Var) -> Var:
    """sum_i a^i / i! up to _EXP_DEGREE by Paterson-Stockmeyer; every partial result stays near
    exp(a), so fp16 programs do not overflow on the high powers."""
    n = a.shape[-1]
    powers = [None, a]
    for _ in range(_EXP_BLOCK - 1):
        powers.append(ctx.b.op("matmul", x=powers[-1], y=a))
    top = powers.pop()  # a^4
    coeffs = [1.0 / math.factorial(i) for i in range(_EXP_DEGREE + 1)]

    def group(j):  # sum over i < _EXP_BLOCK of c[j * _EXP_BLOCK + i] a^i
        terms = coeffs[j * _EXP_BLOCK:(j + 1) * _EXP_BLOCK]
        total = core.const(ctx, np.eye(n) * terms[0], ctx.float_dtype)
        for c, p in zip(terms[1:], powers[1:]):
            total = ctx.b.op("add", x=total, y=ctx.b.op("mul", x=p, y=core.fconst(ctx, c)))
        return total

    groups = -(-len(coeffs) // _EXP_BLOCK)
    result = group(groups - 1)
    for j in range(groups - 2, -1, -1):
        result = ctx.b.op("add", x=ctx.b.op("matmul", x=result, y=top), y=group(j))
    return result


@lowering(aten.linalg_matrix_exp.default)
def linalg_matrix_exp(ctx, self):
    """linalg_matrix_exp(Tensor self) -> Tensor"""
    a = _matrix(ctx, self, "matrix_exp")
    # Scaling and squaring: exp(A) = exp(A / 2^s)^(2^s) with s chosen so ||A / 2^s||_1 <= theta.
    column_sums = ctx.b.op("reduce_sum", x=ctx.b.op("abs", x=a), axes=[-2], keep_dims=True)
    norm = ctx.b.op("reduce_max", x=column_sums, axes=[-1], keep_dims=True)
    log2 = ctx.b.op("mul", x=ctx.b.op("log", x=ctx.b.op("real_div", x=norm, y=_EXP_THETA), epsilon=0.0),
                    y=1.0 / math.log(2.0))
    # NaN (a NaN input) and huge values clip; the result is NaN or overflows as torch's does.
    s = ctx.b.op("ceil", x=ctx.b.op("clip", x=log2, alpha=0.0, beta=126.0))
    s = ctx.b.op("select", cond=ctx.b.op("equal", x=s, y=s), a=s, b=0.0)
    scaled = ctx.b.op("mul", x=a, y=ctx.b.op("exp2", x=ctx.b.op("mul", x=s, y=-1.0)))
    result = _taylor_exp(ctx, scaled)
    steps = ctx.cast(s, dt.int32)
    rounds = ctx.b.op("reduce_max", x=ctx.b.op("reshape", x=steps, shape=[-1]), axes=[0], keep_dims=False)

    def more(b, loop_vars):
        return b.op("less", x=loop_vars[1], y=rounds)

    def square(b, loop_vars):
        x, i = loop_vars
        x = b.op("select", cond=b.op("less", x=i, y=steps), a=b.op("matmul", x=x, y=x), b=x)
        return [x, b.op("add", x=i, y=np.int32(1))]

    result, _ = ctx.b.while_loop([result, ctx.const(np.int32(0), dt.int32)], more, square)
    return result
