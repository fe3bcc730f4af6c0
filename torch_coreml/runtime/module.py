"""`CoreMLModule`: a converted model as a torch `nn.Module`.

    m = torch_coreml.load("model.mlpackage")
    y = m(x)                      # same pytree structure in and out as the original module
    m.save("copy.mlpackage"); print(m.program); m.executor  # -> "coreml" on macOS, else "reference"

Inputs are flattened with the original module's input pytree spec (stored in the package metadata)
and bound in order onto the model's inputs; outputs come back in the original output structure.
Packages without pytree specs take positional tensors and return one tensor or a tuple.

A model that mutates an input in place (`x.add_(1)`, batch norm updating running stats passed as
inputs) was converted, as torch.export describes it, into a program with an extra output holding the
input's new value; the package metadata names which output writes back to which input, and `forward`
copies it into the caller's tensor (`tensor.copy_`) before returning the model's own outputs.

The module owns its package: pickling, `copy.deepcopy` and `state_dict` (extra state) carry the
package directory as a tar archive, which is unpacked into a private temporary directory on load.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tarfile
import tempfile
import uuid
import weakref
from pathlib import Path
from typing import Any

import torch
import torch.utils._pytree as pytree

from .. import treespec
from ..errors import PackageError, RuntimeInputError
from .executor import Executor, make_executor, select_executor

logger = logging.getLogger(__name__)


class CoreMLModule(torch.nn.Module):
    def __init__(self, package_path: str | os.PathLike, executor: str = "auto", compute_units: str = "all"):
        super().__init__()
        self._attach(Path(package_path), executor, compute_units)

    def _attach(self, package_path: Path, executor: str, compute_units: str = "all") -> None:
        self._package_path = package_path
        # The request ("auto", "coreml", ...) is what pickles: a module saved on a Mac with "auto"
        # loads on Linux with the reference runtime, one saved with "coreml" refuses to.
        self._requested, self._compute_units = executor, compute_units
        self._runner: Executor = make_executor(select_executor(executor), package_path, compute_units)
        interface = self._runner.interface
        self._in_spec = treespec.loads(interface.input_tree) if interface.input_tree else None
        self._out_spec = treespec.loads(interface.output_tree) if interface.output_tree else None
        self._out_dtypes = output_dtypes(interface)
        self._write_back = input_mutations(interface)

    # -- what users look at -----------------------------------------------------------------------
    @property
    def executor(self) -> str:
        """Which executor runs the package: "reference" (catalogue kernels) or "coreml"."""
        return self._runner.name

    @property
    def runner(self) -> Executor:
        return self._runner

    @property
    def package_path(self) -> Path:
        return self._package_path

    @property
    def program(self):
        return self._runner.program

    @property
    def interface(self):
        return self._runner.interface

    def reset_states(self) -> None:
        self._runner.reset_states()

    def save(self, path: str | os.PathLike) -> Path:
        """Copy the package to `path` (ending in .mlpackage), replacing it atomically if it exists."""
        target = Path(path)
        if target.suffix != ".mlpackage":
            raise PackageError(f"{target}: expected a path ending in .mlpackage")
        if not target.parent.is_dir():
            raise PackageError(f"{target}: expected the parent directory {target.parent} to exist")
        if target.exists() and target.resolve() == self._package_path.resolve():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            shutil.copytree(self._package_path, staging / "package")
            old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
            if target.exists():
                os.replace(target, old)
            os.replace(staging / "package", target)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    # -- calling ----------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        features = self._runner.interface.inputs
        leaves = self._flatten_inputs(args, kwargs)
        if len(leaves) != len(features):
            raise RuntimeInputError(f"expected {len(features)} input tensor(s) {[f.name for f in features]}, "
                                    f"got {len(leaves)}")
        feeds = {f.name: leaf for f, leaf in zip(features, leaves)}
        results = self._runner.run(feeds)
        outputs = [results[f.name] for f in self._runner.interface.outputs]
        if self._out_dtypes:
            # Core ML returns fp32/fp16/int32; give back the dtypes the torch module returned.
            outputs = [o.to(d) if o.dtype != d else o for o, d in zip(outputs, self._out_dtypes)]
        if self._write_back:
            outputs = self._copy_to_inputs(outputs, feeds)
        if self._out_spec is not None:
            return pytree.tree_unflatten(outputs, self._out_spec)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _copy_to_inputs(self, outputs: list, feeds: dict) -> list:
        """Write the new values of mutated inputs into the caller's tensors; the model's own outputs."""
        names = [f.name for f in self._runner.interface.outputs]
        with torch.no_grad():
            for name, value in zip(names, outputs):
                if name in self._write_back:
                    feeds[self._write_back[name]].copy_(value)
        return [value for name, value in zip(names, outputs) if name not in self._write_back]

    def _flatten_inputs(self, args: tuple, kwargs: dict) -> list:
        if self._in_spec is None:
            if kwargs:
                raise RuntimeInputError(f"this model takes positional tensors only, got keyword(s) {sorted(kwargs)}")
            return list(args)
        # torch.export records (args, kwargs); a spec of the positional args alone is accepted too.
        leaves, spec = pytree.tree_flatten((args, kwargs))
        if spec != self._in_spec and not kwargs:
            leaves, spec = pytree.tree_flatten(args)
        if spec != self._in_spec:
            raise RuntimeInputError(f"the inputs do not have the structure the model was converted with: "
                                    f"expected {self._in_spec}, got {pytree.tree_flatten((args, kwargs))[1]}")
        # Non-tensor leaves (python numbers, None) were fixed at conversion time and are not inputs.
        return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]

    def extra_repr(self) -> str:
        return f"package={str(self._package_path)!r}, executor={self.executor!r}"

    # -- owning the package bytes -----------------------------------------------------------------
    def get_extra_state(self) -> dict:
        return {"package": pack_directory(self._package_path), "executor": self._requested,
                "compute_units": self._compute_units}

    def set_extra_state(self, state: dict) -> None:
        self._attach(self._unpack_private(state["package"], self._package_path.name), state["executor"],
                     state.get("compute_units", "all"))

    _UNPICKLED = ("_runner", "_in_spec", "_out_spec", "_package_path", "_cleanup")

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}
        state["_package_bytes"] = pack_directory(self._package_path)
        state["_package_name"] = self._package_path.name
        state["_executor_name"] = self._requested
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        package, name = state.pop("_package_bytes"), state.pop("_package_name")
        executor = state.pop("_executor_name")
        super().__setstate__(state)
        self._attach(self._unpack_private(package, name), executor, state.get("_compute_units", "all"))

    def _unpack_private(self, data: bytes, name: str) -> Path:
        """Unpack a package into a temporary directory that lives as long as this module."""
        tmp = tempfile.mkdtemp(prefix="torch_coreml_")
        target = Path(tmp) / (name if name.endswith(".mlpackage") else "model.mlpackage")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(target, filter="data")
        previous = self.__dict__.get("_cleanup")
        self._cleanup = weakref.finalize(self, shutil.rmtree, tmp, True)
        if previous is not None:
            previous()  # a package unpacked by an earlier set_extra_state is no longer used
        return target


def pack_directory(root: Path) -> bytes:
    """A deterministic tar of a package directory (sorted entries, no times or owners)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buffer.getvalue()


OUTPUT_DTYPES_KEY = "torch_coreml.output_dtypes"
INPUT_MUTATIONS_KEY = "torch_coreml.input_mutations"


def output_dtypes(interface) -> list[torch.dtype] | None:
    """The torch dtypes of the original outputs, recorded at conversion (None for foreign packages)."""
    import json

    text = interface.metadata.user_defined.get(OUTPUT_DTYPES_KEY)
    if not text:
        return None
    return [getattr(torch, name) for name in json.loads(text)]


def input_mutations(interface) -> dict[str, str]:
    """Output name → name of the input it is the new value of, for models that mutate inputs."""
    import json

    text = interface.metadata.user_defined.get(INPUT_MUTATIONS_KEY)
    mapping = json.loads(text) if text else {}
    inputs, outputs = {f.name for f in interface.inputs}, {f.name for f in interface.outputs}
    bad = {o: i for o, i in mapping.items() if o not in outputs or i not in inputs}
    if bad:
        raise PackageError(f"metadata {INPUT_MUTATIONS_KEY} names outputs/inputs the model does not have: {bad}")
    return mapping
