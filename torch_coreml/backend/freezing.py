"""Freezing module state into the graph, so it becomes Core ML consts instead of model inputs.

With inlined nn.Modules (torch's default), Dynamo lifts parameters, buffers and tensor attributes of
modules to graph inputs. We hand aot_autograd a plain GraphModule (not marked as Dynamo's, so aot does
not look for Dynamo's source metadata) in which those inputs are registered buffers: aot lifts a
module's buffers to the first inputs of the graph it traces and records them in
`TracingContext.params_flat`, the same contract inductor's freezing relies on. The forward compiler
then turns those first placeholders back into constants (`bind_constants`).

The detached copies do not require grad, so aot takes its inference path (no joint graph). Freezing
captures the state at compile time; Dynamo does not guard parameter values, so the compiled function
checks identity and version counters of the frozen tensors on every call and runs the graph in
PyTorch (with a warning) once they changed: stale weights never run silently. Call
`torch._dynamo.reset()` (or compile again) to convert the new weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch._dynamo.source import is_from_unspecialized_param_buffer_source
from torch._dynamo.utils import get_static_address_type

log = logging.getLogger(__name__)
aten = torch.ops.aten


@dataclass
class FrozenGraph:
    gm: torch.fx.GraphModule  # placeholders of module state replaced by buffers
    runtime_inputs: list[Any]  # the example inputs still fed at call time, in order
    runtime_positions: list[int]  # their positions among Dynamo's inputs
    state: dict[str, torch.Tensor]  # buffer name → (detached) module tensor
    grad_state: list[str]  # module tensors that require grad (graph inputs' names)
    # (position among Dynamo's inputs, the module tensor, its version counter when frozen)
    snapshot: list[tuple[int, torch.Tensor, int]]

    def is_stale(self, args: tuple) -> bool:
        """True when module state changed since it was frozen: replaced, or modified in place
        (an optimizer step, `load_state_dict`, `with torch.no_grad(): w.add_(1)` bump `_version`)."""
        return any(args[i] is not t or t._version != v for i, t, v in self.snapshot)


def is_module_state(node: torch.fx.Node, example: Any) -> bool:
    """Dynamo read this tensor from an nn.Module's parameters or buffers.

    Plain tensor attributes are not frozen: code often swaps them between calls (a mask, a cache) and
    Dynamo does not guard their values, so they stay program inputs."""
    if not isinstance(example, torch.Tensor):
        return False
    grapharg = node.meta.get("grapharg")
    source = getattr(grapharg, "source", None)
    if source is not None:
        return is_from_unspecialized_param_buffer_source(source)
    # Without a source (graphs not from Dynamo), Dynamo's static-input mark of parameters decides.
    return isinstance(example, torch.nn.Parameter) and get_static_address_type(example) is not None


def freeze_module_state(gm: torch.fx.GraphModule, example_inputs: list) -> FrozenGraph:
    graph = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    state: dict[str, torch.Tensor] = {}
    by_id: dict[int, str] = {}  # tied weights: one buffer, so aot's lifted inputs stay unique
    runtime, positions, grad_state, snapshot = [], [], [], []
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    examples = dict(zip(placeholders, example_inputs))
    for node in gm.graph.nodes:
        if node.op == "placeholder" and is_module_state(node, examples[node]):
            value = examples[node]
            snapshot.append((placeholders.index(node), value, value._version))
            if value.requires_grad:
                grad_state.append(node.name)
            name = by_id.get(id(value))
            if name is None:
                name = by_id[id(value)] = f"_frozen_{len(state)}"
                state[name] = value.detach()
            env[node] = graph.get_attr(name)
            env[node].meta.update(node.meta)
            continue
        if _reads_frozen_scalar(node, env):
            # `.item()` of a module's float attribute (Dynamo wraps floats in tensors under dynamic=True):
            # aot cannot read a value from a fake tensor, and the value is frozen anyway.
            env[node] = state[env[node.args[0]].target].item()
            continue
        if node.op == "placeholder":
            runtime.append(examples[node])
            positions.append(placeholders.index(node))
        env[node] = graph.node_copy(node, lambda n: env[n])
    root = torch.nn.Module()
    for name in _attribute_targets(gm):
        _copy_attr(gm, root, name)
    for name, value in state.items():
        root.register_buffer(name, value)
    frozen = torch.fx.GraphModule(root, graph, class_name="FrozenGraph")
    return FrozenGraph(frozen, runtime, positions, state, grad_state, snapshot)


def bind_constants(gm: torch.fx.GraphModule, constants: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace the first len(constants) placeholders (aot's lifted buffers) by get_attr constants.

    Returns name → tensor of the constants."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    named: dict[str, torch.Tensor] = {}
    if len(placeholders) < len(constants):
        raise RuntimeError(f"expected aot to lift {len(constants)} module tensors, the graph has "
                           f"{len(placeholders)} inputs")
    for i, (node, value) in enumerate(zip(placeholders, constants)):
        meta = node.meta.get("val")
        if isinstance(meta, torch.Tensor) and (tuple(meta.shape) != tuple(value.shape) or meta.dtype != value.dtype):
            # aot's lifted inputs are not in the order we registered them: refuse rather than guess.
            raise RuntimeError(f"graph input {node.name} ({meta.dtype}{list(meta.shape)}) is not the frozen "
                               f"tensor expected there ({value.dtype}{list(value.shape)})")
        name = f"_coreml_const_{i}"
        gm.register_buffer(name, value.detach())
        named[name] = value
        with gm.graph.inserting_before(node):
            attr = gm.graph.get_attr(name)
        attr.meta.update(node.meta)
        node.replace_all_uses_with(attr)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return named


def _reads_frozen_scalar(node: torch.fx.Node, env: dict) -> bool:
    is_item = (node.op == "call_method" and node.target == "item") or \
        (node.op == "call_function" and node.target is torch.Tensor.item)
    if not is_item or not isinstance(node.args[0], torch.fx.Node):
        return False
    src = env.get(node.args[0])
    return isinstance(src, torch.fx.Node) and src.op == "get_attr"


def _attribute_targets(gm: torch.fx.GraphModule) -> list[str]:
    return sorted({n.target for n in gm.graph.nodes if n.op in ("get_attr", "call_module")})


def _copy_attr(src: torch.nn.Module, dst: torch.nn.Module, qualname: str) -> None:
    *path, leaf = qualname.split(".")
    for part in path:
        src = getattr(src, part)
        if not hasattr(dst, part):
            setattr(dst, part, torch.nn.Module())
        dst = getattr(dst, part)
    setattr(dst, leaf, getattr(src, leaf))
