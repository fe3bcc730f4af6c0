"""`backend="coreml"` works in a fresh interpreter that never imports torch_coreml itself."""

import os
import subprocess
import sys

import torch

_SCRIPT = """
import sys, torch
assert "torch_coreml" not in sys.modules
m = torch.compile(torch.nn.Linear(4, 4), backend="coreml")
with torch.no_grad():
    print(m(torch.randn(2, 4)))
from importlib.metadata import entry_points
(ep,) = [e for e in entry_points(group="torch_dynamo_backends") if e.name == "coreml"]
import torch_coreml.backend as backend
from torch._dynamo.backends.registry import lookup_backend
assert lookup_backend("coreml") is backend.coreml_backend, "registered through the entry point"
print("delegated", backend.last_report().delegated_fraction)
"""


def test_entry_point_in_a_fresh_process(tmp_path):
    env = {**os.environ, "TORCH_COREML_CACHE_DIR": str(tmp_path / "cache")}
    # Run from a directory where `import torch_coreml` could only come from the installed package.
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "delegated 1.0" in done.stdout


def test_import_registers_once():
    import importlib

    import torch_coreml.backend as backend
    from torch._dynamo.backends.registry import lookup_backend

    importlib.reload(backend)  # a second registration attempt must be a no-op, not an error
    assert lookup_backend("coreml").__name__ == "coreml_backend"
    assert "coreml" in torch._dynamo.list_backends()
