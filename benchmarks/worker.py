"""One (tool, model) conversion, measured; runs in a subprocess of benchmarks/run.py.

Tools:
  ct_export  coremltools on a torch.export program (after `run_decompositions({})`, which it requires)
  ct_script  coremltools on a torch.jit.trace module (its TorchScript frontend)
  ours       torch_coreml.export on the same torch.export program
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import torch

from benchmarks.zoo import build

CT_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18")


def run_one(tool: str, model_name: str, size: str, precision: str, target: str) -> dict:
    record = dict(tool=tool, model=model_name, size=size, ok=False)
    stage = "warm-up"
    try:
        _warm_up(tool, precision, target)
        stage = "build"
        model, inputs = build(model_name, size)
        record["params_mb"] = _param_bytes(model) / 2**20
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.mlpackage"
            stage = "capture"
            t0 = time.perf_counter()
            captured = _capture(tool, model, inputs)
            record["capture_s"] = time.perf_counter() - t0
            rss_before = _peak_rss()
            stage = "convert"
            t0 = time.perf_counter()
            converted = _convert(tool, captured, inputs, precision, target, record)
            record["convert_s"] = time.perf_counter() - t0
            stage = "save"
            t0 = time.perf_counter()
            converted.save(str(path))
            record["save_s"] = time.perf_counter() - t0
            # Peak, not current, RSS: the cost of a conversion is its high-water mark.
            record["rss_growth_mb"] = (_peak_rss() - rss_before) / 2**20
            stage = "read package"
            record.update(package_stats(path))
            stage = "run"
            record["max_abs_err"] = _max_error(path, model, inputs, ints_as_int32=tool != "ours")
            record["ok"] = True
    except Exception as exc:  # noqa: BLE001 - a benchmark records failures instead of stopping
        first = (str(exc).strip().splitlines() or [""])[0]
        record["error"] = f"{stage}: {type(exc).__name__}: {first}"[:300]
    return record


def _warm_up(tool, precision, target) -> None:
    """Convert a tiny model first, so one-off costs (lazy imports, torch's first-trace caches) are not
    charged to the measured model: the benchmark compares per-model work, for every tool alike."""
    model, inputs = torch.nn.Linear(4, 4).eval(), (torch.randn(1, 4),)
    with tempfile.TemporaryDirectory() as tmp:
        _convert(tool, _capture(tool, model, inputs), inputs, precision, target, {}).save(f"{tmp}/warm.mlpackage")


def _capture(tool, model, inputs):
    with torch.no_grad():
        if tool == "ct_script":
            return torch.jit.trace(model, inputs, strict=False)
        return torch.export.export(model, inputs)


def _convert(tool, captured, inputs, precision, target, record):
    if tool == "ours":
        import torch_coreml
        from torch_coreml.progress import conversion

        # An enclosing (never displayed) reporter collects export's phase timings: where the time goes.
        with conversion("benchmark", delay=float("inf"), interval=None) as reporter:
            program = torch_coreml.export(captured, compute_precision=precision, minimum_deployment_target=target)
        record["phases_s"] = dict(reporter.finished)
        return program
    import coremltools as ct

    logging.getLogger("coremltools").setLevel(logging.ERROR)
    options = dict(convert_to="mlprogram", skip_model_load=True,  # no Core ML runtime off macOS
                   minimum_deployment_target=getattr(ct.target, target),
                   compute_precision=ct.precision.FLOAT16 if precision == "float16" else ct.precision.FLOAT32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if tool == "ct_export":
            # coremltools only accepts Core ATen programs; this step is part of what its path costs.
            t0 = time.perf_counter()
            captured = captured.run_decompositions({})
            record["decompose_s"] = time.perf_counter() - t0
            return ct.convert(captured, **options)
        tensors = [ct.TensorType(name=f"input_{i}", shape=tuple(x.shape),
                                 dtype=_ct_dtype(x.dtype)) for i, x in enumerate(inputs)]
        return ct.convert(captured, inputs=tensors, **options)


def _ct_dtype(dtype):
    import numpy as np

    return {torch.int64: np.int32, torch.int32: np.int32}.get(dtype, np.float32)


def package_stats(path: Path) -> dict:
    """MIL op histogram (consts apart) and weight bytes, read from the package's own spec."""
    from torch_coreml.format.package import read_package

    counts: Counter = Counter()
    with read_package(path) as contents:
        for function in contents.spec.mlProgram.functions.values():
            for block in function.block_specializations.values():
                _count_ops(block, counts)
    consts = counts.pop("const", 0)
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    return dict(ops=sum(counts.values()), consts=consts, ops_by_type=dict(sorted(counts.items())),
                weight_bytes=weights.stat().st_size if weights.exists() else 0)


def _count_ops(block, counts: Counter) -> None:
    for op in block.operations:
        counts[op.type] += 1
        for inner in op.blocks:  # control flow: cond / while_loop bodies
            _count_ops(inner, counts)


def _max_error(path: Path, model, inputs, ints_as_int32: bool) -> float | None:
    """Max abs error vs eager of the saved package, run by our reference runtime (whoever wrote it):
    for coremltools' packages this is the yardstick our own fp16 error is judged against."""
    import torch_coreml

    if ints_as_int32:  # coremltools declares int64 inputs as int32 and takes no torch dtype metadata
        inputs_run = [x if x.dtype.is_floating_point else x.int() for x in inputs]
    else:
        inputs_run = inputs
    try:
        loaded = torch_coreml.load(path, runtime="reference")
        got = loaded(*inputs_run)
    except Exception:  # noqa: BLE001 - a coremltools package our runtime cannot run: no error figure
        logging.getLogger(__name__).debug("cannot run %s", path, exc_info=True)
        return None
    with torch.no_grad():
        expected = model(*inputs)
    got = got[0] if isinstance(got, (tuple, list)) else got
    return float((got.double() - expected.double()).abs().max())


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def _param_bytes(model) -> int:
    seen = {}
    for t in list(model.parameters()) + list(model.buffers()):
        seen[t.data_ptr()] = t.numel() * t.element_size()  # tied weights count once
    return sum(seen.values())
