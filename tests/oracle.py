"""coremltools as a test oracle for the packages we write.

    assert_coremltools_accepts("model.mlpackage")

Two independent checks: `MLModel(path, skip_model_load=True)` parses the package (manifest, spec,
description validation that runs in Python), and coremltools' MIL proto loader rebuilds the program
with its own op definitions, which type-checks every op and resolves every blob value.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

# coremltools complains at import that its native libraries are missing on Linux; not our concern.
logging.getLogger("coremltools").setLevel(logging.ERROR)


def assert_coremltools_accepts(path: str | os.PathLike):
    """Load the package with coremltools both ways; returns coremltools' MIL program."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_milproto

    path = Path(path)
    try:
        model = ct.models.MLModel(str(path), skip_model_load=True)
    except Exception as exc:  # noqa: BLE001 - turned into a test failure with context
        raise AssertionError(f"coremltools MLModel rejects {path}: {exc}") from exc
    spec = model.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        raise AssertionError(f"{path}: coremltools sees a {spec.WhichOneof('Type')} model, not an mlProgram")
    weights_dir = path / "Data" / "com.apple.CoreML" / "weights"
    try:
        return load_milproto(spec, specification_version=spec.specificationVersion,
                             file_weights_dir=str(weights_dir))
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"coremltools' MIL proto loader rejects {path}: {type(exc).__name__}: {exc}") from exc
