"""The collect-expect machinery: merging observed outcomes into the expectations file."""

import ast
import shutil

from tests.lowering import _opinfo_collect as collect


def _rec(kind, detail="boom"):
    return {"kind": kind, "detail": detail}


def test_merge_keeps_reasons_and_marks_new_failures():
    existing = {
        "same": ("unsupported", "MIL has no complex dtype"),
        "fixed": ("mismatch", "old reason"),
        "changed": ("unsupported", "no lowering"),
        "not_run": ("export", "data-dependent"),
        "gone": ("crash", "op no longer in op_db"),
        "stale": ("unsupported", "no lowering for aten.sum.dim_IntList"),
        "current": ("unsupported", "no lowering for aten.cumprod.default"),
    }
    observed = {"same": _rec("unsupported"), "fixed": _rec("pass", ""), "changed": _rec("mismatch", "off by 1"),
                "new": _rec("crash", "IndexError"),
                "stale": _rec("unsupported", "aten.cumsum.default (aten.cumsum.default: no lowering)"),
                "current": _rec("unsupported", "aten.cumprod.default (aten.cumprod.default: no lowering)")}
    merged, notes = collect.merge(existing, observed, {"same", "fixed", "changed", "not_run", "new", "stale",
                                                       "current"})
    assert merged == {
        "same": ("unsupported", "MIL has no complex dtype"),
        "changed": ("mismatch", collect.TODO),
        "not_run": ("export", "data-dependent"),
        "new": ("crash", collect.TODO),
        "stale": ("unsupported", collect.TODO),
        "current": ("unsupported", "no lowering for aten.cumprod.default"),
    }
    assert set(notes) == {"changed", "new", "stale"} and notes["new"] == "IndexError"


def test_rewrite_replaces_only_the_generated_block(tmp_path):
    path = tmp_path / "opinfo_expectations.py"
    shutil.copy(collect.EXPECTATIONS, path)
    before = path.read_text()
    expected = {"b.variant": ("crash", collect.TODO), "a": ("export", "it's data-dependent")}
    collect.rewrite(expected, {"b.variant": "ValueError: x\n  more"}, path)
    text = path.read_text()
    head = before.split("# BEGIN GENERATED")[0]
    assert text.startswith(head) and text.rstrip().endswith("# END GENERATED")
    namespace = {}
    exec(compile(ast.parse(text), str(path), "exec"), namespace)
    assert namespace["EXPECTED"] == expected
    assert "# observed: ValueError: x more" in text
    assert text.index("'a'") < text.index("'b.variant'")  # grouped: export before crash
    collect.rewrite(expected, {"b.variant": "ValueError: x\n  more"}, path)
    assert path.read_text() == text  # stable
