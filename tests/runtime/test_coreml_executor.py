"""The Core ML executor: how it is chosen, and its glue between torch tensors and Core ML.

Core ML itself cannot run here (Linux). These tests check *our* glue — executor selection and its
errors, tensor ↔ numpy conversion, output order and dtypes, flexible shapes, states, compute units and
the compiled-model cache — against a stand-in with the interface of coremltools' `CompiledMLModel`
(`predict(dict of numpy) -> dict of numpy`, `make_state()`), which computes with the reference
executor. They do not check Core ML; the macOS CI tier (TORCH_COREML_TEST_EXECUTOR=coreml) does.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_coreml
from torch_coreml.errors import ExecutorError, RuntimeUnavailableError
from torch_coreml.format.description import Feature, ModelInterface, describe_function
from torch_coreml.format.serialize import save_model
from torch_coreml.mil import dtypes as dt
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.program import Program
from torch_coreml.mil.types import StateType, Symbol, tensor
from torch_coreml.options import COMPUTE_UNITS
from torch_coreml.runtime import coreml
from torch_coreml.runtime.executor import RUNTIME_ENV
from torch_coreml.runtime.reference import ReferenceExecutor


@pytest.fixture(autouse=True)
def _auto_chooses(monkeypatch):
    """These tests are about what "auto" chooses, so undo the suite's pin (tests/conftest.py)."""
    monkeypatch.delenv(RUNTIME_ENV, raising=False)


# -- the stand-in ---------------------------------------------------------------------------------
class StandInState:
    def __init__(self, interface):
        # Not zeros: the executor must set the initial value itself (Core ML does not promise zeros).
        self.values = {f.name: np.full(f.shape, 7, dtype=np.float16) for f in interface.states}

    def read_state(self, name):
        return self.values[name].copy()

    def write_state(self, name, value):
        assert isinstance(value, np.ndarray) and value.shape == self.values[name].shape
        self.values[name] = value.astype(np.float16)


class StandInModel:
    """What `CompiledMLModel` looks like from Python; computes with the reference executor.

    `widen`: return fp16 / int32 outputs as fp32 / int64, as some coremltools builds do.
    """

    def __init__(self, package: Path, compute_units: str, widen: bool = False):
        self.reference = ReferenceExecutor(package)
        self.compute_units, self.widen, self.calls = compute_units, widen, []

    def make_state(self):
        return StandInState(self.reference.interface)

    def predict(self, data, state=None):
        assert all(isinstance(v, np.ndarray) for v in data.values()), "Core ML is handed numpy arrays"
        self.calls.append(data)
        if state is not None:
            for name, value in state.values.items():
                self.reference.write_state(name, torch.from_numpy(value))
        out = self.reference.run({k: torch.from_numpy(v) for k, v in data.items()})
        if state is not None:
            state.values = {n: self.reference.read_state(n).numpy() for n in state.values}
        arrays = {name: t.numpy() for name, t in reversed(out.items())}  # not in interface order
        if self.widen:
            arrays = {k: v.astype(np.float32 if v.dtype.kind == "f" else np.int64) for k, v in arrays.items()}
        return arrays


class StandInTools:
    """The compile / load seam: "compiling" copies the package (a compiled model is self-contained)."""

    def __init__(self, widen: bool = False, compiler: str = "stand-in"):
        self.widen, self.compiler, self.compiled, self.models = widen, compiler, [], []

    def compile(self, package, destination):
        self.compiled.append(package)
        shutil.copytree(package, destination / "model.mlpackage")

    def load(self, compiled, compute_units):
        model = StandInModel(compiled / "model.mlpackage", compute_units, self.widen)
        self.models.append(model)
        return model

    def compiler_id(self):
        return self.compiler


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """Core ML "available", backed by the stand-in; the compiled-model cache under tmp_path."""
    tools = StandInTools()
    monkeypatch.setattr(coreml, "unavailable_reason", lambda: None)
    monkeypatch.setattr(coreml, "CoreMLTools", lambda: tools)
    monkeypatch.setenv(coreml.CACHE_ENV, str(tmp_path / "cache"))
    return tools


def save(tmp_path, fn, name="m", flexibility=None):
    program = Program()
    program.add(fn)
    return save_model(tmp_path / f"{name}.mlpackage", program, describe_function(fn, flexibility=flexibility))


