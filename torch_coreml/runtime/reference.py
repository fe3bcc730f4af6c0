"""The reference executor: runs a saved `.mlpackage` with the op catalogue's kernels.

    executor = ReferenceExecutor("model.mlpackage")
    outputs = executor.run({"x": x})
    everything = executor.run({"x": x}, capture_intermediates=True)   # every op output by name

It reads the package from disk (the artifact is what is tested), materializes const values once,
then runs ops in program order. Each result is cast to its inferred dtype, so an fp16 program
computes in fp16 as Core ML does, and checked against the static dims of its inferred shape: a
disagreement between a kernel and its type inference is a catalogue bug, reported with the op named.

States persist across calls: the executor owns one `StateCell` per state (the runtime value the
`read_state` / `write_state` kernels take). They start at zero (`reset_states`).
"""

from __future__ import annotations

import logging
import os
from collections import ChainMap
from pathlib import Path
from typing import Any, Mapping

import torch

from ..errors import MILTypeError, RuntimeInputError, TorchCoreMLError, UnsupportedOpError
from ..format.serialize import load_model
from ..mil.ops import CATALOGUE
from ..mil.ops.const import const_to_runtime
from ..mil.ops.spec import OpContext, call_kernel
from ..mil.ops.states import StateCell
from ..mil.program import Block, Operation
from ..mil.types import StateType, TensorType
from .executor import register_executor
from .inputs import check_inputs

logger = logging.getLogger(__name__)


class ReferenceExecutor:
    name = "reference"

    def __init__(self, package_path: str | os.PathLike):
        self.package_path = Path(package_path)
        self.program, self.interface = load_model(self.package_path)
        self.function = self.program.main
        self._contexts: dict[int, OpContext] = {}
        self._consts: dict[str, Any] = {}
        for op in self.function.block.walk():
            if op.op_type == "const":
                (out,) = op.outputs
                self._consts[out.name] = const_to_runtime(op.attributes["val"], out.type)
            else:
                spec = CATALOGUE.lookup(op.op_type, self.function.target)
                self._contexts[id(op)] = OpContext(spec, op.inputs, self.function.target, op.blocks, name=op.name)
        self._state_types = {v.name: v.type.wrapped for v in self.function.inputs if isinstance(v.type, StateType)}
        self._states: dict[str, StateCell] = {}
        self.reset_states()

    # -- states -----------------------------------------------------------------------------------
    def reset_states(self) -> None:
        self._states = {name: StateCell(torch.zeros(t.shape, dtype=t.dtype.torch))
                        for name, t in self._state_types.items()}

    def read_state(self, name: str) -> torch.Tensor:
        return self._state(name).value.clone()

    def write_state(self, name: str, value: torch.Tensor) -> None:
        cell, expected = self._state(name), self._state_types[name]
        if tuple(value.shape) != tuple(cell.value.shape):
            raise RuntimeInputError(f"state {name!r}: expected shape {list(cell.value.shape)}, "
                                    f"got {list(value.shape)}")
        cell.value = value.detach().to(expected.dtype.torch).clone()

    def _state(self, name: str) -> StateCell:
        try:
            return self._states[name]
        except KeyError:
            raise KeyError(f"no state named {name!r}; the states are {sorted(self._states)}") from None

    # -- running ----------------------------------------------------------------------------------
    def run(self, inputs: Mapping[str, Any], capture_intermediates: bool = False) -> dict[str, Any]:
        """Outputs by name (interface order); with `capture_intermediates`, every op output too."""
        env = ChainMap(dict(check_inputs(self.interface, inputs)), self._states, self._consts)
        captured: dict[str, Any] | None = {} if capture_intermediates else None
        results = self._run_block(self.function.block, env, captured)
        outputs = {v.name: r for v, r in zip(self.function.block.outputs, results)}
        if captured is None:
            return outputs
        captured.update(outputs)
        return captured

    def _run_block(self, block: Block, env: ChainMap, captured: dict | None) -> list:
        for op in block.operations:
            if op.op_type != "const":
                self._run_op(op, env, captured)
        return [env[v.name] for v in block.outputs]

    def _run_op(self, op: Operation, env: ChainMap, captured: dict | None) -> None:
        ctx = self._contexts[id(op)]
        values = {key: [env[v.name] for v in bound] if isinstance(bound, list) else env[bound.name]
                  for key, bound in op.inputs.items()}

        def run_block(index: int, block_inputs) -> list:
            block = op.blocks[index]
            scope = env.new_child({v.name: x for v, x in zip(block.inputs, block_inputs)})
            return self._run_block(block, scope, captured)

        out_types = [v.type for v in op.outputs]
        try:
            result = call_kernel(ctx, values, out_types, run_block)
        except NotImplementedError as exc:
            raise UnsupportedOpError(f"MIL op {op.op_type} ({op.name!r}) has no working kernel: {exc}") from exc
        except TorchCoreMLError:
            raise
        except Exception as exc:
            exc.add_note(f"while running MIL op {op.op_type} {op.name!r}")
            raise
        if not op.outputs:
            return
        results = [result] if len(op.outputs) == 1 and not _is_single_tuple(result) else list(result)
        if len(results) != len(op.outputs):
            raise MILTypeError(f"MIL op {op.op_type} {op.name!r}: the kernel returned {len(results)} values, "
                               f"the op has {len(op.outputs)} outputs")
        for var, value in zip(op.outputs, results):
            value = _conform(op, var, value)
            env[var.name] = value
            if captured is not None:
                captured[var.name] = value


def _is_single_tuple(result) -> bool:
    return isinstance(result, tuple) and len(result) == 1


def _conform(op: Operation, var, value):
    """Cast a tensor result to its inferred dtype and check its static dims."""
    t = var.type
    if not isinstance(t, TensorType) or t.dtype.torch is None:
        return value
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if value.dtype != t.dtype.torch:
        value = value.to(t.dtype.torch)
    shape = tuple(value.shape)
    if len(shape) != t.rank or any(isinstance(d, int) and d != s for d, s in zip(t.shape, shape)):
        raise MILTypeError(f"MIL op {op.op_type} {op.name!r}: output {var.name!r} has shape {list(shape)} but "
                           f"type inference says {t} (a catalogue bug: kernel and inference disagree)")
    return value


# The catalogue kernels always run on the CPU; compute units are a Core ML choice, so they are ignored.
register_executor(ReferenceExecutor.name, lambda package_path, compute_units="all": ReferenceExecutor(package_path))
