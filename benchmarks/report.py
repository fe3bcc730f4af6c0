"""Benchmark records → a console line, a markdown report, and the ct/ours ratio table."""

from __future__ import annotations

import platform
from importlib import metadata

CT_TOOLS = ("ct_export", "ct_script")


def environment() -> dict:
    import torch

    versions = dict(python=platform.python_version(), torch=torch.__version__, machine=platform.machine())
    for name in ("coremltools", "transformers", "numpy"):
        try:  # the installed version, without importing (coremltools' import is noisy off macOS)
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _f(value, fmt="{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def total_convert(r: dict) -> float | None:
    """Conversion time from a captured program: for ct_export including the decomposition it needs."""
    if not r.get("ok"):
        return None
    return r["convert_s"] + r.get("decompose_s", 0.0)


def one_line(r: dict) -> str:
    if not r.get("ok"):
        return f"{r['model']:>13} {r['tool']:>9}  FAILED  {r.get('error', '')}"
    return (f"{r['model']:>13} {r['tool']:>9}  capture {r['capture_s']:6.2f}s  convert {total_convert(r):7.2f}s  "
            f"save {r['save_s']:5.2f}s  rss +{r['rss_growth_mb']:7.0f} MB  ops {r['ops']:5d}  "
            f"weights {r['weight_bytes'] / 2**20:7.1f} MB  err {_f(r.get('max_abs_err'), '{:.2g}')}"
            + (f"  decompose {r['decompose_s']:.2f}s" if "decompose_s" in r else "")
            + ("  [" + " ".join(f"{k} {v:.2f}s" for k, v in r["phases_s"].items()) + "]" if "phases_s" in r else ""))


def _ratio(a, b) -> str:
    return "–" if a is None or b is None or not b else f"{a / b:.2f}"


def _by_model(records):
    models: dict[str, dict[str, dict]] = {}
    for r in records:
        models.setdefault(r["model"], {})[r["tool"]] = r
    return models


def ratio_rows(records) -> list[tuple]:
    """Per model and coremltools path: time ct/ours (>1 means we are faster), memory ours/ct, ops ours/ct."""
    def ok(r, key):
        return r.get(key) if r.get("ok") else None

    rows = []
    for model, tools in _by_model(records).items():
        ours = tools.get("ours", {})
        growth = ok(ours, "rss_growth_mb")
        per_size = growth / ours["params_mb"] if growth is not None and ours.get("params_mb") else None
        for ct_tool in CT_TOOLS:
            ct = tools.get(ct_tool)
            if ct is None:
                continue
            rows.append((model, ct_tool, _ratio(total_convert(ct), total_convert(ours)),
                         _ratio(growth, ok(ct, "rss_growth_mb")), _ratio(ok(ours, "ops"), ok(ct, "ops")),
                         _f(per_size)))
    return rows


RATIO_HEADER = ("model", "vs", "convert time ct/ours", "peak RSS growth ours/ct", "ops ours/ct",
                "ours RSS growth / model size")


def ratio_table(records) -> str:
    return _table(RATIO_HEADER, ratio_rows(records))


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(records, meta: dict) -> str:
    header = ("model", "tool", "capture s", "convert s", "save s", "peak RSS growth MB", "params MB",
              "MIL ops", "consts", "weight MB", "max abs err", "error")
    rows = []
    for r in records:
        ok = r.get("ok")
        rows.append((r["model"], r["tool"], _f(r.get("capture_s")), _f(total_convert(r)), _f(r.get("save_s")),
                     _f(r.get("rss_growth_mb"), "{:.0f}"), _f(r.get("params_mb"), "{:.1f}"),
                     r.get("ops", "–") if ok else "–", r.get("consts", "–") if ok else "–",
                     _f(r["weight_bytes"] / 2**20 if ok else None, "{:.1f}"),
                     _f(r.get("max_abs_err"), "{:.2g}"), "" if ok else r.get("error", "").replace("|", "/")))
    env = ", ".join(f"{k} {v}" for k, v in meta.items())
    return (f"# Conversion benchmark ({meta.get('size')} configs)\n\n{env}\n\n"
            "Times in seconds; `convert` for ct_export includes the `run_decompositions({})` coremltools "
            "requires. Peak RSS growth: high-water mark after conversion + save minus after capture, one "
            "subprocess per row. MIL ops exclude `const`. Max abs err: the saved package run by "
            "torch_coreml's reference runtime vs eager.\n\n"
            + _table(header, rows) + "\n## Ratios\n\n" + ratio_table(records)
            + "\n## Where torch_coreml's conversion time goes (s)\n\n" + phase_table(records))


PHASES = ("decompose", "lower", "optimize", "write weights")


def phase_table(records) -> str:
    """Our export phases next to the `run_decompositions({})` coremltools' export path pays."""
    rows = []
    for model, tools in _by_model(records).items():
        phases = tools.get("ours", {}).get("phases_s")
        if phases:
            ct_decompose = tools.get("ct_export", {}).get("decompose_s")
            rows.append((model, *(_f(phases.get(p)) for p in PHASES), _f(ct_decompose)))
    return _table(("model", *PHASES, "ct_export run_decompositions({})"), rows)