@pytest.fixture
def mixed(tmp_path):
    """x fp32 [2, 3], h fp16 [2, 3], i int32 [3] -> sum fp16, x2 fp32, i1 int32."""
    fn, b = new_function("main", {"x": tensor("fp32", (2, 3)), "h": tensor("fp16", (2, 3)),
                                  "i": tensor("int32", (3,))}, "iOS17")
    x, h, i = fn.inputs
    fn.block.outputs = [b.op("add", x=b.op("cast", x=x, dtype="fp16"), y=h, name="sum"),
                        b.op("mul", x=x, y=np.float32(2), name="x2"),
                        b.op("add", x=i, y=np.int32(1), name="i1")]
    return save(tmp_path, fn)


def mixed_inputs():
    return {"x": torch.randn(2, 3), "h": torch.randn(2, 3, dtype=torch.float16), "i": torch.tensor([1, 2, 3])}


# -- choosing the executor ------------------------------------------------------------------------
def test_off_macos_core_ml_is_unavailable_and_says_why():
    assert "only on macOS" in coreml._probe("linux")


def test_auto_runs_the_reference_executor_and_logs_it(mixed, monkeypatch, caplog):
    monkeypatch.setattr(coreml, "unavailable_reason", lambda: "Core ML exists only on macOS, and this is linux")
    with caplog.at_level(logging.INFO, logger="torch_coreml.runtime.executor"):
        module = torch_coreml.load(mixed)
    assert module.executor == "reference"
    assert "runtime='auto': running with the reference executor (Core ML exists only on macOS" in caplog.text


def test_coreml_runtime_without_core_ml_raises(mixed, monkeypatch):
    monkeypatch.setattr(coreml, "unavailable_reason", lambda: "Core ML exists only on macOS, and this is linux")
    with pytest.raises(RuntimeUnavailableError, match=r"runtime='coreml' needs Core ML.*only on macOS"):
        torch_coreml.load(mixed, runtime="coreml")
    with pytest.raises(RuntimeUnavailableError, match="needs Core ML"):
        torch_coreml.export(torch.nn.ReLU(), (torch.ones(2),), runtime="coreml")


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the real probe off macOS")
def test_coreml_executor_refuses_to_start_off_macos(mixed):
    with pytest.raises(RuntimeUnavailableError, match="only on macOS"):
        torch_coreml.runtime.make_executor("coreml", mixed)


def test_auto_takes_core_ml_when_it_works(mixed, stand_in, caplog):
    with caplog.at_level(logging.INFO, logger="torch_coreml.runtime.executor"):
        module = torch_coreml.load(mixed)
    assert module.executor == "coreml" and "running with the coreml executor" in caplog.text
    assert torch_coreml.load(mixed, runtime="reference").executor == "reference"
    assert torch_coreml.load(mixed, executor="reference").executor == "reference"  # the older keyword


def test_the_environment_can_decide_what_auto_means(mixed, stand_in, monkeypatch, caplog):
    monkeypatch.setenv(RUNTIME_ENV, "reference")
    with caplog.at_level(logging.INFO, logger="torch_coreml.runtime.executor"):
        assert torch_coreml.load(mixed).executor == "reference"
    assert "TORCH_COREML_RUNTIME=reference picks the reference executor" in caplog.text
    assert torch_coreml.load(mixed, runtime="coreml").executor == "coreml", "an explicit runtime wins"
    monkeypatch.setenv(RUNTIME_ENV, "gpu")
    with pytest.raises(ValueError, match="TORCH_COREML_RUNTIME must be"):
        torch_coreml.load(mixed)


def test_compute_units_map_to_coremltools_and_reach_the_model(mixed, stand_in):
    import coremltools as ct

    assert set(coreml.COMPUTE_UNITS) == set(COMPUTE_UNITS)
    for name in COMPUTE_UNITS:
        assert coreml.compute_unit(name) is ct.ComputeUnit[name.upper()]
    torch_coreml.load(mixed, runtime="coreml", compute_units="cpu_and_ne")
    assert stand_in.models[-1].compute_units == "cpu_and_ne"
    with pytest.raises(ValueError, match="compute_units must be one of"):
        torch_coreml.load(mixed, compute_units="gpu")


