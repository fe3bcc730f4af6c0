"""examples/compile_dropin.py runs as a user would run it and prints what it promises."""

import re

from tests.test_examples import printed, run_example


def test_compile_dropin(tmp_path):
    text = run_example("compile_dropin.py", "--cache-dir", str(tmp_path / "cache"))
    assert printed(r"delegated:\s+\d+/\d+ call nodes \((\d+)%\)", text) >= 90
    assert printed(r"partitions: (\d+) Core ML", text) == 2
    assert "in PyTorch: demo.soft_clip.default x1 (no lowering for this op)" in text
    assert printed(r"warm \S+ s \((\d+) partition\(s\) from the cache", text) == 2
    assert re.search(r"cold \S+ s, warm \S+ s", text)
    assert printed(r"loading them from the cache (\S+) s", text) >= 0
    assert printed(r"max abs error: (\S+)", text) < 1e-4
