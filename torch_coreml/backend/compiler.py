"""The backend function Dynamo calls: freeze → aot_autograd (our decompositions) → partition → convert.

    compiled = torch.compile(model, backend="coreml", options={...})

Inference only. Module state is frozen into the Core ML programs (see freezing.py). The backend runs
the whole graph eagerly, with a warning, when Core ML cannot give PyTorch's semantics: an input that
requires grad (the gradient would be lost), a graph that mutates module state (BatchNorm in training
mode: the running stats would not be updated), or a training-mode graph (random ops) whose
parameters require grad. `strict=True` / `require_full_graph=True` raise instead.
"""

from __future__ import annotations

import itertools
import logging
import time
import warnings
from typing import Any, Callable

import torch
import torch.fx
from torch._dynamo.backends.common import aot_autograd
from torch._dynamo.exc import TorchDynamoException
from torch._subclasses.fake_tensor import unset_fake_temporarily

from ..errors import ConversionError
from ..lowering import ops as _ops  # noqa: F401  (registers the lowerings)
from ..lowering.decompositions import decomposition_table
from ..lowering.dry_run import accepts
from ..lowering.unsupported import UnsupportedOpsError, op_name
from .delegate import convert, prepare
from .freezing import bind_constants, freeze_module_state
from .options import BackendOptions
from .partition import (
    TOO_SMALL, CoreMLPartitioner, CoreMLSupport, call_node_ops, counts_as_work,
    isolate_size_computations,
)
from .report import FALLBACK, CompileReport, PartitionReport, record
from .shapes import symbol_ranges

log = logging.getLogger("torch_coreml.backend")
_GRAPH_IDS = itertools.count()


class _EagerFallback(Exception):
    """Raised inside the aot forward compiler to give the graph back to PyTorch whole."""


def coreml_backend(gm: torch.fx.GraphModule, example_inputs: list, options: dict | None = None,
                   **extra: Any) -> Callable:
    opts = BackendOptions.parse({**(options or {}), **extra})
    report = CompileReport(graph=f"graph {next(_GRAPH_IDS)}")
    start = time.perf_counter()
    try:
        return _compile(gm, example_inputs, opts, report)
    except _EagerFallback as e:
        report.eager_reason = str(e)
        if opts.strict or opts.require_full_graph:
            record(report)
            raise ConversionError(f"torch_coreml: {report.graph} cannot run in Core ML: {e}") from None
    except TorchDynamoException:
        raise  # Dynamo's own control flow (e.g. restart the analysis with floats specialized)
    except Exception as e:  # any backend failure: the graph runs in PyTorch, loudly (strict raises)
        report.eager_reason = f"the backend failed: {type(e).__name__}: {e}"
        if opts.strict or opts.require_full_graph:
            record(report)
            raise
    finally:
        report.seconds = time.perf_counter() - start
    # Whole graph in PyTorch: count its (torch-level) calls so the report says 0 of N.
    report.partitions, report.fallback = [], []
    report.call_nodes = sum(n.op in ("call_function", "call_method", "call_module") for n in gm.graph.nodes)
    record(report)
    warnings.warn(f"torch_coreml: {report.graph} runs in PyTorch: {report.eager_reason}", stacklevel=2)
    return gm.forward


def _compile(gm, example_inputs, opts: BackendOptions, report: CompileReport) -> Callable:
    start = time.perf_counter()
    frozen = freeze_module_state(gm, example_inputs)
    grad = torch.is_grad_enabled()
    needs_grad = [n.name for n, x in zip(_placeholders(frozen.gm), frozen.runtime_inputs)
                  if isinstance(x, torch.Tensor) and x.requires_grad]
    if grad and needs_grad:
        raise _EagerFallback(f"input(s) {needs_grad} require grad; the Core ML backend is inference-only "
                             "(run under torch.no_grad() to delegate)")
    conv = opts.conversion

    def dry_run(op, args, kwargs):
        return accepts(op, args, kwargs, mil_target=conv.target, float_dtype=conv.float_dtype)

    def forward_compiler(fw: torch.fx.GraphModule, fw_inputs: list) -> Callable:
        constants = list(frozen.state.values())
        _check_state_semantics(fw, len(constants), train_grads=grad and bool(frozen.grad_state))
        # aot calls us inside its fake mode; constants and conversion need real tensors.
        with unset_fake_temporarily():
            bind_constants(fw, constants)
            program = _partition_and_convert(fw, opts, report)
        n = len(constants)

        def run_forward(*args: Any) -> Any:
            # aot still passes the lifted state first; it is baked into the programs now.
            return program(*args[n:])

        run_forward.coreml_report = report
        return run_forward

    compiled = aot_autograd(fw_compiler=forward_compiler, bw_compiler=_no_backward,
                            decompositions=decomposition_table(dry_run))(frozen.gm, frozen.runtime_inputs)
    positions = frozen.runtime_positions
    warned = []

    def run(*args: Any) -> Any:
        if frozen.is_stale(args):
            if not warned:
                warned.append(True)
                warnings.warn(f"torch_coreml: {report.graph}: module parameters or buffers changed since they "
                              "were frozen into Core ML; running in PyTorch (call torch._dynamo.reset() to "
                              "recompile)", stacklevel=2)
            return gm.forward(*args)
        return compiled(*[args[i] for i in positions])

    report.seconds = time.perf_counter() - start
    record(report)
    return run