# -- tensors in and out ---------------------------------------------------------------------------
def test_inputs_become_arrays_of_the_declared_dtypes(mixed, stand_in):
    executor = torch_coreml.load(mixed, runtime="coreml").runner
    inputs = mixed_inputs()
    inputs["x"] = torch.randn(3, 2).t()  # not contiguous
    executor.run(inputs)
    sent = stand_in.models[-1].calls[-1]
    # fp16 goes as fp32 (what coremltools would widen it to anyway), int64 as int32.
    assert {k: v.dtype for k, v in sent.items()} == {"x": np.float32, "h": np.float32, "i": np.int32}
    assert all(v.flags.c_contiguous for v in sent.values())
    np.testing.assert_array_equal(sent["h"], inputs["h"].float().numpy())

    x = torch.randn(2, 3)
    executor.run({**mixed_inputs(), "x": x})
    assert np.shares_memory(stand_in.models[-1].calls[-1]["x"], x.numpy()), "a ready fp32 input is not copied"


@pytest.mark.parametrize("widen", [False, True])
def test_outputs_come_back_in_order_and_in_the_declared_dtypes(mixed, stand_in, widen):
    stand_in.widen = widen
    executor = torch_coreml.load(mixed, runtime="coreml").runner
    inputs = mixed_inputs()
    got = executor.run(inputs)
    expected = ReferenceExecutor(mixed).run(inputs)
    assert list(got) == ["sum", "x2", "i1"]
    assert {k: v.dtype for k, v in got.items()} == {"sum": torch.float16, "x2": torch.float32, "i1": torch.int32}
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


def test_original_torch_dtypes_come_back_through_the_module(stand_in):
    class Model(torch.nn.Module):
        def forward(self, x, i):
            return x * 2, i + 1

    x, i = torch.randn(2, 3), torch.arange(3)
    cm = torch_coreml.export(Model(), (x, i), compute_precision="float16", runtime="coreml")
    assert cm.executor == "coreml"
    y, j = cm(x, i)
    assert (y.dtype, j.dtype) == (torch.float32, torch.int64)  # fp16 / int32 inside, torch's dtypes outside
    torch.testing.assert_close(y, x * 2, rtol=1e-2, atol=1e-2)
    assert torch.equal(j, i + 1)


def test_flexible_shapes_pass_through(tmp_path, stand_in):
    fn, b = new_function("main", {"x": tensor("fp32", (Symbol("n"), 2))}, "iOS17")
    fn.block.outputs = [b.op("relu", x=fn.inputs[0], name="y")]
    executor = torch_coreml.load(save(tmp_path, fn), runtime="coreml").runner
    for n in (1, 5, 40):
        assert executor.run({"x": torch.randn(n, 2)})["y"].shape == (n, 2)
        assert stand_in.models[-1].calls[-1]["x"].shape == (n, 2)


def test_output_conversion_edge_cases():
    interface = ModelInterface([], [Feature("s", dt.fp32, ()), Feature("v", dt.fp16, (Symbol("n"),))])
    out = coreml.to_torch(interface, {"v": np.ones(4, np.float32), "s": np.array([3.0], np.float32)})
    assert out["s"].shape == () and out["v"].dtype == torch.float16
    readonly = np.ones(4, np.float16)
    readonly.flags.writeable = False
    assert coreml.to_torch(interface, {"v": readonly, "s": np.float32(1)})["v"].shape == (4,)
    with pytest.raises(ExecutorError, match=r"no value for output\(s\) \['s'\]"):
        coreml.to_torch(interface, {"v": np.ones(4, np.float16)})


def test_states_start_at_zero_persist_and_reset(tmp_path, stand_in):
    fn, b = new_function("main", {"x": tensor("fp16", (2, 3)), "acc": StateType(tensor("fp16", (2, 3)))}, "iOS18")
    x, acc = fn.inputs
    b.op("write_state", input=acc, data=b.op("add", x=b.op("read_state", input=acc), y=x))
    fn.block.outputs = [b.op("mul", x=b.op("read_state", input=acc), y=np.float16(2), name="y")]
    module = torch_coreml.load(save(tmp_path, fn), runtime="coreml")
    executor = module.runner
    x = torch.rand(2, 3, dtype=torch.float16)
    for step in (1, 2, 3):
        torch.testing.assert_close(executor.run({"x": x})["y"], x * step * 2)
    torch.testing.assert_close(executor.read_state("acc"), x * 3)
    executor.write_state("acc", torch.ones(2, 3))
    torch.testing.assert_close(executor.run({"x": x})["y"], (x + 1) * 2)
    module.reset_states()
    assert torch.equal(executor.read_state("acc"), torch.zeros(2, 3, dtype=torch.float16))


