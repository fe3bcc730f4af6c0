"""The examples run as a user would run them: a fresh process, exit status 0, sensible printed numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.tolerances import TOLERANCES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> str:
    run = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, f"{name} exited with {run.returncode}:\n{run.stderr}"
    return run.stdout


def printed(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in the output:\n{text}"
    return float(match.group(1))


def test_quickstart(tmp_path):
    out = tmp_path / "quickstart.mlpackage"
    text = run_example("quickstart.py", "--out", str(out))
    assert (out / "Manifest.json").is_file()
    assert f"package:    {out}" in text
    tol = TOLERANCES["float16"]
    max_abs = printed(r"max abs error: (\S+)", text)
    max_rel = printed(r"max rel error: (\S+) \(relative to the largest output, (\S+)\)", text)
    scale = printed(r"relative to the largest output, (\S+)\)", text)
    assert max_abs <= tol["atol"] + tol["rtol"] * scale, text
    assert max_rel <= tol["rtol"], text
