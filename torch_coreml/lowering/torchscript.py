"""TorchScript capture: a `ScriptModule` (traced or scripted) or a `torch.jit.save`d file → ExportedProgram.

What comes out goes through the same decompositions, lowering, passes and serializer as a
`torch.export` program; this module only captures.

Choice of capture (investigated on torch 2.13):
1. torch's own converter, `torch._export.converter.TS2EPConverter`, first. It reads the TorchScript
   graph, so it keeps what tracing cannot: a scripted `if` on a tensor becomes `torch.cond` (lowered to
   MIL `cond`), and a loop with a constant trip count is unrolled. Three named fixes around it:
   - `_StaticConverter.retrace_as_exported_program`: torch's version marks every dim `Dim.AUTO`; we
     retrace with the caller's `dynamic_shapes` (None = static), exactly like the export path.
   - `_specialize_sizes`: with static shapes, `x.size(i)` of an input is a constant, so a
     `for i in range(x.shape[0])` loop gets a constant trip count the converter can unroll.
   - `_restore_output_structure`: TorchScript returns tuples as lists (and nested tuples flattened into
     lists); the program's output spec is set to the structure the ScriptModule really returns.
2. If the converter fails (an op or prim it has no handler for), non-strict `torch.export` of a thin
   wrapper that calls the ScriptModule. TorchScript's interpreter dispatches every aten op through the
   dispatcher, so non-strict export (no Dynamo) records them; Dynamo itself (strict export) cannot trace
   a ScriptModule. This works for traced modules and for scripted code without data-dependent control
   flow; the graph loses module paths and source lines.
If both fail, the error names the TorchScript construct and its source line and suggests torch.export.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import Any

import torch
import torch.utils._pytree as pytree
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from ..errors import ConversionError

log = logging.getLogger(__name__)

_SUGGESTION = ("Convert the original nn.Module with torch_coreml.export(model, example_inputs) "
               "(torch.export) instead; write data-dependent branches with torch.cond.")


def is_torchscript(obj: Any) -> bool:
    return isinstance(obj, (torch.jit.ScriptModule, torch.jit.ScriptFunction, str, os.PathLike))


def capture_torchscript(obj: Any, args: tuple, kwargs: dict, dynamic_shapes: Any = None) -> ExportedProgram:
    module = _load(obj)
    if isinstance(module, torch.jit.ScriptModule):
        was_training = module.training
        module.eval()
    try:
        with torch.no_grad():
            expected = module(*args, **kwargs)
        ep = _convert(module, args, kwargs, dynamic_shapes)
    finally:
        if isinstance(module, torch.jit.ScriptModule):
            module.train(was_training)
    _restore_output_structure(ep, expected)
    return ep


def _load(obj: Any):
    if isinstance(obj, (str, os.PathLike)):
        if not os.path.isfile(obj):
            raise ConversionError(f"no TorchScript file at {os.fspath(obj)!r}")
        try:
            return torch.jit.load(os.fspath(obj), map_location="cpu")
        except Exception as e:  # a zip that is not TorchScript, a newer format, ...
            raise ConversionError(f"{os.fspath(obj)!r} is not a torch.jit.save'd TorchScript file: {e}") from e
    return obj


def _convert(module, args: tuple, kwargs: dict, dynamic_shapes: Any) -> ExportedProgram:
    from torch._export.converter import TS2EPConverter  # private; imported late to keep import cheap

    try:
        converter = _converter_class(TS2EPConverter)(module, args, kwargs, dynamic_shapes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Manually populate ... state_dict": unused weights, harmless
            return converter.convert()
    except ConversionError:
        raise
    except Exception as first:
        construct = _failed_construct(first)
        log.info("TS2EPConverter failed (%s); retrying with non-strict torch.export", construct)
        try:
            return _export_wrapper(module, args, kwargs, dynamic_shapes)
        except Exception as second:
            raise ConversionError(_explain(module, construct, first, second)) from first


def _converter_class(base):
    class _StaticConverter(base):
        """TS2EPConverter that honours the caller's dynamic_shapes (torch's marks every dim dynamic)."""

        def __init__(self, module, args, kwargs, dynamic_shapes):
            super().__init__(module, args, kwargs or None)
            self._dynamic_shapes = dynamic_shapes
            if dynamic_shapes is None:
                _specialize_sizes(self.ts_graph)

        def retrace_as_exported_program(self, gm, name_to_constant):
            ep = torch.export.export(gm, self.sample_args, self.sample_kwargs,
                                     dynamic_shapes=self._dynamic_shapes, strict=False)
            # As torch's version does: tensors the converter lifted as constants are constants, not
            # buffers (retracing sees plain attributes).
            ep._constants.update({k: v for k, v in name_to_constant.items() if isinstance(v, torch.Tensor)})
            for spec in ep.graph_signature.input_specs:
                if spec.kind == InputKind.BUFFER and spec.target in name_to_constant:
                    ep.state_dict.pop(spec.target, None)
                    spec.kind, spec.persistent = InputKind.CONSTANT_TENSOR, None
            return ep

    return _StaticConverter


def _specialize_sizes(graph: torch.Graph) -> None:
    """Replace `aten::size(x, dim)` / `aten::size(x)` on statically shaped tensors with constants.

    Traced code computes shapes as tensors (`prim::NumToTensor(aten::size(..))` ... `aten::Int`), which
    the converter turns into data-dependent `.item()` calls; once the sizes are constants, TorchScript's
    constant propagation folds that arithmetic away."""
    try:
        # Only the graph inputs carry shapes; propagate them (ops without a shape function stay unknown).
        torch._C._jit_pass_propagate_shapes_on_graph(graph)
    except RuntimeError as e:
        log.debug("TorchScript shape propagation stopped early: %s", e)
    for node in list(_all_nodes(graph.block())):
        if node.kind() != "aten::size":
            continue
        ttype = node.inputsAt(0).type()
        sizes = ttype.sizes() if isinstance(ttype, torch._C.TensorType) else None
        if sizes is None or any(s is None for s in sizes):
            continue
        if node.inputsSize() == 1:
            value: Any = list(sizes)
        else:
            dim = node.inputsAt(1).toIValue()
            if dim is None:
                continue
            value = sizes[dim]
        with graph.insert_point_guard(node):
            const = graph.insertConstant(value)
        node.output().replaceAllUsesWith(const)
        node.destroy()
    torch._C._jit_pass_constant_propagation(graph)


def _all_nodes(block):
    for node in block.nodes():
        yield node
        for sub in node.blocks():
            yield from _all_nodes(sub)


def _restore_output_structure(ep: ExportedProgram, expected: Any) -> None:
    spec = pytree.tree_structure(expected)
    current = ep.call_spec.out_spec
    if current is not None and current.num_leaves == spec.num_leaves and current != spec:
        ep.module_call_graph[0].signature.out_spec = spec


class _Call(torch.nn.Module):
    """A thin wrapper so torch.export sees a plain nn.Module calling the ScriptModule."""

    def __init__(self, script):
        super().__init__()
        self.script = script

    def forward(self, *args, **kwargs):
        return self.script(*args, **kwargs)


def _export_wrapper(module, args: tuple, kwargs: dict, dynamic_shapes: Any) -> ExportedProgram:
    if dynamic_shapes is not None and not isinstance(dynamic_shapes, (tuple, list)):
        dynamic_shapes = tuple(dynamic_shapes.values())  # keyed by the ScriptModule's argument names
    return torch.export.export(_Call(module), args, kwargs, dynamic_shapes=dynamic_shapes, strict=False)


# -- errors ----------------------------------------------------------------------------------------
def _failed_construct(error: BaseException) -> str:
    """The innermost TorchScript node kind in TS2EPConverter's "failed for node X" chain."""
    kind, e = "", error
    while e is not None:
        msg = str(e)
        if msg.startswith("TS2EPConverter failed for node "):
            kind = msg.rsplit(" ", 1)[-1]
        e = e.__cause__
    return kind


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _explain(module, construct: str, first: BaseException, second: BaseException) -> str:
    cause = _root_cause(first)
    where = _source_of(module, construct) if construct else ""
    what = f"the TorchScript construct {construct}" if construct else "this TorchScript module"
    lines = [f"cannot convert {what}{where}: {type(cause).__name__}: {cause}"]
    if construct == "prim::Loop":
        lines.append("Loops need a trip count known at conversion time (loops over tensor values or "
                     "shapes declared dynamic cannot be converted from TorchScript yet).")
    lines.append(f"The torch.export fallback also failed: {type(second).__name__}: "
                 f"{str(second).splitlines()[0] if str(second) else ''}")
    lines.append(_SUGGESTION)
    return "\n".join(lines)


def _source_of(module, kind: str) -> str:
    """' at file:line: code' of the first `kind` node in the module's forward graph, if recorded."""
    graph = getattr(getattr(module, "forward", None), "graph", None) or getattr(module, "graph", None)
    if graph is None:
        return ""
    for node in _all_nodes(graph.block()):
        if node.kind() == kind:
            # The node's printed form ends with "# file:line:col"; its source range holds the code.
            loc = re.search(r"# (\S+:\d+):\d+", str(node).splitlines()[0])
            code = node.sourceRange().strip().splitlines()
            parts = [loc.group(1) if loc else "", code[0].strip() if code else ""]
            return " at " + ": ".join(p for p in parts if p) if any(parts) else ""
    return ""
