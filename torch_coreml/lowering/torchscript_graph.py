"""Our subclass of torch's TorchScript → FX graph converter: `while` loops and source locations.

Source: every FX node made for a TorchScript node gets that node's source as `stack_trace` (and a
traced node's module scope as `nn_module_stack`), the metadata our unsupported-op errors print.

Loops: torch's converter unrolls a `prim::Loop` whose trip count is a constant and refuses every other
loop. We handle one more shape, the scripted `while <tensor condition>:`, as
`torch.ops.higher_order.while_loop` (→ MIL while_loop):

    %out = prim::Loop(%max_trips, %cond0, %carried...)     # max_trips = INT64_MAX: no trip bound
      block0(%i, %carried...):  ... -> (%cond, %carried'...)

becomes `while_loop(cond_fn, body_fn, (cond0, *carried), globals)`: the condition is carried as a
bool tensor, `cond_fn` returns it, `body_fn` runs the block and returns the new condition and values.
Loops that also read their iteration index, or that both bound the trips and test a condition (a
`for` with `break`), are left to torch's converter (which raises, and we report the construct).
"""

from __future__ import annotations

import linecache
import operator
import re

import torch

_UNBOUNDED = 2**31 - 1  # a `while` loop's trip count is INT64_MAX; anything this large is "no bound"


def graph_converter_class(base):
    """A subclass of torch's `TS2FXGraphConverter` that converts `while` loops to while_loop."""

    class _LoopConverter(base):
        def convert_node(self, node: torch._C.Node):
            # Record the TorchScript source on the FX nodes made for `node`: export keeps node meta when
            # it retraces, so unsupported-op errors can name the user's line and module.
            last = next(reversed(self.fx_graph.nodes), None)
            super().convert_node(node)
            fx_node = last.next if last is not None else next(iter(self.fx_graph.nodes), None)
            trace, scope = _source_meta(node)
            while fx_node is not None and fx_node.op != "root":  # the graph's sentinel ends the list
                if trace:
                    fx_node.meta.setdefault("stack_trace", trace)
                if scope:
                    fx_node.meta.setdefault("nn_module_stack", {scope: (scope, "")})
                fx_node = fx_node.next

        def convert_prim_Loop(self, node: torch._C.Node):
            if not self._is_while(node):
                return super().convert_prim_Loop(node)
            self._convert_while(node)

        def _is_while(self, node) -> bool:
            trips, cond0 = list(node.inputs())[:2]
            trip_count = self.name_to_constant.get(trips.debugName())
            index = next(node.blocks()).paramNode().outputsAt(0)
            return (isinstance(trip_count, int) and trip_count >= _UNBOUNDED and not index.uses()
                    and cond0.debugName() in self.name_to_node)

        def _convert_while(self, node):
            inputs = list(node.inputs())
            global_arguments = set(self._identify_inputs_as_arguments(node))
            for block in node.blocks():
                global_arguments |= self.blocks_to_lifted_attrs[block]
            global_arguments = sorted(global_arguments)
            (body_attr,), (sub,) = self._convert_block_to_subgraph(node, global_arguments)
            if sub.name_update_from_subblock_to_parent:
                raise RuntimeError("a while loop that updates outer values in place is not supported")
            # The block becomes part of the body wrapper, not a subgraph of its own.
            body = self.subgraphs.pop(body_attr.target)
            self.fx_graph.erase_node(body_attr)
            carried = [self.get_fx_value_by_ir_value(v) for v in inputs[1:]]  # condition first
            extra = [self.get_fx_value_by_fqn(name) for name in global_arguments]
            cond_name = self.add_subgraph(_cond_module(len(carried), len(extra)))
            body_name = self.add_subgraph(_body_module(body, len(carried), len(extra)))
            loop = self.fx_graph.call_function(
                torch.ops.higher_order.while_loop,
                (self.fx_graph.get_attr(cond_name), self.fx_graph.get_attr(body_name),
                 tuple(carried), tuple(extra)))
            for i, out in enumerate(node.outputs()):
                self.name_to_node[out.debugName()] = self.fx_graph.call_function(
                    operator.getitem, (loop, i + 1))  # + 1: the condition is carried first

    return _LoopConverter


def _cond_module(n_carried: int, n_extra: int) -> torch.fx.GraphModule:
    g = torch.fx.Graph()
    args = [g.placeholder(f"carried_{i}") for i in range(n_carried)]
    args += [g.placeholder(f"extra_{i}") for i in range(n_extra)]
    g.output(g.call_function(torch.ops.aten.clone.default, (args[0],)))  # a HOP may not return an input
    return torch.fx.GraphModule(torch.nn.Module(), g)


def _body_module(block: torch.fx.GraphModule, n_carried: int, n_extra: int) -> torch.fx.GraphModule:
    """(cond, *carried, *extra) -> (cond', *carried'): the TS block takes (*extra, index, *carried)."""
    g = torch.fx.Graph()
    carried = [g.placeholder(f"carried_{i}") for i in range(n_carried)]
    extra = [g.placeholder(f"extra_{i}") for i in range(n_extra)]
    out = g.call_module("block", (*extra, 0, *carried[1:]))
    g.output(tuple(g.call_function(operator.getitem, (out, i)) for i in range(n_carried)))
    root = torch.nn.Module()
    root.block = block
    return torch.fx.GraphModule(root, g)



def _source_meta(node: torch._C.Node) -> tuple[str, str]:
    """(a Python-style stack trace, the module path) for a TorchScript node; "" where unknown."""
    rng = node.sourceRange()
    # A traced node keeps the Python stack, innermost first: "path(line): function" per frame.
    frames = re.findall(r"^(\S.*?)\((\d+)\): (\S+)$", rng, re.M)
    if not frames:
        # A scripted node: "# path:line:col" ends its printed form; "~~~~" underlines its code.
        loc = re.search(r"# (\S+):(\d+):\d+", str(node).splitlines()[0])
        frames = [(loc.group(1), loc.group(2), "forward")] if loc else []
    trace = "".join(f'File "{f}", line {n}, in {fn}\n    {linecache.getline(f, int(n)).strip()}\n'
                    for f, n, fn in reversed(frames))
    scope = node.scopeName().rsplit("/", 1)[-1]
    scope = re.sub(r"^__module\.?|^.*::", "", scope)
    return trace, scope
