#!/usr/bin/env python
"""Regenerate tests/lowering/opinfo_expectations.py from the observed outcomes of the OpInfo suite.

    python scripts/collect_opinfo_expectations.py            # whole suite, pytest -n 2
    python scripts/collect_opinfo_expectations.py -k softmax # a subset; other entries are kept

Extra arguments go to pytest. Afterwards, replace every "TODO: explain" with the cause and run
scripts/gen_op_coverage.py.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    env = dict(os.environ, TORCH_COREML_COLLECT_EXPECT="1")
    workers = [] if any(a.startswith("-n") for a in argv) else ["-n", "2"]
    cmd = [sys.executable, "-m", "pytest", "tests/lowering/test_opinfo.py", "-q", "-p", "no:randomly",
           *workers, *argv]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
