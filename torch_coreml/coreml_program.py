"""`CoreMLProgram`: what `torch_coreml.export` returns.

A `CoreMLModule` (runs the saved package; pytree in, pytree out) that also remembers the eager module it
came from, so `verify` can say how far the conversion is from PyTorch on given inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils._pytree as pytree

from .runtime.module import CoreMLModule


@dataclass(frozen=True)
class OutputError:
    """Error of one output leaf against eager PyTorch."""

    index: int
    max_abs: float
    max_rel: float
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"output {self.index} {list(self.shape)}: max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}"


class CoreMLProgram(CoreMLModule):
    def __init__(self, package_path: str | os.PathLike, executor: str = "auto",
                 eager: torch.nn.Module | None = None, compute_units: str = "all"):
        super().__init__(package_path, executor, compute_units)
        # Not a submodule: the eager model must not appear in this module's state_dict.
        object.__setattr__(self, "_eager", eager)

    def verify(self, *args: Any, **kwargs: Any) -> list[OutputError]:
        """Run both the converted and the eager model on the inputs; per-output abs/rel error."""
        if self._eager is None:
            raise RuntimeError("this program has no eager module to compare with (it was loaded from disk)")
        with torch.no_grad():
            expected = pytree.tree_leaves(self._eager(*args, **kwargs))
            got = pytree.tree_leaves(self(*args, **kwargs))
        errors = []
        for i, (e, g) in enumerate(zip(expected, got)):
            e64, g64 = e.detach().double(), g.detach().double()
            diff = (e64 - g64).abs()
            max_abs = float(diff.max()) if diff.numel() else 0.0
            scale = e64.abs().clamp_min(1e-6)
            max_rel = float((diff / scale).max()) if diff.numel() else 0.0
            errors.append(OutputError(i, max_abs, max_rel, tuple(e.shape)))
        return errors
