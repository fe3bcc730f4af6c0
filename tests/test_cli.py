"""The `torch-coreml` command line: every subcommand through `cli.main`, one through a real process.

The model is small and uses only ops that lower today (mul, add, relu, sub) with a dynamic batch dim,
so the flexible-shape display is covered too. Error cases check the contract: exit status 1 (2 for
bad usage) and exactly one line on stderr, no traceback.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch

import torch_coreml
from torch_coreml.cli import main
from tests.oracle import assert_coremltools_accepts
from tests.tolerances import TOLERANCES


class Affine(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.linspace(-1, 1, 8))
        self.bias = torch.nn.Parameter(torch.linspace(0.5, -0.5, 8))

    def forward(self, x, y):
        return torch.relu(x * self.scale + self.bias), x - y


@torch.library.custom_op("torch_coreml_cli_test::opaque", mutates_args=())
def opaque(x: torch.Tensor) -> torch.Tensor:
    """An op no lowering will ever know: the unsupported-op error path stays testable."""
    return x.clone()


@opaque.register_fake
def _(x):
    return torch.empty_like(x)


class Opaque(torch.nn.Module):
    def forward(self, x):
        return opaque(x) + 1


@pytest.fixture(scope="module")
def model():
    return Affine().eval()


@pytest.fixture(scope="module")
def pt2(tmp_path_factory, model):
    batch = torch.export.Dim("batch", max=16)
    ep = torch.export.export(model, (torch.randn(2, 8), torch.randn(2, 8)),
                             dynamic_shapes=({0: batch}, {0: batch}))
    path = tmp_path_factory.mktemp("pt2") / "affine.pt2"
    torch.export.save(ep, path)
    return path


@pytest.fixture(scope="module")
def package(tmp_path_factory, pt2):
    out = tmp_path_factory.mktemp("pkg") / "affine.mlpackage"
    assert main(["convert", str(pt2), "-o", str(out), "--input-names", "a", "b", "--author", "Ada",
                 "--license", "MIT", "--version", "1.2", "--description", "a test", "--meta", "k=v"]) == 0
    return out


def one_error_line(capfd, code_expected: int, rc: int) -> str:
    """The single stderr line of a failed command (fd level: torch logs to its own handlers)."""
    err = capfd.readouterr().err
    assert rc == code_expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------- convert ---


def test_convert_writes_a_package_that_runs(package, model, capfd):
    assert_coremltools_accepts(package)
    m = torch_coreml.load(package)
    x, y = torch.randn(5, 8), torch.randn(5, 8)
    for got, expected in zip(m(x, y), model(x, y)):
        torch.testing.assert_close(got, expected.detach(), **TOLERANCES["float16"])


def test_convert_prints_a_summary(pt2, tmp_path, capfd):
    out = tmp_path / "m.mlpackage"
    assert main(["convert", str(pt2), "-o", str(out)]) == 0
    text = capfd.readouterr().out
    assert f"-> {out}" in text and "(float16)" in text
    assert "input:   x fp32 [1..16, 8]" in text
    assert re.search(r"ops:     \d+ \(.*relu 1", text), text  # exact counts belong to the pass tests
    assert "weights: 32 B in 2 tensor(s)" in text  # two fp16 [8] parameters


def test_convert_verify_prints_the_error_against_eager(pt2, tmp_path, capfd):
    assert main(["convert", str(pt2), "-o", str(tmp_path / "m.mlpackage"), "--verify"]) == 0
    errors = re.findall(r"verify:  output (\d) \[2, 8\]: max abs (\S+), max rel", capfd.readouterr().out)
    assert [i for i, _ in errors] == ["0", "1"]
    assert all(float(e) <= TOLERANCES["float16"]["atol"] for _, e in errors)


def test_convert_default_output_is_next_to_the_model(pt2, tmp_path):
    model = tmp_path / "model.pt2"
    model.write_bytes(pt2.read_bytes())
    assert main(["convert", str(model)]) == 0
    assert (tmp_path / "model.mlpackage" / "Manifest.json").is_file()


def test_convert_precision_and_target(pt2, tmp_path, capfd):
    out = tmp_path / "m.mlpackage"
    assert main(["convert", str(pt2), "-o", str(out), "--precision", "float32", "--target", "macOS14"]) == 0
    capfd.readouterr()
    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capfd.readouterr().out)
    assert (info["target"], info["spec_version"], info["opset"]) == ("iOS17", 8, "CoreML7")
    assert "cast" not in info["ops"]
    assert info["weight_bytes"] == 64


# ------------------------------------------------------------------------------------- inspect ---


def test_inspect_text(package, capfd):
    assert main(["inspect", str(package)]) == 0
    text = capfd.readouterr().out
    for line in ("input:   a fp32 [1..16, 8]", "input:   b fp32 [1..16, 8]", "target:  iOS16 (spec 7",
                 "author:  Ada", "license: MIT", "version: 1.2", "meta     k = v"):
        assert line in text, text
    assert re.search(r"\n +\d+  const\n", text) and re.search(r"\n +1  relu\n", text), text
    assert "main(" not in text


def test_inspect_json(package, capfd):
    assert main(["inspect", str(package), "--json"]) == 0
    info = json.loads(capfd.readouterr().out)
    assert [f["name"] for f in info["inputs"]] == ["a", "b"]
    assert info["inputs"][0]["ranges"] == [[1, 16], [8, 8]]
    assert info["inputs"][0]["dtype"] == "fp32"
    assert info["metadata"]["author"] == "Ada" and info["metadata"]["user_defined"]["k"] == "v"
    assert info["op_count"] == sum(c for op, c in info["ops"].items() if op != "const")
    assert info["ops"]["relu"] == 1
    assert info["weight_bytes"] == 32 and info["package_bytes"] > 0
    assert "program" not in info


def test_inspect_program(package, capfd):
    assert main(["inspect", str(package), "--program"]) == 0
    assert "main(%a: tensor<fp32" in capfd.readouterr().out
    assert main(["inspect", str(package), "--program", "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["program"].startswith("main(")


# ----------------------------------------------------------------------------------------- run ---


def test_run_writes_one_npy_per_output(package, model, tmp_path, capfd):
    x, y = np.random.randn(3, 8).astype(np.float32), np.random.randn(3, 8).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    outdir = tmp_path / "out"
    rc = main(["run", str(package), "--input", f"a={tmp_path / 'x.npy'}", "-i", f"b={tmp_path / 'y.npy'}",
               "-o", str(outdir)])
    assert rc == 0
    text = capfd.readouterr().out
    assert "reference executor" in text and "float32 [3, 8]" in text
    expected = model(torch.from_numpy(x), torch.from_numpy(y))
    names = [f.name for f in torch_coreml.load(package).interface.outputs]
    for name, want in zip(names, expected):
        got = np.load(outdir / f"{name}.npy")
        np.testing.assert_allclose(got, want.detach().numpy(), **TOLERANCES["float16"])


# ------------------------------------------------------------------------------------- analyze ---


def test_analyze(pt2, capfd):
    assert main(["analyze", str(pt2)]) == 0
    assert capfd.readouterr().out.strip()
    assert main(["analyze", str(pt2), "--json"]) == 0
    assert isinstance(json.loads(capfd.readouterr().out), dict)


# -------------------------------------------------------------------------------------- errors ---


def test_unsupported_ops_are_one_line(tmp_path, capfd):
    path = tmp_path / "opaque.pt2"
    torch.export.save(torch.export.export(Opaque(), (torch.randn(2, 3),)), path)
    rc = main(["convert", str(path), "-o", str(tmp_path / "o.mlpackage")])
    line = one_error_line(capfd, 1, rc)
    assert line.startswith("torch-coreml: error: 1 node(s) cannot be converted to Core ML")
    assert "torch_coreml_cli_test.opaque.default" in line
    assert not (tmp_path / "o.mlpackage").exists()


@pytest.mark.parametrize("args, message", [
    (["convert", "{tmp}/missing.pt2"], "missing.pt2: no such file"),
    (["convert", "{tmp}/junk.pt2"], "junk.pt2: torch.export.load failed: PytorchStreamReader failed"),
    (["convert", "{pt2}", "-o", "{tmp}/out.ml"], "the output path must end in .mlpackage"),
    (["convert", "{pt2}", "-o", "{tmp}/no/dir/out.mlpackage"], "does not exist"),
    (["convert", "{pt2}", "--meta", "novalue"], "--meta novalue: expected KEY=VALUE"),
    (["inspect", "{tmp}/missing.mlpackage"], "missing.mlpackage: no such package"),
    (["inspect", "{tmp}/junk.pt2"], "expected an .mlpackage directory, found a file"),
    (["inspect", "{tmp}/empty.mlpackage"], "expected Manifest.json, found none"),
    (["run", "{pkg}", "-i", "a={tmp}/x.npy"], "missing --input for ['b']"),
    (["run", "{pkg}", "-i", "{tmp}/x.npy"], "expected name=file.npy; the model's inputs are ['a', 'b']"),
    (["run", "{pkg}", "-i", "z={tmp}/x.npy"], "the model has no input 'z'"),
    (["run", "{pkg}", "-i", "a={tmp}/none.npy", "-i", "b={tmp}/x.npy"], "none.npy: no such file"),
    (["run", "{pkg}", "-i", "a={tmp}/junk.pt2", "-i", "b={tmp}/x.npy"], "is not an array saved by numpy.save"),
    (["run", "{pkg}", "-i", "a={tmp}/int.npy", "-i", "b={tmp}/x.npy"],
     "input 'a': expected a floating-point tensor (converted to fp32), got dtype torch.int64"),
    (["run", "{pkg}", "-i", "a={tmp}/wide.npy", "-i", "b={tmp}/x.npy"],
     "input 'a': expected shape [1..16, 8], got shape [3, 9]"),
])
def test_errors_are_one_line(args, message, package, pt2, tmp_path, capfd):
    (tmp_path / "junk.pt2").write_text("not a model")
    (tmp_path / "empty.mlpackage").mkdir()
    np.save(tmp_path / "x.npy", np.zeros((3, 8), np.float32))
    np.save(tmp_path / "int.npy", np.zeros((3, 8), np.int64))
    np.save(tmp_path / "wide.npy", np.zeros((3, 9), np.float32))
    argv = [a.format(tmp=tmp_path, pt2=pt2, pkg=package) for a in args]
    line = one_error_line(capfd, 1, main(argv))
    assert line.startswith("torch-coreml: error: ") and message in line, line


@pytest.mark.parametrize("args, message", [
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: COMMAND"),
    (["convert", "m.pt2", "--precision", "bf16"], "invalid choice: 'bf16'"),
    (["convert", "m.pt2", "--target", "iOS99"], "unknown deployment target 'iOS99'"),
])
def test_usage_errors_exit_2_with_one_line(args, message, capfd):
    line = one_error_line(capfd, 2, main(args))
    assert message in line and "--help" in line


def test_debug_shows_the_traceback(tmp_path, capfd):
    assert main(["inspect", str(tmp_path / "missing.mlpackage"), "--debug"]) == 1
    err = capfd.readouterr().err
    assert "Traceback" in err and "no such package" in err


# ----------------------------------------------------------------------------------- processes ---


def test_python_dash_m_in_a_real_process(package, tmp_path):
    run = subprocess.run([sys.executable, "-m", "torch_coreml", "inspect", str(package), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["inputs"][0]["name"] == "a"
    # torch.export.load logs a traceback for a bad file from its own handler; none of it may leak.
    (tmp_path / "junk.pt2").write_text("not a model")
    run = subprocess.run([sys.executable, "-m", "torch_coreml", "convert", str(tmp_path / "junk.pt2")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [run.stderr.strip()]
    assert run.stderr.startswith("torch-coreml: error: ")


def test_console_script_is_declared():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "torch-coreml"]
    assert script.value == "torch_coreml.cli:main"
