"""The compile cache: a second process loads instead of converting; corrupt entries are rebuilt."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torch_coreml.backend as backend
from tests.backend._models import FP32, MLP, assert_close

REPO = Path(__file__).resolve().parents[2]

_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import torch
    import torch_coreml.backend as backend
    from tests.backend._models import MLP
    torch.manual_seed(0)
    model = MLP(16, 64, 8).eval()
    start = time.perf_counter()
    with torch.no_grad():
        y = torch.compile(model, backend="coreml", options={"compute_precision": "float32",
                                                            "cache_dir": sys.argv[1]})(torch.ones(2, 16))
    seconds = time.perf_counter() - start
    statuses = [p.status for r in backend.reports() for p in r.partitions]
    print(json.dumps({"statuses": statuses, "seconds": seconds, "y": y.tolist()}))
""")


def _run_process(tmp_path, cache_dir):
    script = tmp_path / "compile_mlp.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(script), str(cache_dir)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_loads_from_cache(tmp_path, cache_dir):
    cold = _run_process(tmp_path, cache_dir)
    warm = _run_process(tmp_path, cache_dir)
    assert cold["statuses"] == ["converted"]
    assert warm["statuses"] == ["cache_hit"]
    assert warm["y"] == cold["y"]
    assert len([p for p in cache_dir.iterdir() if not p.name.startswith(".")]) == 1


def _compile_once(cache_dir, model, x):
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="coreml", options={**FP32, "cache_dir": cache_dir})
    with torch.no_grad():
        assert_close(compiled(x), model(x))
    (part,) = backend.last_report().partitions
    return part


def _truncate_weights(package: Path):
    blob = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    assert blob.exists()
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])


def _break_manifest(package: Path):
    (package / "Manifest.json").write_text("{not json")


@pytest.mark.parametrize("corrupt", [_truncate_weights, _break_manifest], ids=["weights", "manifest"])
def test_corrupted_entry_is_rebuilt(cache_dir, caplog, corrupt):
    torch.manual_seed(0)
    model, x = MLP(16, 64, 8).eval(), torch.randn(2, 16)
    first = _compile_once(cache_dir, model, x)
    assert first.status == "converted"
    assert _compile_once(cache_dir, model, x).status == "cache_hit"
    corrupt(Path(first.package))
    caplog.set_level("WARNING", logger="torch_coreml.backend")
    rebuilt = _compile_once(cache_dir, model, x)
    assert rebuilt.status == "converted"
    assert any("corrupted" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    assert _compile_once(cache_dir, model, x).status == "cache_hit"  # the rebuilt entry is whole


def test_cache_key_depends_on_weights_and_options(cache_dir):
    torch.manual_seed(0)
    model, x = MLP().eval(), torch.randn(2, 4)
    a = _compile_once(cache_dir, model, x)
    with torch.no_grad():
        model.fc1.weight.add_(1)
    b = _compile_once(cache_dir, model, x)
    assert b.status == "converted" and b.cache_key != a.cache_key
    torch._dynamo.reset()
    torch.compile(model, backend="coreml", options={"cache_dir": cache_dir})(x)  # float16 now
    assert backend.last_report().partitions[0].cache_key not in (a.cache_key, b.cache_key)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_COREML_CACHE_DIR", str(tmp_path / "from_env"))
    with torch.no_grad():
        torch.compile(MLP().eval(), backend="coreml")(torch.randn(2, 4))
    assert Path(backend.last_report().partitions[0].package).is_relative_to(tmp_path / "from_env")


def test_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_COREML_CACHE_DIR", str(tmp_path / "unused"))
    with torch.no_grad():
        torch.compile(MLP().eval(), backend="coreml", options={"cache": False})(torch.randn(2, 4))
    assert not (tmp_path / "unused").exists()
    assert backend.last_report().partitions[0].cache_key == ""
