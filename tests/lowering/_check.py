"""Convert a torch model, save it, check the saved package with coremltools, reload it from disk, run
it with the reference runtime and compare with eager PyTorch (and with Core ML, see executor_hook).

    check_conversion(MyModule(), (x,), precision="float16", target="iOS17")
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.utils._pytree as pytree

import torch_coreml
from tests.executor_hook import ExecutorHook
from tests.oracle import assert_coremltools_accepts
from tests.tolerances import TOLERANCES


def check_conversion(model, inputs, *, precision: str = "float32", target: str = "iOS17",
                     dynamic_shapes=None, run_inputs=None, atol=None, rtol=None, eager=None, **options):
    """Returns the converted module. `run_inputs` (a list of input tuples) are extra inputs to
    compare on, e.g. other batch sizes for a dynamic-shape model. `eager` is the reference to compare
    with when `model` itself cannot be called (a path to a TorchScript file); default: `model`."""
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    model = model.eval() if isinstance(model, torch.nn.Module) else model
    cm = torch_coreml.export(model, inputs, dynamic_shapes=dynamic_shapes, compute_precision=precision,
                             minimum_deployment_target=target, **options)
    tol = dict(TOLERANCES[precision])
    if atol is not None:
        tol["atol"] = atol
    if rtol is not None:
        tol["rtol"] = rtol
    with tempfile.TemporaryDirectory() as d:
        path = cm.save(Path(d) / "model.mlpackage")
        assert_coremltools_accepts(path)
        loaded = torch_coreml.load(path, runtime="reference")
        hook = ExecutorHook(path, loaded)  # Core ML too / keep the package, when the environment asks
        for args in [inputs] + list(run_inputs or []):
            with torch.no_grad():
                expected = (eager or model)(*args)
            got = loaded(*args)
            exp_leaves, exp_spec = pytree.tree_flatten(expected)
            got_leaves, got_spec = pytree.tree_flatten(got)
            assert exp_spec == got_spec, f"output structure {got_spec} != eager {exp_spec}"
            for i, (e, g) in enumerate(zip(exp_leaves, got_leaves)):
                assert g.dtype == e.dtype, f"output {i}: dtype {g.dtype} != eager {e.dtype}"
                assert g.shape == e.shape, f"output {i}: shape {tuple(g.shape)} != eager {tuple(e.shape)}"
                if e.dtype.is_floating_point:
                    torch.testing.assert_close(g, e, **tol, msg=lambda m: f"output {i}: {m}")
                else:
                    assert torch.equal(g, e), f"output {i}: {g} != eager {e}"
            hook.check(args, expected, got, tol)
        hook.finish()
    return cm


class Fn(torch.nn.Module):
    """Wraps a function as a module, so single ops can be exported and converted."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def r(*shape):
    return torch.randn(*shape)
