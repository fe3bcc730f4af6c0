"""Real architectures (random weights, small configs from benchmarks/zoo.py) converted end to end.

Each model is exported, saved, checked by coremltools' loader, reloaded from disk, run by the reference
runtime and compared with eager PyTorch in fp32 and in fp16 (tests/lowering/_check.py).
Known failures are data: XFAIL maps (model, precision) to the exact cause; an unexpected pass fails.
"""

from __future__ import annotations

import pytest

from benchmarks.zoo import MODELS, build
from tests.lowering._check import check_conversion

pytest.importorskip("transformers")

# (model, precision) -> the cause, outside tests/models/; strict, so a fix shows up as a failure to remove.
XFAIL: dict[tuple[str, str], str] = {}

PRECISIONS = ("float32", "float16")


def _params():
    for name in MODELS:
        for precision in PRECISIONS:
            reason = XFAIL.get((name, precision))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, precision, marks=marks, id=f"{name}-{precision}")


@pytest.mark.parametrize("name, precision", list(_params()))
def test_model_converts_and_matches_eager(name, precision):
    model, inputs = build(name, "small")
    check_conversion(model, inputs, precision=precision, target=MODELS[name].min_target)
