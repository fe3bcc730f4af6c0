"""TorchScript capture: a `ScriptModule` (traced or scripted) or a `torch.jit.save`d file → ExportedProgram.

What comes out goes through the same decompositions, lowering, passes and serializer as a
`torch.export` program; this module only captures.

Choice of capture (investigated on torch 2.13):
1. torch's own converter, `torch._export.converter.TS2EPConverter`, first. It reads the TorchScript
   graph, so it keeps what tracing cannot: a scripted `if` on a tensor becomes `torch.cond` (lowered to
   MIL `cond`), and a loop with a constant trip count is unrolled. Named fixes around it:
   - `_StaticConverter.retrace_as_exported_program`: torch's version marks every dim `Dim.AUTO`; we
     retrace with the caller's `dynamic_shapes` (None = static), exactly like the export path.
   - `_specialize_sizes`: with static shapes, `x.size(i)` is a constant, so a `for i in
     range(x.shape[0])` loop gets a constant trip count, and traced size arithmetic
     (`prim::NumToTensor` ... `aten::Int`, which the converter turns into `.item()`) folds away.
   - `_define_branch_outputs`: an `if` branch returning an outer value unchanged gets a clone (the
     converter cannot find such outputs).
   - `torchscript_graph`: a `while <tensor condition>:` loop becomes `torch.ops.higher_order.while_loop`
     (→ MIL `while_loop`); torch's converter only unrolls constant-trip loops.
   - `_restore_output_structure`: TorchScript returns tuples as lists (nested ones too); the program's
     output spec is set to the structure the ScriptModule really returns.
2. If the converter fails (an op or prim it has no handler for, a loop over an int input), non-strict
   `torch.export` of a thin wrapper that calls the ScriptModule. TorchScript's interpreter dispatches
   every aten op through the dispatcher, so non-strict export (no Dynamo) records them, specializing
   int inputs like torch.export does; Dynamo itself (strict export) cannot trace a ScriptModule. This
   works for traced modules and for scripted code without data-dependent control flow; the graph
   loses module paths and source lines.
If both fail, the error names the TorchScript construct and its source line and suggests torch.export.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import warnings
from typing import Any
from unittest import mock

import torch
import torch.utils._pytree as pytree
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

from ..errors import ConversionError
from .torchscript_graph import graph_converter_class

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
            _define_branch_outputs(self.ts_graph)
            _plain_input_names(self.ts_graph, len(self.params))

        def convert(self):
            # torch's converter names its graph converter as a module global (also for sub-blocks);
            # swap in the subclass that converts `while` loops for the duration of this conversion.
            import torch._export.converter as converter_module

            loop_converter = graph_converter_class(converter_module.TS2FXGraphConverter)
            with mock.patch.object(converter_module, "TS2FXGraphConverter", loop_converter):
                return super().convert()

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


def _plain_input_names(graph: torch.Graph, n_params: int) -> None:
    """Scripted graphs name inputs `x.1`; use `x`, so the model's inputs are named as with torch.export.
    (The user inputs come first; the lifted parameters follow them.)"""
    inputs = list(graph.inputs())
    for value in inputs[:len(inputs) - n_params]:
        base = re.sub(r"\.\d+$", "", value.debugName())
        if base != value.debugName() and base.isidentifier():
            value.setDebugName(base)  # TorchScript renames any other value already called `base`


def _define_branch_outputs(graph: torch.Graph) -> None:
    """Give every `prim::If` branch output a definition inside its branch (an `aten::clone`).

    The converter looks a branch's outputs up among the values the branch defines or reads, so an
    `if c: out = x` that returns an outer `x` unchanged fails with "Output x.1 not found"."""
    for node in list(_all_nodes(graph.block())):
        if node.kind() != "prim::If":
            continue
        for block in node.blocks():
            inner = set(block.nodes())
            ret = block.returnNode()
            for i, value in enumerate(list(block.outputs())):
                if value.node() in inner or not isinstance(value.type(), torch._C.TensorType):
                    continue
                with graph.insert_point_guard(ret):
                    clone = graph.insertNode(graph.create("aten::clone", [value, graph.insertConstant(None)]))
                clone.output().setType(value.type())
                ret.replaceInput(i, clone.output())


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

    def call(self, *args, **kwargs):
        # Through the C++ method: export's non-strict mode intercepts the Python-level ScriptModule call
        # and re-binds `self` (TypeError: "forward() takes 2 positional arguments but 3 were given").
        script = self.script
        fn = script._c.forward if isinstance(script, torch.jit.ScriptModule) else script
        return fn(*args, **kwargs)


def _export_wrapper(module, args: tuple, kwargs: dict, dynamic_shapes: Any) -> ExportedProgram:
    # forward gets the ScriptModule's own signature, so inputs keep their names and `dynamic_shapes`
    # (a tuple, or a dict keyed by argument name) means what it means for the original module.
    if isinstance(module, torch.jit.ScriptModule):
        names = [a.name for a in module.forward.schema.arguments[1:]]  # [0] is the module itself
    else:
        names = [a.name for a in module.schema.arguments]

    def forward(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    forward.__signature__ = inspect.Signature([inspect.Parameter(n, kind) for n in ["self", *names]])
    wrapper = type("ScriptModuleCall", (_Call,), {"forward": forward})(module)
    return torch.export.export(wrapper, args, kwargs, dynamic_shapes=dynamic_shapes, strict=False)


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
    # A TorchScript interpreter error puts the real reason ("SomeError: ...") after its traceback.
    text = str(second).splitlines()
    reason = next((m.group(0) for ln in reversed(text) if (m := re.match(r"\w+Error: .*", ln.strip()))),
                  f"{type(second).__name__}: {text[0] if text else ''}")
    lines.append(f"The non-strict torch.export fallback also failed: {reason}")
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
            # The range is a source excerpt in which "~~~~" lines underline the node's own code.
            rng = node.sourceRange().splitlines()
            code = [rng[i - 1].strip() for i in range(1, len(rng)) if rng[i].strip().startswith("~")]
            return (f" at {loc.group(1)}" if loc else "") + (f" (`{code[0]}`)" if code else "")
    return ""
