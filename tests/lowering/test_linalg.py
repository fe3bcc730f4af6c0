"""Dense linear algebra lowerings (LU, triangular solves, Cholesky, LDL^T, Householder QR, Jacobi
SVD/eigh and the ops built on them, matrix_exp), end to end through a saved package.

Each case is (id, function, inputs): the function is wrapped in a module, exported, converted, saved,
checked by coremltools' loader, reloaded and compared with eager. Inputs are seeded; LU cases use plain
random matrices so that row pivoting really happens. Structseq results are returned as tuples.
"""

from __future__ import annotations

import pytest
import torch
from torch.export import Dim

import torch_coreml
from tests.lowering._check import Fn, check_conversion, r

pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:UserWarning")

torch.manual_seed(0)
A = r(3, 5, 5)
SQUARE = r(5, 5)
# Symmetric positive definite, and a non-symmetric matrix with the same lower/upper triangles used
# by LAPACK (the other triangle is never read).
SPD = A @ A.mT + 0.5 * torch.eye(5)
LOPSIDED = SPD + torch.triu(r(5, 5), 1)
# Column 0 holds three entries of equal magnitude: LAPACK pivots on the first of them.
TIES = torch.tensor([[1.0, 2, 3, 0], [-3, 5, 1, 2], [3, 1, 7, 1], [-3, 0, 2, 5]])
SINGULAR = torch.tensor([[0.0, 2, 1], [0, 4, 3], [0, 1, 5]])  # a zero column: info = 1
LU, PIVOTS = torch.linalg.lu_factor(A)
TRI = torch.tril(r(5, 5)) + 3 * torch.eye(5)
# Symmetric indefinite, with small leading diagonals: Bunch-Kaufman takes 2x2 blocks and exchanges rows.
INDEFINITE = r(3, 6, 6)
INDEFINITE = INDEFINITE + INDEFINITE.mT
INDEFINITE[:, 0, 0] *= 0.01
INDEFINITE[1, 3, 3] *= 0.01
INDEFINITE[2] = torch.diag(torch.tensor([0.0, 1, -2, 3, -4, 5]))  # a zero column: info = 1
LD, LD_PIVOTS, _ = torch.linalg.ldl_factor_ex(INDEFINITE)
assert (LD_PIVOTS < 0).any()


SYMMETRIC = A + A.mT


def _tuple(fn):
    return lambda *xs: tuple(fn(*xs))


def _svd_products(a):
    # Singular vectors are unique up to sign: compare what does not depend on it.
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    return s, (u * s.unsqueeze(-2)) @ vh, u.mT @ u, vh @ vh.mT


def _eigh_products(a):
    values, vectors = torch.linalg.eigh(a)
    return values, (vectors * values.unsqueeze(-2)) @ vectors.mT, vectors.mT @ vectors


