"""The Core ML executor (macOS): runs a saved `.mlpackage` with Apple's Core ML framework.

    executor = CoreMLExecutor("model.mlpackage", compute_units="cpu_and_ne")
    outputs = executor.run({"x": x})        # dict name -> torch.Tensor, in interface output order

Why coremltools and not PyObjC's CoreML bindings: coremltools (the optional `apple` extra) already
does the hard, Apple-maintained part in C++ — numpy ↔ MLMultiArray with strides and fp16, flexible
shapes, `MLState` for iOS18 stateful models (`make_state`, `predict(state=)`, `read_state` /
`write_state`), compute-unit selection, compiling a package (`compile_model`) and loading a compiled
`.mlmodelc` directly (`CompiledMLModel`), which is what lets us cache the compiled model ourselves.
With PyObjC we would write and maintain the MLMultiArray / MLFeatureProvider / MLState glue on raw
pointers. The costs are weight (coremltools pulls sympy, tqdm, attrs, … — acceptable for an opt-in
extra that the test-suite installs anyway) and that its native module exists only in macOS wheels.

Compilation happens once per package content: the compiled model is cached in the user cache dir
(`TORCH_COREML_CACHE_DIR`, else `~/Library/Caches/torch_coreml`), keyed by a digest of the package
files, the coremltools version and the macOS version (a compiled model belongs to the compiler that
made it). The cache lives outside the package because packages are often read-only or temporary.

What Core ML sees and gives back follows the reference executor exactly: inputs are checked and
converted by `check_inputs` (the interface features' dtypes), outputs come back keyed by feature name,
in interface order, in the features' dtypes (fp16 outputs stay fp16, int32 stays int32), so
`CoreMLModule` restores the original torch dtypes the same way for both executors.

coremltools is imported here only, and only lazily: importing this module never needs it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ExecutorError, RuntimeUnavailableError
from ..format.description import Feature, ModelInterface
from ..format.serialize import load_model
from ..mil import dtypes as dt
from .executor import register_executor
from .inputs import check_inputs

logger = logging.getLogger(__name__)

# torch_coreml's compute_units option -> the member name of coremltools.ComputeUnit.
COMPUTE_UNITS = {"all": "ALL", "cpu_only": "CPU_ONLY", "cpu_and_gpu": "CPU_AND_GPU", "cpu_and_ne": "CPU_AND_NE"}
CACHE_ENV = "TORCH_COREML_CACHE_DIR"
_MIN_MACOS = (12, 0)  # Core ML runs ML Program packages from macOS 12 on
_STATES_MACOS = (15, 0)  # MLState (stateful models) from macOS 15 on


# -- is Core ML usable here? ------------------------------------------------------------------------
def unavailable_reason() -> str | None:
    """None when Core ML can run models on this machine, else a sentence saying why not."""
    return _probe(sys.platform)


@functools.cache
def _probe(system: str) -> str | None:
    # Checked in order of cost: off macOS, coremltools is never imported.
    if system != "darwin":
        return f"Core ML exists only on macOS, and this is {system}"
    version = _macos_version()
    if version < _MIN_MACOS:
        return f"Core ML runs ML Program packages from macOS 12 on, and this is macOS {platform.mac_ver()[0]}"
    try:
        import coremltools  # noqa: F401
    except ImportError as exc:
        return f"coremltools is not installed ({exc}); install it with: pip install 'torch-coreml[apple]'"
    try:
        # coremltools' own native bridge to Core ML; a source build or a wrong wheel lacks it.
        from coremltools.libcoremlpython import _MLModelProxy
        _MLModelProxy.maximum_supported_specification_version()  # a real call into Core ML
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing: cannot run models
        return f"coremltools cannot reach Core ML ({type(exc).__name__}: {exc})"
    return None


def _macos_version() -> tuple[int, ...]:
    text = platform.mac_ver()[0]
    return tuple(int(p) for p in text.split(".") if p.isdigit()) if text else ()


def compute_unit(name: str):
    """coremltools' ComputeUnit member for a torch_coreml compute_units value."""
    if name not in COMPUTE_UNITS:
        raise ValueError(f"compute_units must be one of {tuple(COMPUTE_UNITS)}, got {name!r}")
    import coremltools as ct

    return ct.ComputeUnit[COMPUTE_UNITS[name]]


