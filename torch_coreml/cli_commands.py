"""What the `torch-coreml` subcommands do; `cli.py` owns the argument parsing and error reporting.

Each `cmd_*` takes the parsed arguments, prints its result on stdout and returns an exit code.
Problems the user can fix raise `CLIError` (or a `TorchCoreMLError`); `cli.main` turns either into
one line on stderr.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

import torch_coreml

from .format.description import Enumerated, Feature, ModelInterface, Ranges
from .format.package import read_package
from .mil.program import Program
from .mil.targets import Target
from .mil.types import TensorType
from .runtime.module import output_dtypes


class CLIError(Exception):
    """A problem with what the user passed on the command line (missing file, bad value)."""


# ------------------------------------------------------------------------------------ commands ---


def cmd_convert(args) -> int:
    out = Path(args.output) if args.output else Path(args.model).with_suffix(".mlpackage")
    if out.suffix != ".mlpackage":
        raise CLIError(f"{out}: the output path must end in .mlpackage")
    if not out.absolute().parent.is_dir():
        raise CLIError(f"{out}: the directory {out.absolute().parent} does not exist")
    ep = load_exported(args.model)
    options: dict[str, Any] = dict(compute_precision=args.precision, inputs=_names(args.input_names),
                                   outputs=_names(args.output_names), author=args.author, license=args.license,
                                   version=args.model_version, description=args.description,
                                   user_defined=_key_values(args.meta, "--meta"))
    if args.target:
        options["minimum_deployment_target"] = args.target
    start = time.perf_counter()
    cm = torch_coreml.export(ep, **options)
    seconds = time.perf_counter() - start
    cm.save(out)
    summary = package_summary(out, cm.program, cm.interface)
    print(f"converted {args.model} -> {out} in {seconds:.2f} s ({args.precision})")
    print_summary(summary)
    if args.verify:
        if ep.example_inputs is None:
            raise CLIError(f"{args.model}: no example inputs were saved with the program; cannot --verify")
        example_args, example_kwargs = ep.example_inputs
        for error in cm.verify(*example_args, **example_kwargs):
            print(f"  verify:  {error} (vs eager, on the saved example inputs)")
    return 0


def cmd_inspect(args) -> int:
    path = existing(args.package, "package")
    module = torch_coreml.load(path)
    summary = package_summary(path, module.program, module.interface)
    if args.json:
        if args.program:
            summary["program"] = str(module.program)
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{path}")
    print_summary(summary, histogram=True)
    meta = summary["metadata"]
    for key in ("author", "license", "version", "description"):
        if meta[key]:
            print(f"  {key + ':':<9}{meta[key]}")
    for key, value in meta["user_defined"].items():
        if not key.startswith("torch_coreml."):  # our bookkeeping (dtypes); shown by --json
                print(f"  meta     {key} = {value}")
    if args.program:
        print()
        print(module.program)
    return 0


def cmd_run(args) -> int:
    path = existing(args.package, "package")
    module = torch_coreml.load(path)
    inputs = read_inputs(args.input, [f.name for f in module.interface.inputs])
    start = time.perf_counter()
    with torch.no_grad():
        results = module.runner.run(inputs)
    millis = (time.perf_counter() - start) * 1e3
    outdir = Path(args.output) if args.output else None
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
    dtypes = output_dtypes(module.interface) or [None] * len(module.interface.outputs)
    print(f"ran {path} with the {module.executor} executor in {millis:.1f} ms")
    for feature, dtype in zip(module.interface.outputs, dtypes):
        value = results[feature.name]
        if dtype is not None and value.dtype != dtype:
            value = value.to(dtype)  # Core ML computes in fp32/fp16/int32; give back what torch returned
        array = _to_numpy(value)
        where = ""
        if outdir is not None:
            file = outdir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', feature.name)}.npy"
            np.save(file, array)
            where = f" -> {file}"
        print(f"  {feature.name}: {array.dtype} {list(array.shape)}{where}")
    return 0


def cmd_analyze(args) -> int:
    ep = load_exported(args.model)
    options: dict[str, Any] = dict(compute_precision=args.precision)
    if args.target:
        options["minimum_deployment_target"] = args.target
    report = torch_coreml.analyze(ep, **options)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0


# ------------------------------------------------------------------------------------- helpers ---


def existing(path: str, kind: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path}: no such {kind}")
    return p


def load_exported(path: str) -> torch.export.ExportedProgram:
    """A program written by `torch.export.save`."""
    existing(path, "file")
    # torch.export.load logs the real reason a file does not load (a traceback) and then raises a
    # vague "check the warnings above"; keep that record to report its root cause in one line.
    torch_log = logging.getLogger("torch.export")
    records: list[logging.LogRecord] = []
    keep = logging.Handler(logging.WARNING)
    keep.emit = records.append
    saved = torch_log.handlers, torch_log.propagate
    torch_log.handlers, torch_log.propagate = [keep], False
    try:
        return torch.export.load(path)
    except Exception as exc:  # torch raises several kinds for a file that is not an export archive
        causes = [r.exc_info[1] for r in records if r.exc_info and r.exc_info[1] is not None]
        reason = _root_cause(causes[-1] if causes else exc)
        raise CLIError(f"{path}: torch.export.load failed: {reason}") from exc
    finally:
        torch_log.handlers, torch_log.propagate = saved


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return re.split(r"(?<=\.)\s", first_line(exc), maxsplit=1)[0]  # torch's messages run long


def read_inputs(specs: list[str], names: list[str]) -> dict[str, np.ndarray]:
    """`name=file.npy` pairs (a bare `file.npy` when the model has a single input)."""
    inputs = {}
    for spec in specs or []:
        name, sep, file = spec.partition("=")
        if not sep:
            if len(names) != 1:
                raise CLIError(f"--input {spec}: expected name=file.npy; the model's inputs are {names}")
            name, file = names[0], spec
        if name not in names:
            raise CLIError(f"--input {spec}: the model has no input {name!r}; its inputs are {names}")
        if not Path(file).is_file():
            raise CLIError(f"--input {spec}: {file}: no such file")
        try:
            inputs[name] = np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise CLIError(f"--input {spec}: {file} is not an array saved by numpy.save") from exc
    missing = [n for n in names if n not in inputs]
    if missing:
        raise CLIError(f"missing --input for {missing}; pass each as --input name=file.npy")
    return inputs


def package_summary(path: Path, program: Program, interface: ModelInterface) -> dict:
    """Everything `inspect --json` reports; the plain-text output is made from it too."""
    with read_package(path) as contents:
        spec_version = contents.spec.specificationVersion
    ops = Counter(op.op_type for op in program.main.block.walk())
    weights = [op.outputs[0].type for op in program.main.block.walk()
               if op.op_type == "const" and _is_weight(op.outputs[0].type)]
    meta = interface.metadata
    return {
        "path": str(path),
        "spec_version": spec_version,
        "target": _target_name(spec_version),
        "opset": program.main.opset,
        "inputs": [_feature(f) for f in interface.inputs],
        "outputs": [_feature(f) for f in interface.outputs],
        "states": [_feature(f) for f in interface.states],
        "metadata": {"author": meta.author, "license": meta.license, "version": meta.version,
                     "description": meta.short_description, "user_defined": dict(meta.user_defined)},
        "op_count": sum(c for op, c in ops.items() if op != "const"),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "weight_tensors": len(weights),
        "weight_bytes": sum(t.numel() * t.dtype.bits // 8 for t in weights),
        "package_bytes": sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()),
    }


def print_summary(s: dict, histogram: bool = False) -> None:
    target = s["target"] or f"spec {s['spec_version']}"
    print(f"  target:  {target} (spec {s['spec_version']}, opset {s['opset']})")
    for kind in ("inputs", "outputs", "states"):
        for f in s[kind]:
            print(f"  {kind[:-1] + ':':<9}{f['name']} {f['dtype']} {f['shape_text']}")
    ops = {op: c for op, c in s["ops"].items() if op != "const"}
    top = ", ".join(f"{op} {c}" for op, c in list(ops.items())[:8])
    more = f", … {len(ops) - 8} more kinds" if len(ops) > 8 and not histogram else ""
    print(f"  ops:     {s['op_count']} ({top}{more})" if not histogram else f"  ops:     {s['op_count']}")
    if histogram:
        for op, count in s["ops"].items():
            print(f"    {count:>6}  {op}")
    print(f"  weights: {human_bytes(s['weight_bytes'])} in {s['weight_tensors']} tensor(s); "
          f"package {human_bytes(s['package_bytes'])}")


def _feature(f: Feature) -> dict:
    d = {"name": f.name, "dtype": f.dtype.name, "shape_text": f.shape_text(),
         "shape": None if f.shape is None else [d if isinstance(d, int) else str(d) for d in f.shape]}
    if isinstance(f.flexibility, Ranges):
        d["ranges"] = [list(b) for b in f.flexibility.bounds]
        d["default_shape"] = list(f.flexibility.default)
    elif isinstance(f.flexibility, Enumerated):
        d["enumerated"] = [list(s) for s in f.flexibility.shapes]
        d["default_shape"] = list(f.flexibility.default)
    return d


def _target_name(spec_version: int) -> str | None:
    try:
        return Target(spec_version).name
    except ValueError:  # a newer specification than this version of torch_coreml knows
        return None


def _names(values: list[str] | None) -> list[str] | None:
    """`--input-names a b` and `--input-names a,b` alike."""
    return None if values is None else [n for v in values for n in v.split(",") if n]


def _is_weight(t) -> bool:
    return isinstance(t, TensorType) and t.rank > 0 and t.is_static and t.dtype.kind != "string"


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16 or t.dtype.is_floating_point and t.dtype.itemsize == 1:
        t = t.float()  # numpy has no bf16 / fp8
    return t.detach().cpu().numpy()


def _key_values(pairs: list[str] | None, flag: str) -> dict[str, str]:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"{flag} {pair}: expected KEY=VALUE")
        result[key] = value
    return result


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(":")