def _check_state_semantics(fw: torch.fx.GraphModule, n_state: int, train_grads: bool) -> None:
    meta = getattr(torch._guards.TracingContext.try_get(), "fw_metadata", None)
    if meta is not None:
        mutated = [i for i, info in enumerate(meta.input_info[:n_state])
                   if info.mutates_data or info.mutates_metadata]
        if mutated:
            raise _EagerFallback("the graph mutates module buffers (e.g. BatchNorm running stats in "
                                 "training mode); call model.eval() to delegate it")
    if train_grads:
        random = sorted({str(n.target) for n in fw.graph.nodes if n.op == "call_function"
                         and torch.Tag.nondeterministic_seeded in getattr(n.target, "tags", ())})
        if random:
            raise _EagerFallback(f"the module looks like it is training (random ops {random} with "
                                 "parameters that require grad); call model.eval() or use torch.no_grad()")


def _partition_and_convert(fw: torch.fx.GraphModule, opts: BackendOptions,
                           report: CompileReport) -> torch.fx.GraphModule:
    support = CoreMLSupport(opts)
    counted = [n for n in fw.graph.nodes if counts_as_work(n)]
    report.call_nodes = len(counted)
    if opts.require_full_graph:
        missing = support.unsupported_nodes(fw)
        if missing:
            raise UnsupportedOpsError(missing)
    isolate_size_computations(fw, support)
    partitioner = CoreMLPartitioner(fw, support, opts.min_block_size)
    partitions = partitioner.propose_partitions()
    in_partition = {n for p in partitions for n in p.nodes}
    small = {n for p in partitioner.too_small for n in p.nodes}
    for n in counted:
        if n not in in_partition:
            report.fallback.append((op_name(n), TOO_SMALL if n in small else support.reasons.get(n, "")))
    fused = partitioner.fuse_partitions(partitions, prefix="fused_")
    ranges = symbol_ranges(opts.max_dim)
    for index, call in enumerate([n for n in fused.graph.nodes if n.op == "call_module"
                                  and n.target.startswith("fused_")]):
        sub = fused.get_submodule(call.target)
        sub_nodes = [n for n in sub.graph.nodes if counts_as_work(n)]
        ops = call_node_ops(sub_nodes)
        try:
            prep = prepare(fused, call)
            delegate, part = convert(prep, opts, ranges, f"partition {index}", ops, len(sub_nodes))
        except Exception as e:  # noqa: BLE001 - a failing region runs in PyTorch, loudly
            reason = f"{type(e).__name__}: {e}"
            report.partitions.append(PartitionReport(f"partition {index}", len(sub_nodes), ops, FALLBACK,
                                                     reason))
            report.fallback.extend((op_name(n), "conversion failed") for n in sub_nodes)
            if opts.strict or opts.require_full_graph:
                raise
            warnings.warn(f"torch_coreml: partition {index} ({_ops_text(ops)}) runs in PyTorch because "
                          f"its conversion failed: {reason}", stacklevel=2)
            continue
        name, old = f"coreml_{index}", call.target
        fused.add_submodule(name, delegate)
        call.target, call.args, call.kwargs = name, tuple(prep.runtime_args), {}
        fused.delete_submodule(old)
        report.partitions.append(part)
    fused.graph.eliminate_dead_code()
    fused.recompile()
    fused.coreml_report = report
    return fused


def _no_backward(gm, inputs):
    raise ConversionError("the torch_coreml backend is inference-only: it cannot compile a backward graph")


def _ops_text(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} ×{c}" for op, c in sorted(ops.items()))


def _placeholders(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.op == "placeholder"]
