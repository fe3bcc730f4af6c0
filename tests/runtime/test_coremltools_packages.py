"""The big proof: packages written by coremltools, read by our reader, run by our runtime.

Each case converts a small torch model with coremltools (TorchScript or torch.export path) inside
the test session, saves the `.mlpackage`, loads it with `torch_coreml.load` and compares with eager
PyTorch: fp16 programs at fp16 tolerance, the fp32 one tightly. Each case then re-saves the program
with our writer, has coremltools accept that package too, and checks that it runs bit-identically.

A missing catalogue op makes the case fail with the op named (UnsupportedOpError); it is never
skipped.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch

import torch_coreml
from torch_coreml.format.serialize import load_model, save_model

from . import _torch_models as models
from ..oracle import assert_coremltools_accepts

logging.getLogger("coremltools").setLevel(logging.ERROR)


@dataclass
class Case:
    model: Callable[[], torch.nn.Module]
    inputs: list[torch.Tensor]
    target: str = "iOS17"
    precision: str = "fp16"
    via: str = "trace"  # or "export"
    ct_inputs: Callable | None = None  # builds coremltools input specs; default: fixed shapes
    states: list = field(default_factory=list)
    more_inputs: list[list[torch.Tensor]] = field(default_factory=list)  # other shapes to run

    @property
    def tolerance(self) -> float:
        return 1e-5 if self.precision == "fp32" else 1e-2


def r(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=_GEN).to(dtype)


_GEN = torch.Generator().manual_seed(0)

CASES = {
    "cnn": Case(models.CNN, [r(1, 3, 16, 16)]),
    "mlp": Case(models.MLP, [r(4, 20)]),
    "attention": Case(models.Attention, [r(2, 6, 32)]),
    "sdpa_ios18": Case(models.SDPA, [r(1, 2, 5, 8), r(1, 2, 5, 8), r(1, 2, 5, 8)], target="iOS18"),
    "lstm": Case(models.LSTM, [r(2, 7, 8)]),
    "upsample": Case(models.Upsample, [r(1, 3, 5, 6)]),
    "embedding_gather": Case(models.Embed, [torch.randint(0, 50, (2, 7), generator=_GEN, dtype=torch.int32)]),
    "reductions": Case(models.Reductions, [r(3, 5, 4)]),
    "argmax": Case(models.ArgMax, [r(3, 7)]),
    "softmax": Case(models.Softmaxes, [r(3, 4, 5)]),
    "shapes": Case(models.Shapes, [r(2, 6, 3, 4)]),
    "elementwise": Case(models.Elementwise, [r(3, 8)]),
    "conv_transpose": Case(models.ConvTranspose, [r(1, 4, 6, 6)]),
    "topk_cumsum_einsum": Case(models.Misc, [r(2, 4, 6)]),
    "cnn_fp32": Case(models.CNN, [r(1, 3, 16, 16)], target="iOS16", precision="fp32"),
    "mlp_ios15": Case(models.MLP, [r(4, 20)], target="iOS15"),
    "mlp_export": Case(models.MLP, [r(4, 20)], via="export"),
    "mlp_fp16_io": Case(models.MLP, [r(4, 20, dtype=torch.float16)], target="iOS16"),
    "mlp_ranged_batch": Case(models.MLP, [r(3, 20)], more_inputs=[[r(1, 20)], [r(8, 20)]],
                             ct_inputs=lambda ct: [ct.TensorType(shape=(ct.RangeDim(1, 8, default=3), 20))]),
    "cnn_enumerated": Case(models.CNN, [r(1, 3, 16, 16)], more_inputs=[[r(2, 3, 16, 16)]],
                           ct_inputs=lambda ct: [ct.TensorType(shape=ct.EnumeratedShapes(
                               [(1, 3, 16, 16), (2, 3, 16, 16)], default=(1, 3, 16, 16)))]),
}


def _convert(case: Case, path) -> torch.nn.Module:
    import coremltools as ct

    model = case.model().eval()
    # Trace in fp32 even when the model's declared inputs are fp16 (the eager model is fp32).
    example = tuple(x.float() if x.is_floating_point() else x for x in case.inputs)
    target = getattr(ct.target, case.target)
    precision = ct.precision.FLOAT32 if case.precision == "fp32" else ct.precision.FLOAT16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case.via == "export":
            source = torch.export.export(model, example).run_decompositions({})
            mlmodel = ct.convert(source, convert_to="mlprogram", minimum_deployment_target=target,
                                 compute_precision=precision)
        else:
            if case.ct_inputs is not None:
                inputs = case.ct_inputs(ct)
            else:
                inputs = [ct.TensorType(shape=x.shape, dtype=_np_dtype(x)) for x in case.inputs]
            mlmodel = ct.convert(torch.jit.trace(model, example), inputs=inputs, convert_to="mlprogram",
                                 minimum_deployment_target=target, compute_precision=precision)
    mlmodel.save(str(path))
    return model


def _np_dtype(x: torch.Tensor):
    return {torch.float32: np.float32, torch.float16: np.float16, torch.int32: np.int32}[x.dtype]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Converts each case at most once per session: name -> (eager model, package path)."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("coremltools_packages")

    def get(name: str):
        if name not in cache:
            path = root / f"{name}.mlpackage"
            cache[name] = (_convert(CASES[name], path), path)
        return cache[name]

    return get


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def assert_matches(ours, expected, tolerance: float, name: str):
    ours, expected = _as_tuple(ours), _as_tuple(expected)
    assert len(ours) == len(expected), f"{name}: {len(ours)} outputs, eager gives {len(expected)}"
    for i, (o, e) in enumerate(zip(ours, expected)):
        assert o.shape == e.shape, f"{name} output {i}: shape {tuple(o.shape)}, eager {tuple(e.shape)}"
        if not e.dtype.is_floating_point:
            assert torch.equal(o.to(e.dtype), e), f"{name} output {i}: integer values differ"
            continue
        scale = max(1.0, float(e.float().abs().max()))
        err = float((o.float() - e.float()).abs().max()) / scale
        assert err <= tolerance, f"{name} output {i}: max error {err:.3g} (relative to {scale:.3g}) > {tolerance}"


@pytest.mark.parametrize("name", list(CASES))
def test_coremltools_package_runs_on_our_runtime(name, converted, tmp_path):
    case = CASES[name]
    model, path = converted(name)
    module = torch_coreml.load(path)
    with torch.no_grad():
        for inputs in [case.inputs] + case.more_inputs:
            expected = model(*[x.float() if x.is_floating_point() else x for x in inputs])
            assert_matches(module(*inputs), expected, case.tolerance, name)

    # Our writer on a program coremltools wrote: accepted by coremltools and runs the same.
    program, interface = load_model(path)
    again = save_model(tmp_path / "resaved.mlpackage", program, interface)
    assert_coremltools_accepts(again)
    with torch.no_grad():
        for o, a in zip(_as_tuple(module(*case.inputs)), _as_tuple(torch_coreml.load(again)(*case.inputs))):
            assert torch.equal(o, a)


def test_stateful_package_keeps_its_state(tmp_path):
    import coremltools as ct

    model = models.Accumulator().eval()
    x = r(2, 3, dtype=torch.float16)
    fp16 = ct.TensorType(shape=(2, 3), dtype=np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing a module that mutates a buffer warns, rightly
        traced = torch.jit.trace(model, (x,))
        model.total.zero_()
        mlmodel = ct.convert(traced, inputs=[fp16], convert_to="mlprogram",
                             states=[ct.StateType(wrapped_type=fp16, name="total")],
                             minimum_deployment_target=ct.target.iOS18)
    path = tmp_path / "acc.mlpackage"
    mlmodel.save(str(path))
    module = torch_coreml.load(path)
    assert [f.name for f in module.interface.states] == ["total"]
    for step in range(1, 4):
        torch.testing.assert_close(module(x), (x * step) * 2)
    module.reset_states()
    torch.testing.assert_close(module(x), x * 2)


@pytest.mark.parametrize("target", ["iOS16", "iOS18"])
def test_compressed_weights(target, tmp_path):
    """iOS16 constexpr ops carry their parameters as attributes, iOS18 ones as literal inputs."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    model, x = models.MLP().eval(), r(4, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlmodel = ct.convert(torch.jit.trace(model, (x,)), inputs=[ct.TensorType(shape=x.shape)],
                             convert_to="mlprogram", minimum_deployment_target=getattr(ct.target, target))
        config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(weight_threshold=10))
        cto.linear_quantize_weights(mlmodel, config).save(str(tmp_path / "q.mlpackage"))
    module = torch_coreml.load(tmp_path / "q.mlpackage")
    with torch.no_grad():
        assert_matches(module(x), model(x), 1e-2, f"int8 weights {target}")
    program, interface = load_model(tmp_path / "q.mlpackage")
    again = save_model(tmp_path / "resaved.mlpackage", program, interface)
    assert_coremltools_accepts(again)
    assert torch.equal(torch_coreml.load(again)(x), module(x))
