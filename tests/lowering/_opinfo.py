"""Run one PyTorch OpInfo through the whole pipeline and say how it went.

    outcome = run_opinfo(op, torch.float32)   # Outcome(kind="pass" | "export" | "unsupported" | ...)

For each of the op's first sample inputs (`DTYPE_RUNS`: 3 at float32, 1 in the int64 run; samples
with an empty tensor among their inputs or eager outputs are passed over, because Core ML has no
zero-sized tensors: its runtime rejects them, and on GPU/ANE they abort the process): wrap the sample in a
module whose inputs are the sample's tensors (every other argument is baked in), torch.export it,
convert it with compute_precision float32 for iOS18 (every MIL op version is available; integer
tensors stay integer), save the package, check it with coremltools' MIL loader, load it back from
disk, run it with the reference runtime and compare with eager PyTorch at the float32 tolerances of
tests/tolerances.py (NaN equals NaN; integer and bool outputs exactly). A sample whose exported
program draws random numbers that change its values (dropout in training mode, ...) is compared by
dtype and shape.

The op's outcome is the first failing sample's. A sample whose eager call or torch.export fails is
passed over; an op none of whose samples can be captured is "export" (left out of the coverage
denominator). Shared by tests/lowering/test_opinfo.py, the collect mode and scripts/gen_op_coverage.py.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.utils._pytree as pytree

import torch_coreml
from tests.oracle import assert_coremltools_accepts
from tests.tolerances import TOLERANCES

# Samples per op: enough to see the common argument patterns, few enough for `pytest -n 2` to run the
# whole op_db in a few minutes. The integer run is the smaller, second parametrization: it checks
# integer dtype handling (int64 → int32 inside the program), not argument patterns.
MAX_SAMPLES = 3
DTYPE_RUNS = {torch.float32: ("", MAX_SAMPLES), torch.int64: ("@int64", 1)}
KINDS = ("export", "unsupported", "mismatch", "crash")
TARGET = "iOS18"
SEED = 0


def op_key(op) -> str:
    """The op's name in the expectations table and in test ids: name, or name.variant."""
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")


def expect_key(op, dtype: torch.dtype = torch.float32) -> str:
    """The op's key in opinfo_expectations.EXPECTED: `op_key`, plus "@int64" for the int64 run."""
    return op_key(op) + DTYPE_RUNS[dtype][0]


def all_expect_keys() -> set[str]:
    return {expect_key(op, dtype) for dtype in DTYPE_RUNS for op in selected_ops(dtype)}


def selected_ops(dtype: torch.dtype = torch.float32) -> list:
    """The OpInfos tested at `dtype`: every op of op_db that supports it on CPU, in op_db order."""
    from torch.testing._internal.common_methods_invocations import op_db

    return [op for op in op_db if dtype in op.supported_dtypes("cpu")]


@dataclass(frozen=True)
class Outcome:
    kind: str          # "pass" or one of KINDS
    detail: str = ""   # the error, first lines
    samples: int = 0   # samples that were converted and compared
    seconds: float = 0.0      # wall clock
    cpu_seconds: float = 0.0  # this process's CPU time (what the run costs on an idle machine)


class _SampleModule(torch.nn.Module):
    """Calls `fn` on a sample whose tensor leaves are the module inputs; returns the tensor leaves of
    the result as a flat tuple (so structseq/namedtuple results and Python scalars need no support).

    Core ML model inputs have rank 1 or more, so a 0-d sample tensor is fed with shape [1] and
    reshaped to 0-d inside the module, as a user would do."""

    def __init__(self, fn, spec, leaves, tensor_slots):
        super().__init__()
        self.fn, self.spec, self.leaves, self.tensor_slots = fn, spec, leaves, tensor_slots
        self.scalar_slots = {i for i in tensor_slots if leaves[i].dim() == 0}

    def forward(self, *tensors):
        leaves = list(self.leaves)
        for slot, t in zip(self.tensor_slots, tensors):
            leaves[slot] = t.reshape(()) if slot in self.scalar_slots else t
        inp, args, kwargs = pytree.tree_unflatten(leaves, self.spec)
        out = self.fn(inp, *args, **kwargs)
        return tuple(x for x in pytree.tree_leaves(out) if isinstance(x, torch.Tensor))