CASES = [
    ("det_batched", torch.linalg.det, (A,)),
    ("det_1x1", torch.linalg.det, (r(2, 1, 1),)),
    ("slogdet", _tuple(torch.linalg.slogdet), (A,)),
    ("logdet_spd", torch.logdet, (SPD,)),
    ("inv_token", torch.linalg.inv, (A,)),
    ("inv_ex", _tuple(torch.linalg.inv_ex), (SQUARE,)),
    ("solve_vector", torch.linalg.solve, (A, r(3, 5))),
    ("solve_broadcast", torch.linalg.solve, (A, r(2, 1, 5, 2))),
    ("solve_right", lambda a, b: torch.linalg.solve(a, b, left=False), (A, r(4, 5))),
    ("solve_ex", _tuple(torch.linalg.solve_ex), (SQUARE, r(5, 3))),
    ("lu_factor_square", _tuple(torch.linalg.lu_factor_ex), (A,)),
    ("lu_factor_tall", _tuple(torch.linalg.lu_factor_ex), (r(2, 6, 3),)),
    ("lu_factor_wide", _tuple(torch.linalg.lu_factor), (r(3, 6),)),
    ("lu_factor_ties", _tuple(torch.linalg.lu_factor_ex), (TIES,)),
    ("lu_factor_singular_info", _tuple(torch.linalg.lu_factor_ex), (SINGULAR,)),
    ("det_singular", torch.linalg.det, (SINGULAR,)),
    ("lu_plu_wide", _tuple(torch.linalg.lu), (r(2, 4, 6),)),
    ("lu_legacy", _tuple(lambda a: torch.lu(a, get_infos=True)), (r(4, 3),)),
    ("lu_unpack", _tuple(torch.lu_unpack), (LU, PIVOTS)),
    ("lu_solve", lambda lu, p, b: torch.linalg.lu_solve(lu, p, b), (LU, PIVOTS, r(5, 2))),
    ("lu_solve_adjoint_right", lambda lu, p, b: torch.linalg.lu_solve(lu, p, b, left=False, adjoint=True),
     (LU, PIVOTS, r(3, 2, 5))),
    ("cholesky_lower", torch.linalg.cholesky, (LOPSIDED,)),
    ("cholesky_upper", lambda a: torch.linalg.cholesky(a.mT, upper=True), (LOPSIDED,)),
    ("cholesky_ex_batched", _tuple(torch.linalg.cholesky_ex), (SPD,)),
    ("cholesky_info_not_pd", lambda a: torch.linalg.cholesky_ex(a).info, (torch.tensor([[4.0, 2], [2, -1]]),)),
    ("cholesky_solve_upper", lambda b, u: torch.cholesky_solve(b, u, upper=True),
     (r(5, 2), torch.linalg.cholesky(SPD[0]).mT)),
    ("cholesky_inverse", torch.cholesky_inverse, (torch.linalg.cholesky(SPD[1]),)),
    ("solve_triangular_upper_unit", lambda t, b: torch.linalg.solve_triangular(t, b, upper=True, unitriangular=True),
     (TRI.mT, r(2, 5, 3))),
    ("solve_triangular_right", lambda t, b: torch.linalg.solve_triangular(t, b, upper=False, left=False),
     (TRI, r(4, 5))),
    ("triangular_solve_transpose", _tuple(lambda b, t: torch.triangular_solve(b, t, upper=False, transpose=True)),
     (r(2, 5, 2), TRI)),
    ("ldl_factor_blocks", _tuple(torch.linalg.ldl_factor_ex), (INDEFINITE,)),
    ("ldl_factor_lower_triangle", _tuple(torch.linalg.ldl_factor), (r(5, 5),)),
    ("ldl_solve_blocks", torch.linalg.ldl_solve, (LD[:2], LD_PIVOTS[:2], r(2, 6, 3))),
    ("geqrf_wide", _tuple(torch.geqrf), (r(2, 3, 5),)),
    ("qr_complete_tall", _tuple(lambda a: torch.linalg.qr(a, mode="complete")), (r(6, 3),)),
    ("householder_product", torch.linalg.householder_product, torch.geqrf(r(2, 6, 4))),
    ("ormqr_right_transpose", lambda a, t, c: torch.ormqr(a, t, c, left=False, transpose=True),
     (*torch.geqrf(r(5, 3)), r(4, 5))),
    ("svdvals_wide", torch.linalg.svdvals, (r(2, 3, 5),)),
    ("svd_reconstruction", _svd_products, (r(2, 6, 4),)),
    ("cond_2", torch.linalg.cond, (A,)),
    ("matrix_rank_deficient", torch.linalg.matrix_rank, (r(6, 2) @ r(2, 5),)),
    ("pinv", torch.linalg.pinv, (r(2, 5, 3),)),
    ("pinv_hermitian_atol", lambda a: torch.linalg.pinv(a, atol=0.5, hermitian=True), (SYMMETRIC,)),
    ("eigh_reconstruction", _eigh_products, (SYMMETRIC,)),
    ("eigvalsh_upper", lambda a: torch.linalg.eigvalsh(a, UPLO="U"), (r(5, 5),)),
    ("matrix_exp_small", torch.linalg.matrix_exp, (0.1 * A,)),
    ("matrix_exp_squarings", torch.linalg.matrix_exp, (2 * A,)),
    ("tensorinv", lambda a: torch.linalg.tensorinv(a, ind=1), (r(6, 2, 3),)),
    ("tensorsolve", torch.linalg.tensorsolve, (r(2, 3, 6), r(2, 3))),
]


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_linalg(name, fn, inputs):
    check_conversion(Fn(fn), inputs, target="iOS18")


def test_float16_program():
    well_conditioned = A + 4 * torch.eye(5)
    # Entries in the hundreds: QR and SVD scale by a power of two, so fp16 sums of squares do not overflow.
    check_conversion(Fn(lambda a, b: (torch.linalg.solve(a, b), torch.linalg.matrix_exp(0.3 * a),
                                      *torch.linalg.qr(100 * a), torch.linalg.svdvals(100 * a))),
                     (well_conditioned, r(3, 5, 2)), precision="float16", rtol=2e-2, atol=5e-2)


def test_ios15_target():
    check_conversion(Fn(_tuple(torch.linalg.lu_factor_ex)), (A,), target="iOS15")


def test_dynamic_batch():
    batch = Dim("batch", min=1, max=16)
    check_conversion(Fn(lambda a, b: torch.linalg.solve(a, b)), (A, r(3, 5, 2)),
                     dynamic_shapes=(({0: batch}, {0: batch}),), run_inputs=[(r(6, 5, 5), r(6, 5, 2))])


def test_effect_token_is_dropped():
    # torch's own decomposition threads linalg's error check through an effect token (a TOKEN input and
    # output, a with_effects node); the package has just the matrix input and the inverse output.
    ep = torch.export.export(Fn(torch.linalg.inv), (SQUARE,)).run_decompositions()
    assert [s.kind.name for s in ep.graph_signature.input_specs] == ["TOKEN", "USER_INPUT"]
    cm = check_conversion(ep, (SQUARE,), eager=Fn(torch.linalg.inv))
    assert len(cm.program.functions["main"].inputs) == 1


def test_dynamic_matrix_size_is_refused():
    n = Dim("n", min=2, max=8)
    with pytest.raises(torch_coreml.UnsupportedOpsError, match="matrix dims must be static"):
        torch_coreml.export(Fn(torch.linalg.inv), (SQUARE,), dynamic_shapes=(({0: n, 1: n},),))
