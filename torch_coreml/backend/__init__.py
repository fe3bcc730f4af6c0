"""`torch.compile(model, backend="coreml")`: Core ML partitions with PyTorch fallback.

    compiled = torch.compile(model, backend="coreml", options={"compute_precision": "float32"})
    y = compiled(x)
    print(torch_coreml.backend.last_report())   # delegated %, partitions, what fell back and why

The backend is found through the `torch_dynamo_backends` entry point (no import needed); importing
this module also registers it, for environments where the package metadata is not installed.
"""

from __future__ import annotations

import logging

from .compiler import coreml_backend
from .options import BackendOptions, default_cache_dir
from .report import CompileReport, PartitionReport, clear_reports, last_report, reports

log = logging.getLogger(__name__)

BACKEND_NAME = "coreml"


def _register() -> None:
    from torch._dynamo.backends import registry

    # When torch loads us through the entry point it registers the function itself right after the
    # import (and refuses a duplicate name), so only register when nothing claims the name yet.
    if BACKEND_NAME in getattr(registry, "_COMPILER_FNS", {}) or \
            getattr(registry, "_BACKENDS", {}).get(BACKEND_NAME) is not None:
        return
    try:
        registry.register_backend(coreml_backend, name=BACKEND_NAME)
    except AssertionError:  # registered concurrently under the same name: theirs is ours
        log.debug("backend %r already registered", BACKEND_NAME)


_register()

__all__ = ["BackendOptions", "CompileReport", "PartitionReport", "clear_reports", "coreml_backend",
           "default_cache_dir", "last_report", "reports"]