def _module_for(op, sample):
    leaves, spec = pytree.tree_flatten((sample.input, tuple(sample.args), dict(sample.kwargs)))
    slots = [i for i, x in enumerate(leaves) if isinstance(x, torch.Tensor)]
    tensors = tuple(leaves[i].detach().clone().reshape(-1) if leaves[i].dim() == 0
                    else leaves[i].detach().clone() for i in slots)
    return _SampleModule(op.op, spec, leaves, slots), tensors


def _samples(op, dtype):
    """The op's sample inputs without an empty input tensor, lazily, in the generator's order."""
    torch.manual_seed(SEED)
    # The generator itself, not `op.sample_inputs`: that wrapper walks the Python stack
    # (inspect.stack) to find the calling test, which costs more than the op's conversion in pytest.
    samples = op.sample_inputs_func(op, "cpu", dtype, False)
    return (s for s in samples if not any(isinstance(t, torch.Tensor) and t.numel() == 0
                                          for t in pytree.tree_leaves((s.input, s.args, s.kwargs))))


def _short(exc: BaseException, limit: int = 600) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= limit else text[:limit] + " …"


class _Failed(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def run_opinfo(op, dtype: torch.dtype = torch.float32, compare: tuple[str, str] | None = None) -> Outcome:
    """`compare` is an entry of opinfo_expectations.COMPARE: ("shape_only" | "indices_if_unique", why)."""
    cpu = time.process_time()
    outcome = _run(op, dtype, compare)
    return dataclasses.replace(outcome, cpu_seconds=time.process_time() - cpu)


def _run(op, dtype, compare) -> Outcome:
    start = time.perf_counter()
    mode = compare[0] if compare else "exact"
    wanted = DTYPE_RUNS[dtype][1]
    compared, tried, export_errors, empty_outputs = 0, 0, [], 0
    try:
        for index, sample in enumerate(_samples(op, dtype)):
            if tried == wanted:
                break
            module, tensors = _module_for(op, sample)
            try:
                with torch.no_grad():
                    expected = module(*[t.clone() for t in tensors])
            except Exception as e:  # noqa: BLE001 - a sample eager itself rejects
                export_errors.append(f"sample {index}: {_short(e)}")
                continue
            if any(t.numel() == 0 for t in expected):
                empty_outputs += 1
                continue
            tried += 1
            try:
                ep = _export(module, tensors)
            except Exception as e:  # noqa: BLE001 - not capturable: excluded from the denominator
                export_errors.append(f"sample {index}: {_short(e)}")
                continue
            if not expected:
                export_errors.append(f"sample {index}: the op returns no tensor")
                continue
            try:
                sample_mode = "shape_only" if mode != "shape_only" and _is_random(ep, tensors) else mode
                _convert_and_compare(ep, tensors, expected, sample_mode)
            except _Failed as f:
                return Outcome(f.kind, f"sample {index}: {f.detail}", compared, time.perf_counter() - start)
            compared += 1
    except Exception as e:  # noqa: BLE001 - an OpInfo whose sample generator breaks on this dtype
        return Outcome("crash", f"sample_inputs failed: {_short(e)}", compared, time.perf_counter() - start)
    if compared == 0:
        detail = export_errors[0] if export_errors else \
            f"no sample without an empty input or output tensor ({empty_outputs} with an empty output)"
        return Outcome("export", detail, 0, time.perf_counter() - start)
    return Outcome("pass", "", compared, time.perf_counter() - start)


def _is_random(ep, tensors) -> bool:
    """Whether the exported program draws random numbers that matter: it has a seeded-random op (rand,
    dropout, ...) and gives other values under another seed. Eager may still look deterministic, as
    OpInfo reseeds inside such ops (wrapper_set_seed), a stream no conversion can reproduce."""
    if not any(isinstance(n.target, torch._ops.OpOverload) and torch.Tag.nondeterministic_seeded in n.target.tags
               for n in ep.graph.nodes if n.op == "call_function"):
        return False
    state = torch.get_rng_state()  # the sample generator draws lazily from the same generator
    try:
        runs = []
        for seed in (SEED + 1, SEED + 2):
            torch.manual_seed(seed)
            with torch.no_grad():
                runs.append(pytree.tree_leaves(ep.module()(*[t.clone() for t in tensors])))
    finally:
        torch.set_rng_state(state)
    return any(not torch.equal(a, b) and not (a.is_floating_point() and
                                              torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))
               for a, b in zip(*runs))


