"""MIL → MIL rewrites. The pipeline is a plain list, run to a fixed point by `run_passes`."""

from __future__ import annotations

from .cast_chains import shorten_cast_chains
from .const_fold import fold_constants
from .cse import eliminate_common_subexpressions
from .dead_code import eliminate_dead_code
from .fuse_affine import fuse_affine
from .layout import eliminate_redundant_layout
from .manager import PassResult, run_passes
from .noop_elimination import eliminate_noops
from .recognize_activations import recognize_activations
from .recognize_attention import recognize_attention
from .recognize_norms import recognize_norms

# Order matters only for speed (the list runs to a fixed point): folding first exposes no-ops and
# duplicates; dead code goes last so each round ends with a clean program.
DEFAULT_PIPELINE = [
    fold_constants,
    eliminate_noops,
    shorten_cast_chains,
    eliminate_redundant_layout,
    recognize_activations,
    recognize_norms,
    recognize_attention,
    fuse_affine,
    eliminate_common_subexpressions,
    eliminate_dead_code,
]


def run_default_passes(program) -> None:
    run_passes(program, DEFAULT_PIPELINE)


__all__ = ["DEFAULT_PIPELINE", "PassResult", "eliminate_common_subexpressions", "eliminate_dead_code",
           "eliminate_noops", "fold_constants", "fuse_affine", "run_default_passes", "run_passes"]
__all__ += ["eliminate_redundant_layout", "recognize_activations", "recognize_attention", "recognize_norms",
            "shorten_cast_chains"]
