#!/usr/bin/env python
"""Run every package the test-suite kept through two executors and report per-output differences.

    TORCH_COREML_KEEP_PACKAGES=/tmp/pkgs python -m pytest tests/lowering -q     # keeps packages + inputs
    python scripts/compare_executors.py /tmp/pkgs                              # reference vs Core ML
    python scripts/compare_executors.py /tmp/pkgs --compute-units all --atol 1e-2 --rtol 1e-2
    python scripts/compare_executors.py /tmp/pkgs --against reference          # a dry run off macOS

Each kept directory holds model.mlpackage and inputs.pt (the calls the test made, in order, as
{input name: tensor}). Both executors run the calls in that order on fresh modules, so stateful
models see the same history. One line per output: max abs and max rel difference; the exit status is
1 when any output is past --atol + --rtol * |reference| (fp16 outputs: at least 1e-2 each; integer
outputs: exact), or a package fails to run; 2 when the executor cannot run here at all; else 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def compare(directory: Path, against: str, compute_units: str, atol: float, rtol: float) -> tuple[list[str], bool]:
    from torch_coreml.runtime import CoreMLModule

    calls = torch.load(directory / "inputs.pt", weights_only=True)["calls"]
    package = directory / "model.mlpackage"
    reference = CoreMLModule(package, "reference").runner
    other = CoreMLModule(package, against, compute_units).runner
    lines, ok = [], True
    for n, inputs in enumerate(calls):
        expected, got = reference.run(inputs), other.run(inputs)
        for name, e in expected.items():
            g = got[name]
            if g.dtype != e.dtype or g.shape != e.shape:
                lines.append(f"  call {n} {name}: {against} gives {g.dtype} {list(g.shape)}, "
                             f"reference {e.dtype} {list(e.shape)}")
                ok = False
                continue
            diff = (g.double() - e.double()).abs()
            max_abs = float(diff.max()) if diff.numel() else 0.0
            max_rel = float((diff / e.double().abs().clamp_min(1e-6)).max()) if diff.numel() else 0.0
            if not e.dtype.is_floating_point:
                bad = max_abs > 0  # integers must agree exactly
            else:
                # fp16 outputs come from fp16 programs: 10 bits of mantissa, so at least 1e-2 either way.
                a, r = (max(atol, 1e-2), max(rtol, 1e-2)) if e.dtype == torch.float16 else (atol, rtol)
                bad = bool((diff > a + r * e.double().abs()).any())
            ok &= not bad
            lines.append(f"  call {n} {name} {e.dtype} {list(e.shape)}: max abs {max_abs:.3g}, "
                         f"max rel {max_rel:.3g}{'  <-- past tolerance' if bad else ''}")
    return lines, ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="the TORCH_COREML_KEEP_PACKAGES directory")
    parser.add_argument("--against", default="coreml", help="the executor compared with the reference one")
    parser.add_argument("--compute-units", default="cpu_only",
                        choices=["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"])
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--rtol", type=float, default=1e-3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing
    from torch_coreml.errors import RuntimeUnavailableError
    from torch_coreml.runtime import select_executor

    try:
        select_executor(args.against)  # once, up front: "no Core ML here" is one message, not one per package
    except RuntimeUnavailableError as exc:
        print(exc, file=sys.stderr)
        return 2
    failed = []
    kept = sorted(p.parent for p in args.directory.glob("*/inputs.pt"))
    for directory in kept:
        try:
            lines, ok = compare(directory, args.against, args.compute_units, args.atol, args.rtol)
        except Exception as exc:  # noqa: BLE001 - one broken package must not hide the others' report
            lines, ok = [f"  failed: {type(exc).__name__}: {exc}"], False
        print(f"{'ok  ' if ok else 'FAIL'} {directory.name}")
        print("\n".join(lines))
        if not ok:
            failed.append(directory.name)
    print(f"\n{len(kept) - len(failed)} of {len(kept)} packages agree (reference vs {args.against}, "
          f"{args.compute_units}, atol {args.atol}, rtol {args.rtol})")
    for name in failed:
        print(f"  differs: {name}")
    return 1 if failed or not kept else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
