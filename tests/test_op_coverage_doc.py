"""docs/op_coverage.md is generated; it must match what scripts/gen_op_coverage.py writes now."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_op_coverage", ROOT / "scripts" / "gen_op_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_op_coverage_doc_is_current():
    gen = _generator()
    assert gen.DOC.exists(), "docs/op_coverage.md is missing: run python scripts/gen_op_coverage.py"
    assert gen.DOC.read_text() == gen.render(), \
        "docs/op_coverage.md is stale: run python scripts/gen_op_coverage.py"