# -- the coremltools calls, behind one seam (tests replace it with a stand-in) ----------------------
class CoreMLTools:
    """Compile a package, load a compiled model, and say which compiler compiled it."""

    def compile(self, package: Path, destination: Path) -> None:
        from coremltools.models.utils import compile_model

        compile_model(str(package), str(destination))

    def load(self, compiled: Path, compute_units: str) -> Any:
        from coremltools.models import CompiledMLModel

        return CompiledMLModel(str(compiled), compute_unit(compute_units))

    def compiler_id(self) -> str:
        import coremltools

        return f"coremltools={coremltools.__version__};macos={platform.mac_ver()[0]}"


# -- the compiled-model cache -----------------------------------------------------------------------
def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "torch_coreml"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch_coreml"


def package_digest(package: Path, salt: str = "") -> str:
    """sha256 over the package's relative file names and bytes (and `salt`): equal content, equal key."""
    h = hashlib.sha256(salt.encode())
    for path in sorted(p for p in package.rglob("*") if p.is_file()):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def compiled_model(package: Path, tools: CoreMLTools, root: Path | None = None) -> Path:
    """The cached `.mlmodelc` of `package`, compiling it first if no cached one exists."""
    root = cache_dir() if root is None else root
    target = root / f"{package_digest(package, tools.compiler_id())[:32]}.mlmodelc"
    if target.is_dir():
        logger.debug("using the compiled model %s for %s", target, package)
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Compile into a private directory and rename: a reader never sees a half-written model, and two
    # processes compiling the same package at once both end up using one complete copy.
    staging = Path(tempfile.mkdtemp(prefix=f".{target.stem}.", dir=root))
    try:
        start = time.perf_counter()
        tools.compile(package, staging / "model.mlmodelc")
        try:
            os.replace(staging / "model.mlmodelc", target)
        except OSError:
            if not target.is_dir():
                raise  # not the lost race on a non-empty directory: a real failure
        logger.info("compiled %s for Core ML in %.1f s (cached as %s)", package, time.perf_counter() - start, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# -- tensors <-> what Core ML takes and gives --------------------------------------------------------
def to_coreml(feature: Feature, tensor: torch.Tensor) -> np.ndarray:
    """A checked input tensor (already of the feature's dtype and contiguous) as the array to predict on."""
    if feature.dtype is dt.fp16:
        # coremltools widens fp16 arrays to fp32 before calling Core ML anyway (a workaround it carries
        # for an MLMultiArray bug); the values were rounded to fp16 already, so widening is exact.
        tensor = tensor.float()
    return tensor.cpu().numpy()  # a view, not a copy, for CPU tensors


def to_torch(interface: ModelInterface, raw: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Core ML's outputs keyed by feature name, in interface order and dtypes."""
    missing = [f.name for f in interface.outputs if f.name not in raw]
    if missing:
        raise ExecutorError(f"Core ML returned no value for output(s) {missing}; it returned {sorted(raw)}")
    return {f.name: _output(f, raw[f.name]) for f in interface.outputs}


def _output(feature: Feature, value: Any) -> torch.Tensor:
    array = np.asarray(value)
    # torch.from_numpy shares memory and refuses nothing but it warns on read-only arrays; copy those.
    tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    if tensor.dtype != feature.dtype.torch:
        # Some coremltools builds hand fp16 / int32 outputs back widened; narrowing restores the
        # declared type exactly (Core ML computed the value in that type).
        tensor = tensor.to(feature.dtype.torch)
    if feature.is_static and tuple(tensor.shape) != feature.shape and tensor.numel() == math.prod(feature.shape):
        tensor = tensor.reshape(feature.shape)  # e.g. a rank-0 output that comes back as shape [1]
    return tensor


# -- the executor -----------------------------------------------------------------------------------
class CoreMLExecutor:
    name = "coreml"

    def __init__(self, package_path: str | os.PathLike, compute_units: str = "all", *,
                 tools: CoreMLTools | None = None, cache: Path | None = None):
        if tools is None:
            reason = unavailable_reason()
            if reason is not None:
                raise RuntimeUnavailableError(f"the Core ML executor cannot run here: {reason}")
            tools = CoreMLTools()
        if compute_units not in COMPUTE_UNITS:
            raise ValueError(f"compute_units must be one of {tuple(COMPUTE_UNITS)}, got {compute_units!r}")
        self.package_path = Path(package_path)
        self.compute_units = compute_units
        # Our own reader gives the program (for `module.program`) and the interface (dtypes, order).
        self.program, self.interface = load_model(self.package_path)
        try:
            compiled = compiled_model(self.package_path, tools, cache)
        except Exception as exc:  # noqa: BLE001 - Core ML's errors carry no type of their own
            raise ExecutorError(f"Core ML could not compile {self.package_path}: {exc}") from exc
        try:
            self._model = tools.load(compiled, compute_units)
        except Exception as exc:  # noqa: BLE001
            raise ExecutorError(f"Core ML could not load {self.package_path} (compiled: {compiled}): {exc}") from exc
        self._state = None
        self.reset_states()

    # -- states -----------------------------------------------------------------------------------
    def reset_states(self) -> None:
        if not self.interface.states:
            return
        if not hasattr(self._model, "make_state") or (sys.platform == "darwin" and _macos_version() < _STATES_MACOS):
            raise ExecutorError(f"{self.package_path} is a stateful model: running it with Core ML needs "
                                "macOS 15 and coremltools >= 8")
        self._state = self._model.make_state()
        # Core ML does not document what a new state holds; the reference runtime starts at zero, and
        # both executors must compute the same thing, so write the zeros explicitly where possible.
        if hasattr(self._state, "write_state"):
            for f in self.interface.states:
                self._state.write_state(f.name, np.zeros(f.shape, dtype=f.dtype.numpy))

    def read_state(self, name: str) -> torch.Tensor:
        feature = self._state_feature(name)
        value = torch.from_numpy(np.array(self._state.read_state(name)))
        return value.to(feature.dtype.torch).reshape(feature.shape)

    def write_state(self, name: str, value: torch.Tensor) -> None:
        feature = self._state_feature(name)
        if tuple(value.shape) != feature.shape:
            raise ExecutorError(f"state {name!r}: expected shape {list(feature.shape)}, got {list(value.shape)}")
        self._state.write_state(name, value.detach().to(feature.dtype.torch).cpu().contiguous().numpy())

    def _state_feature(self, name: str) -> Feature:
        for f in self.interface.states:
            if f.name == name:
                if not hasattr(self._state, "read_state"):
                    raise ExecutorError("reading and writing Core ML states needs coremltools >= 9")
                return f
        raise KeyError(f"no state named {name!r}; the states are {[f.name for f in self.interface.states]}")

    # -- running ----------------------------------------------------------------------------------
    def run(self, inputs: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        tensors = check_inputs(self.interface, inputs)
        arrays = {f.name: to_coreml(f, tensors[f.name]) for f in self.interface.inputs}
        try:
            if self._state is None:
                raw = self._model.predict(arrays)
            else:
                raw = self._model.predict(arrays, state=self._state)
        except Exception as exc:  # noqa: BLE001 - wrapped with the package named; the cause is kept
            raise ExecutorError(f"Core ML failed to run {self.package_path}: {exc}") from exc
        return to_torch(self.interface, raw)


register_executor(CoreMLExecutor.name, CoreMLExecutor)