# -- the compiled-model cache ---------------------------------------------------------------------
def test_a_package_compiles_once_per_content_and_compiler(mixed, tmp_path):
    tools, cache = StandInTools(), tmp_path / "cache"
    first = coreml.CoreMLExecutor(mixed, tools=tools, cache=cache)
    coreml.CoreMLExecutor(mixed, "cpu_only", tools=tools, cache=cache)
    copy = shutil.copytree(mixed, tmp_path / "elsewhere" / "copy.mlpackage")
    coreml.CoreMLExecutor(copy, tools=tools, cache=cache)
    assert tools.compiled == [mixed], "same content, wherever it lives: one compile"
    coreml.CoreMLExecutor(mixed, tools=StandInTools(compiler="newer macOS"), cache=cache)
    (copy / "Manifest.json").write_text((copy / "Manifest.json").read_text() + " ")
    coreml.CoreMLExecutor(copy, tools=tools, cache=cache)
    assert tools.compiled == [mixed, copy], "changed content recompiles"
    assert len(list(cache.glob("*.mlmodelc"))) == 3 and not list(cache.glob(".*")), "no staging left behind"
    assert first.run(mixed_inputs())["x2"].dtype == torch.float32


def test_a_failed_compile_leaves_nothing_and_a_lost_race_is_fine(mixed, tmp_path):
    cache = tmp_path / "cache"

    class Failing(StandInTools):
        def compile(self, package, destination):
            destination.mkdir()
            raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        coreml.compiled_model(mixed, Failing(), cache)
    assert list(cache.iterdir()) == []

    class Racing(StandInTools):
        def compile(self, package, destination):
            super().compile(package, destination)
            # another process finishes the same compile first
            target = cache / f"{coreml.package_digest(package, self.compiler_id())[:32]}.mlmodelc"
            shutil.copytree(destination, target)

    target = coreml.compiled_model(mixed, Racing(), cache)
    assert (target / "model.mlpackage").is_dir() and [p.name for p in cache.iterdir()] == [target.name]


# -- the suite's second-executor hook and scripts/compare_executors.py ---------------------------
def test_suite_hook_runs_core_ml_keeps_packages_and_the_script_compares_them(tmp_path, monkeypatch, stand_in,
                                                                           capsys):
    import importlib.util

    from tests import executor_hook
    from tests.lowering._check import check_conversion

    kept = tmp_path / "kept"
    monkeypatch.setenv(executor_hook.KEEP_ENV, str(kept))
    monkeypatch.setenv(executor_hook.EXECUTOR_ENV, "coreml")
    check_conversion(torch.nn.Softmax(-1), (torch.randn(2, 5),), run_inputs=[(torch.randn(2, 5),)])
    check_conversion(torch.nn.Softmax(-1), (torch.randn(2, 5),))
    # export's own module also takes "Core ML" here (runtime="auto"); only the hook's modules are called.
    assert [len(m.calls) for m in stand_in.models if m.calls] == [2, 1], "the hook ran every call via Core ML"
    dirs = sorted(p.name for p in kept.iterdir())
    assert len(dirs) == 2 and dirs[1] == dirs[0] + "-1" and "test_suite_hook" in dirs[0]

    path = Path(__file__).resolve().parents[2] / "scripts" / "compare_executors.py"
    spec = importlib.util.spec_from_file_location("compare_executors", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(kept)]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 packages agree (reference vs coreml" in out and "max abs 0" in out
    assert script.main([str(tmp_path / "empty")]) == 1, "nothing kept is a failure, not a silent pass"


def test_a_pickled_module_chooses_again_where_it_is_unpickled(mixed, stand_in, monkeypatch):
    import pickle

    auto = pickle.dumps(torch_coreml.load(mixed, compute_units="cpu_only"))
    explicit = pickle.dumps(torch_coreml.load(mixed, runtime="coreml"))
    assert pickle.loads(auto).executor == "coreml" and stand_in.models[-1].compute_units == "cpu_only"
    monkeypatch.setattr(coreml, "unavailable_reason", lambda: "Core ML exists only on macOS, and this is linux")
    assert pickle.loads(auto).executor == "reference", "'auto' was asked for, so 'auto' it stays"
    with pytest.raises(RuntimeUnavailableError, match="needs Core ML"):
        pickle.loads(explicit)
