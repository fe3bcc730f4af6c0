"""MIL → MIL rewrites. The pipeline is a plain list, run to a fixed point by `run_passes`."""

from __future__ import annotations

from .dead_code import eliminate_dead_code
from .manager import PassResult, run_passes

DEFAULT_PIPELINE = [
    eliminate_dead_code,
]


def run_default_passes(program) -> None:
    run_passes(program, DEFAULT_PIPELINE)


__all__ = ["DEFAULT_PIPELINE", "PassResult", "eliminate_dead_code", "run_default_passes", "run_passes"]
