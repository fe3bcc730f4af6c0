"""`CoreMLProgram`: what `torch_coreml.export` returns.

A `CoreMLModule` (runs the saved package; pytree in, pytree out) that also remembers the eager module it
came from, so `verify` can say how far the conversion is from PyTorch on given inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.utils._pytree as pytree

from .runtime.module import CoreMLModule


@dataclass(frozen=True)
class OutputError:
    """Error of one output leaf against eager PyTorch; kind "input" is the new value of an input
    leaf (by its index among the input leaves) that the model mutates in place."""

    index: int
    max_abs: float
    max_rel: float
    shape: tuple[int, ...]
    kind: str = "output"

    def __str__(self) -> str:
        return f"{self.kind} {self.index} {list(self.shape)}: max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}"


class CoreMLProgram(CoreMLModule):
    def __init__(self, package_path: str | os.PathLike, executor: str = "auto",
                 eager: torch.nn.Module | Callable[[], torch.nn.Module] | None = None,
                 compute_units: str = "all"):
        """`eager` is the module to verify against, or a function making it: building the module
        of an ExportedProgram costs seconds on a large model, so it waits for the first `verify`."""
        super().__init__(package_path, executor, compute_units)
        # Not a submodule: the eager model must not appear in this module's state_dict.
        object.__setattr__(self, "_eager_source", eager)

    @property
    def _eager(self) -> torch.nn.Module | None:
        source = self._eager_source
        if source is not None and not isinstance(source, torch.nn.Module):
            source = source()
            object.__setattr__(self, "_eager_source", source)
        return source

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        # The eager side of an ExportedProgram does not pickle (torch.export's module holds local
        # functions): a copy runs the package, and verify needs the original.
        state["_eager_source"] = None
        return state

    def verify(self, *args: Any, **kwargs: Any) -> list[OutputError]:
        """Run both the converted and the eager model on copies of the inputs (left untouched);
        per-output abs/rel error, then one entry per input leaf the model mutates in place."""
        if self._eager is None:
            raise RuntimeError("this program has no eager module to compare with (it was loaded from disk "
                               "or unpickled); verify on the program torch_coreml.export returned")
        eager_in = pytree.tree_map_only(torch.Tensor, torch.clone, (args, kwargs))
        ours_in = pytree.tree_map_only(torch.Tensor, torch.clone, (args, kwargs))
        with torch.no_grad():
            expected = pytree.tree_leaves(self._eager(*eager_in[0], **eager_in[1]))
            got = pytree.tree_leaves(self(*ours_in[0], **ours_in[1]))
        errors = [_error(i, e, g) for i, (e, g) in enumerate(zip(expected, got))]
        originals = pytree.tree_leaves((args, kwargs))
        for i, (orig, e, g) in enumerate(zip(originals, pytree.tree_leaves(eager_in), pytree.tree_leaves(ours_in))):
            if isinstance(orig, torch.Tensor) and not (_same(orig, e) and _same(orig, g)):
                errors.append(_error(i, e, g, "input"))
        return errors


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a, b) or (a.is_floating_point() and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))


def _error(index: int, expected: torch.Tensor, got: torch.Tensor, kind: str = "output") -> OutputError:
    e64, g64 = expected.detach().double(), got.detach().double()
    diff = (e64 - g64).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    scale = e64.abs().clamp_min(1e-6)
    max_rel = float((diff / scale).max()) if diff.numel() else 0.0
    return OutputError(index, max_abs, max_rel, tuple(expected.shape), kind)
