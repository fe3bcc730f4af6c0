"""The pass manager: apply each pass in order, repeat until none changes the program."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

from ..program import Program

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassResult:
    program: Program
    modified: bool


Pass = Callable[[Program], PassResult]


def run_passes(program: Program, passes: Sequence[Pass], max_rounds: int = 20) -> Program:
    for round_ in range(max_rounds):
        changed = False
        for p in passes:
            result = p(program)
            if result.modified:
                log.debug("pass %s changed the program (round %d)", p.__name__, round_)
                changed = True
        if not changed:
            return program
    log.warning("passes did not reach a fixed point in %d rounds", max_rounds)
    return program
