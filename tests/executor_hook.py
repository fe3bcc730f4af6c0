"""Second executors for `check_conversion`, switched on by environment variables (the macOS CI tier).

    TORCH_COREML_TEST_EXECUTOR=coreml   also run every checked package through Core ML, compare it with
                                        eager at the same tolerance, and name its distance to the
                                        reference runtime in any failure. Compute units come from
                                        TORCH_COREML_TEST_COMPUTE_UNITS (default "cpu_only": the CPU
                                        computes fp32 in fp32, so the tolerances stay meaningful).
    TORCH_COREML_KEEP_PACKAGES=DIR      keep every checked package and the inputs it was run on under
                                        DIR/<test id>/, for scripts/compare_executors.py to walk.

Unset, the hook does nothing and costs nothing. In check_conversion:

    hook = ExecutorHook(path, loaded)
    for args in calls: ...; hook.check(args, expected, got, tol)
    hook.finish()
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch
import torch.utils._pytree as pytree

import torch_coreml

EXECUTOR_ENV = "TORCH_COREML_TEST_EXECUTOR"
UNITS_ENV = "TORCH_COREML_TEST_COMPUTE_UNITS"
KEEP_ENV = "TORCH_COREML_KEEP_PACKAGES"


class ExecutorHook:
    def __init__(self, path: Path, loaded):
        self.path, self.names = Path(path), [f.name for f in loaded.interface.inputs]
        self.keep = os.environ.get(KEEP_ENV)
        self.calls: list[dict[str, torch.Tensor]] = []
        executor = os.environ.get(EXECUTOR_ENV, "reference")
        if executor not in ("reference", "coreml"):
            raise ValueError(f"{EXECUTOR_ENV} must be 'reference' or 'coreml', got {executor!r}")
        # runtime="coreml", never "auto": on a machine without Core ML this tier must fail, not pass.
        self.coreml = None if executor == "reference" else torch_coreml.load(
            self.path, runtime="coreml", compute_units=os.environ.get(UNITS_ENV, "cpu_only"))

    def check(self, args, expected, reference, tol: dict) -> None:
        if self.keep:
            tensors = [leaf for leaf in pytree.tree_leaves(args) if isinstance(leaf, torch.Tensor)]
            self.calls.append({n: t.detach().clone() for n, t in zip(self.names, tensors)})
        if self.coreml is None:
            return
        got = pytree.tree_leaves(self.coreml(*args))
        for i, (g, e, r) in enumerate(zip(got, pytree.tree_leaves(expected), pytree.tree_leaves(reference))):
            assert (g.dtype, g.shape) == (e.dtype, e.shape), \
                f"Core ML output {i}: {g.dtype} {tuple(g.shape)} != eager {e.dtype} {tuple(e.shape)}"
            if not e.dtype.is_floating_point:
                assert torch.equal(g, e), f"Core ML output {i}: {g} != eager {e}"
                continue
            vs_reference = (g.double() - r.double()).abs().max().item() if g.numel() else 0.0
            torch.testing.assert_close(g, e, **tol, msg=lambda m: f"Core ML output {i}: {m}\n"
                                       f"(Core ML vs reference runtime: max abs {vs_reference:.3g})")

    def finish(self) -> None:
        if not self.keep:
            return
        test = os.environ.get("PYTEST_CURRENT_TEST", "outside-pytest").rsplit(" ", 1)[0]
        base = Path(self.keep) / re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")
        target, n = base, 1
        while target.exists():  # a test that converts several models keeps each
            target, n = base.with_name(f"{base.name}-{n}"), n + 1
        target.mkdir(parents=True)
        shutil.copytree(self.path, target / "model.mlpackage")
        torch.save({"test": test, "calls": self.calls}, target / "inputs.pt")
