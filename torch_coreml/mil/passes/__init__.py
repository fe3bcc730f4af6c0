"""MIL → MIL rewrites. The pipeline is a plain list, run to a fixed point by `run_passes`."""

from __future__ import annotations

from .const_fold import fold_constants
from .cse import eliminate_common_subexpressions
from .dead_code import eliminate_dead_code
from .fuse_affine import fuse_affine
from .manager import PassResult, run_passes
from .noop_elimination import eliminate_noops

# Order matters only for speed (the list runs to a fixed point): folding first exposes no-ops and
# duplicates; dead code goes last so each round ends with a clean program.
DEFAULT_PIPELINE = [
    fold_constants,
    eliminate_noops,
    fuse_affine,
    eliminate_common_subexpressions,
    eliminate_dead_code,
]


def run_default_passes(program) -> None:
    run_passes(program, DEFAULT_PIPELINE)


__all__ = ["DEFAULT_PIPELINE", "PassResult", "eliminate_common_subexpressions", "eliminate_dead_code",
           "eliminate_noops", "fold_constants", "fuse_affine", "run_default_passes", "run_passes"]