def _export(module, tensors):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.export(module, tensors, strict=False)


def _convert_and_compare(ep, tensors, expected, mode: str) -> None:
    try:
        cm = torch_coreml.export(ep, compute_precision="float32", minimum_deployment_target=TARGET)
    except torch_coreml.UnsupportedOpsError as e:
        ops = sorted({n.op for n in e.nodes})
        reasons = sorted({f"{n.op}: {n.reason}" for n in e.nodes})
        raise _Failed("unsupported", f"{', '.join(ops)} ({'; '.join(reasons)[:500]})") from None
    except torch_coreml.ConversionError as e:
        # A deliberate refusal (e.g. "the model mutates a user input") is unsupported; a lowering
        # that blew up is wrapped in a ConversionError with the original exception as its cause.
        raise _Failed("crash" if e.__cause__ is not None else "unsupported", f"export: {_short(e)}") from None
    except Exception as e:  # noqa: BLE001 - a converter bug: reported, not raised
        raise _Failed("crash", f"export: {_short(e)}") from None
    with tempfile.TemporaryDirectory() as d:
        try:
            path = cm.save(Path(d) / "model.mlpackage")
            assert_coremltools_accepts(path)
            loaded = torch_coreml.load(path)
            got = loaded(*[t.clone() for t in tensors])
        except Exception as e:  # noqa: BLE001
            raise _Failed("crash", _short(e)) from None
    got = tuple(pytree.tree_leaves(got))
    if len(got) != len(expected):
        raise _Failed("mismatch", f"{len(got)} outputs, eager has {len(expected)}")
    if mode == "indices_if_unique":
        # Indices of equal values are implementation-defined; without repeated input values they
        # are unique and compared exactly.
        mode = "values_only" if any(t.numel() != torch.unique(t).numel() for t in tensors) else "exact"
    for i, (e, g) in enumerate(zip(expected, got)):
        problem = _compare(e, g, mode)
        if problem:
            raise _Failed("mismatch", f"output {i}: {problem}")


def _compare(e: torch.Tensor, g: torch.Tensor, mode: str) -> str:
    if g.dtype != e.dtype:
        return f"dtype {g.dtype} != eager {e.dtype}"
    if g.shape != e.shape:
        return f"shape {tuple(g.shape)} != eager {tuple(e.shape)}"
    if mode == "shape_only" or (mode == "values_only" and not e.dtype.is_floating_point):
        return ""
    if e.dtype.is_floating_point or e.dtype.is_complex:
        try:
            torch.testing.assert_close(g, e, equal_nan=True, **TOLERANCES["float32"])
        except AssertionError as err:
            return " ".join(str(err).split())[:400]
        return ""
    if not torch.equal(g, e):
        bad = (g != e).sum().item()
        return f"{bad} of {e.numel()} elements differ (first: got {g[g != e][:3].tolist()}, " \
               f"eager {e[g != e][:3].tolist()})"
    return ""
