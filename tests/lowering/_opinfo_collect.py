"""The "collect expect" mode of the OpInfo suite: record each op's outcome, then rewrite the
generated block of tests/lowering/opinfo_expectations.py from what was observed.

Workers append one JSON line per op to `outcome_dir()`; the controlling pytest process merges them
(tests/lowering/conftest.py). Merging keeps the reason of an op whose kind did not change (unless the reason names an aten op
the observed error no longer mentions), writes
"TODO: explain" (with the observed error as a comment) for a new or changed failure and drops ops
that pass now. Ops not run this time (e.g. a `-k` subset) keep their entries.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

ENV = "TORCH_COREML_COLLECT_EXPECT"
TODO = "TODO: explain"
EXPECTATIONS = Path(__file__).with_name("opinfo_expectations.py")
_BEGIN = "# BEGIN GENERATED"
_END = "# END GENERATED"


def collecting() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def outcome_dir() -> Path:
    return Path(os.environ.get(ENV + "_DIR") or Path(tempfile.gettempdir()) / f"torch_coreml_opinfo_{os.getuid()}")


def reset() -> None:
    d = outcome_dir()
    d.mkdir(parents=True, exist_ok=True)
    for f in d.glob("*.jsonl"):
        f.unlink()


def record(key: str, outcome) -> None:
    d = outcome_dir()
    d.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"op": key, "kind": outcome.kind, "detail": outcome.detail,
                       "samples": outcome.samples, "seconds": round(outcome.seconds, 3),
                       "cpu_seconds": round(outcome.cpu_seconds, 3)})
    with open(d / f"{os.getpid()}.jsonl", "a") as f:
        f.write(line + "\n")


def read_outcomes() -> dict[str, dict]:
    out = {}
    for f in sorted(outcome_dir().glob("*.jsonl")):
        for line in f.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["op"]] = rec
    return out


def merge(existing: dict, observed: dict[str, dict], known_ops: set[str]) -> tuple[dict, dict]:
    """New expectations, and the observed detail of every entry whose reason is TODO."""
    merged, notes = {}, {}
    for key, value in existing.items():
        if key in known_ops and key not in observed:
            merged[key] = value
    for key, rec in observed.items():
        if rec["kind"] == "pass":
            continue
        old = existing.get(key)
        if old is not None and old[0] == rec["kind"] and not old[1].startswith("TODO") \
                and not _stale(old[1], rec["detail"]):
            merged[key] = old
        else:
            merged[key] = (rec["kind"], TODO)
            notes[key] = rec["detail"]
    return merged, notes


def _stale(reason: str, detail: str) -> bool:
    """A reason naming ops (aten.x.overload) that the observed failure no longer mentions is stale,
    e.g. "no lowering for aten.sum.dim_IntList" once sum is lowered and another node fails."""
    named = set(re.findall(r"\b[a-z_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+\b", reason))
    return any(op not in detail for op in named if op.startswith(("aten.", "prims.")))


def render(expected: dict, notes: dict) -> str:
    lines = ["EXPECTED = {"]
    order = sorted(expected, key=lambda k: (("export", "unsupported", "mismatch", "crash").index(expected[k][0]), k))
    kind = None
    for key in order:
        k, reason = expected[key]
        if k != kind:
            lines.append(f"    # -- {k} " + "-" * (90 - len(k)))
            kind = k
        if key in notes:
            note = " ".join(notes[key].split())[:300]
            lines.append(f"    # observed: {note}")
        lines.append(f"    {key!r}: ({k!r}, {reason!r}),")
    lines.append("}")
    return "\n".join(lines)


def rewrite(expected: dict, notes: dict, path: Path = EXPECTATIONS) -> None:
    text = path.read_text()
    pattern = re.compile(rf"({re.escape(_BEGIN)}[^\n]*\n).*?(\n{re.escape(_END)})", re.S)
    if not pattern.search(text):
        raise RuntimeError(f"{path}: no '{_BEGIN}' ... '{_END}' block to rewrite")
    new = pattern.sub(lambda m: m.group(1) + render(expected, notes) + m.group(2), text)
    path.write_text(new)


def finish(known_ops: set[str]) -> str:
    """Merge the recorded outcomes into the expectations file; returns a one-line summary."""
    import importlib

    from tests.lowering import opinfo_expectations

    importlib.reload(opinfo_expectations)
    observed = read_outcomes()
    merged, notes = merge(opinfo_expectations.EXPECTED, observed, known_ops)
    rewrite(merged, notes)
    counts = {}
    for rec in observed.values():
        counts[rec["kind"]] = counts.get(rec["kind"], 0) + 1
    todo = sum(1 for _, r in merged.values() if r.startswith("TODO"))
    return (f"collected {len(observed)} ops {counts}; wrote {len(merged)} expectations to {EXPECTATIONS} "
            f"({todo} need a reason)")
