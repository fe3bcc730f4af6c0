"""Conversion benchmark: torch_coreml against coremltools' two PyTorch paths, on the zoo's models.

    python -m benchmarks.run                     # small configs, every model
    python -m benchmarks.run --large             # the real sizes (incl. a ~1B-parameter Llama)
    python -m benchmarks.run --models bert gpt2 --tools ours ct_export

Every (tool, model) pair runs in its own subprocess, so the peak-RSS numbers of one conversion are not
inflated by whatever an earlier one left allocated (ru_maxrss only ever grows). The worker measures
capture, conversion and save times, the peak-RSS growth across conversion + save, and reads the saved
package for op counts and weight bytes. Results go to benchmarks/results/results.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import report
from benchmarks.zoo import MODELS

TOOLS = ("ct_export", "ct_script", "ours")
RESULTS = Path(__file__).parent / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="the large configs instead of the small ones")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--tools", nargs="*", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--precision", default="float16", choices=("float16", "float32"))
    parser.add_argument("--target", default="iOS18")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per conversion subprocess")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true",
                        help="keep the earlier results file's rows for the (model, tool) pairs not re-run")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = "large" if args.large else "small"
    if args.worker:
        from benchmarks.worker import run_one

        tool, model = args.worker
        print(json.dumps(run_one(tool, model, size, args.precision, args.target)))
        return 0

    timeout = args.timeout or (7200 if args.large else 900)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / ("results_large" if args.large else "results")
    meta = dict(size=size, precision=args.precision, target=args.target, **report.environment())
    records = _previous(stem, meta) if args.merge else []
    for model in args.models:
        for tool in args.tools:
            record = _spawn(tool, model, size, args, timeout)
            records = [r for r in records if (r["model"], r["tool"]) != (model, tool)] + [record]
            print(report.one_line(record), flush=True)
            # Written after every row: a large run killed half-way still leaves what it measured.
            stem.with_suffix(".json").write_text(json.dumps(dict(meta=meta, records=records), indent=1) + "\n")
            stem.with_suffix(".md").write_text(report.markdown(records, meta))
    print()
    print(report.ratio_table(records))
    return 0


def _previous(stem: Path, meta: dict) -> list[dict]:
    """Records of an earlier run with the same settings, which --merge keeps unless re-measured."""
    path = stem.with_suffix(".json")
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    same = all(old["meta"].get(k) == meta[k] for k in ("size", "precision", "target"))
    return old["records"] if same else []


def _spawn(tool: str, model: str, size: str, args, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", tool, model, "--precision", args.precision,
           "--target", args.target] + (["--large"] if size == "large" else [])
    start = time.perf_counter()
    base = dict(tool=tool, model=model, size=size, ok=False)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired:
        return dict(base, error=f"timed out after {timeout:.0f} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    # A crash outside the worker's own try (e.g. the kernel's OOM killer): keep stderr's last line.
    tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return dict(base, error=f"worker died (exit {proc.returncode}) after {time.perf_counter() - start:.0f} s: "
                            f"{tail}")


if __name__ == "__main__":
    sys.exit(main())
