"""Real architectures (random weights, the small configs of benchmarks/zoo.py) converted end to end.

Each model is exported once, then converted in fp32 and in fp16; each package is saved, checked by
coremltools' loader, reloaded from disk, run by the reference runtime and compared with eager PyTorch
(tests/lowering/_check.py, tests/tolerances.py). Known failures are data: XFAIL maps (model, precision)
to the exact cause, which lies outside tests/models/; they are strict, so a fix shows up as a failure
telling you to delete the entry.
"""

from __future__ import annotations

import functools

import pytest
import torch

from benchmarks.zoo import MODELS, build  # noqa: E402
from tests.lowering._check import check_conversion  # noqa: E402

XFAIL: dict[tuple[str, str], str] = {
    ("mobilenet_v2", "float16"):
        "fp16 max abs error 0.106 (outputs up to 2.8) vs atol/rtol 1e-2. fp16 arithmetic through 52 convs: "
        "eager model.half() errs 0.075 and coremltools' own fp16 package 0.083 on the same model, so even "
        "a perfect fp16 conversion misses tests/tolerances.py's fp16 tolerance here; ours is 1.3x "
        "coremltools' error (conv+BN fusion now runs on the fp32 weights; the remaining gap is not isolated)",
    ("deeplab_v3", "float16"):
        "fp16 max abs error 0.036 (outputs up to 0.59) vs atol/rtol 1e-2: intrinsic to a ~60-conv fp16 "
        "network, not a conversion bug -- coremltools' own fp16 package errs 0.042 on the same model "
        "(both run by the reference runtime); needs an fp16 tolerance policy for deep nets (tests/tolerances.py)",
}

PRECISIONS = ("float32", "float16")


@functools.lru_cache(maxsize=None)
def _exported(name: str):
    # torch.export is a large share of the time; both precisions convert the same ExportedProgram.
    model, inputs = build(name, "small")
    return model, inputs, torch.export.export(model, inputs)


def _params():
    for name in MODELS:
        for precision in PRECISIONS:
            reason = XFAIL.get((name, precision))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, precision, marks=marks, id=f"{name}-{precision}")


@pytest.mark.parametrize("name, precision", list(_params()))
def test_model_converts_and_matches_eager(name, precision):
    model, inputs, ep = _exported(name)
    check_conversion(ep, inputs, eager=model, precision=precision, target=MODELS[name].min_target)
