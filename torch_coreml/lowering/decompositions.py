"""The decomposition table: torch's own Core ATen table, minus the ops we lower whole.

An op torch would decompose is kept whole only if it has a lowering marked `keep_whole` AND that
lowering accepts the node: the table entry for such an op first dry-runs our lowering on the traced
arguments and returns `NotImplemented` (keep the op) when it succeeds, else runs torch's
decomposition. So a kept op is never one the lowering then rejects.

Our own decompositions (for ops torch leaves whole but MIL cannot express directly) are listed in
`EXTRA_DECOMPOSITIONS`, each with the reason.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable

import torch

from .registry import REGISTRY

log = logging.getLogger(__name__)
aten = torch.ops.aten

# Ops torch's table would decompose that we never keep whole, whatever the registry says, with why.
ALWAYS_DECOMPOSE: dict = {
}

# Ops for which we add a decomposition torch's default table does not have.
EXTRA_DECOMPOSITIONS: dict = {}


def _check_lists() -> None:
    overlap = set(ALWAYS_DECOMPOSE) & set(EXTRA_DECOMPOSITIONS)
    if overlap:
        raise AssertionError(f"ops both always-decomposed and given an extra decomposition: {overlap}")


def decomposition_table(dry_run: Callable | None = None) -> dict:
    """torch.export's default decompositions, with kept ops guarded by `dry_run(op, args, kwargs)`.

    `dry_run` returns True when our lowering accepts the call; without it, kept ops are kept
    unconditionally (used by `analyze`, which must not depend on lowering details)."""
    _check_lists()
    table = dict(_default_table())
    table.update(EXTRA_DECOMPOSITIONS)
    for target in REGISTRY.targets():
        entry = REGISTRY.get(target)
        if not entry.keep_whole or target in ALWAYS_DECOMPOSE or target not in table:
            continue
        table[target] = _keep_if_supported(target, table[target], dry_run)
    return table


@functools.lru_cache(maxsize=1)
def _default_table() -> dict:
    # Materializing torch's table walks every registered op (~0.2 s); it never changes in a process.
    return dict(torch.export.default_decompositions().items())


def _keep_if_supported(target, decomposition, dry_run):
    def keep_or_decompose(*args, **kwargs):
        if dry_run is None or dry_run(target, args, kwargs):
            return NotImplemented
        log.debug("decomposing %s: the lowering does not accept this call", target)
        return decomposition(*args, **kwargs)

    keep_or_decompose.__name__ = f"keep_or_decompose_{target.name()}"
    return keep_or_decompose
