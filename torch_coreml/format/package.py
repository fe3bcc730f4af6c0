"""`.mlpackage` directories: an atomic, deterministic writer and a validating reader.

    X.mlpackage/
        Manifest.json                          index of the items below
        Data/com.apple.CoreML/model.mlmodel    the serialized Model protobuf
        Data/com.apple.CoreML/weights/         always present, even without weight.bin
        Data/com.apple.CoreML/weights/weight.bin   blob file, only if some weight was written

The writer builds the whole package in a hidden sibling directory and renames it into place only
once everything is written, so a failure never leaves a partial package behind and never destroys
an existing one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Callable

from google.protobuf.message import DecodeError

from torch_coreml.errors import PackageError
from torch_coreml.format.blob import BlobReader, BlobWriter
from torch_coreml.format.proto import coreml_pb2

logger = logging.getLogger(__name__)

PACKAGE_SUFFIX = ".mlpackage"
MANIFEST_NAME = "Manifest.json"
DATA_DIR = "Data"
AUTHOR = "com.apple.CoreML"
MODEL_ITEM_PATH = f"{AUTHOR}/model.mlmodel"
WEIGHTS_ITEM_PATH = f"{AUTHOR}/weights"
WEIGHT_FILE_NAME = "weight.bin"
# How the model proto names the weight file; @model_path is the folder holding model.mlmodel.
MODEL_PATH_PREFIX = "@model_path/"
WEIGHT_FILE_REFERENCE = f"{MODEL_PATH_PREFIX}weights/{WEIGHT_FILE_NAME}"

FILE_FORMAT_VERSION = "1.0.0"
SPEC_VERSIONS = range(6, 11)  # ML Programs exist from spec 6 (iOS15); 10 is iOS26

# Identifiers only have to be unique keys inside the manifest, but Core ML tooling treats them as
# item identities, so distinct packages should not share them. Random UUIDs would break
# byte-identical output; instead each is a UUID5 of this fixed namespace and a digest of the whole
# package content plus the item path: equal inputs give equal identifiers, different models
# practically never collide.
_IDENTIFIER_NAMESPACE = uuid.UUID("6f1b7a8e-2c3d-5e4f-9a0b-1c2d3e4f5a6b")
_MAX_MANIFEST_BYTES = 1 << 20  # a real manifest is well under 1 KiB


# ------------------------------------------------------------------------------------- writer ---


class PackageWriter:
    """Writes one `.mlpackage`; use as a context manager.

        with PackageWriter("model.mlpackage") as package:
            offset = package.blob.write(weights)      # optional, any number of times
            package.finish(model_bytes_using(offset))

    Leaving the `with` block by an exception, or without calling `finish`, discards everything.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.suffix != PACKAGE_SUFFIX:
            raise PackageError(f"{self.path}: expected a path ending in {PACKAGE_SUFFIX}")
        if not self.path.parent.is_dir():
            raise PackageError(f"{self.path}: expected the parent directory {self.path.parent} to exist")
        if self.path.exists() and not self.path.is_dir():
            raise PackageError(f"{self.path}: exists and is not a directory; refusing to replace it")
        # Same parent, so the final rename stays on one file system. Not tempfile.mkdtemp: its 0700
        # mode would end up on the package; mkdir applies the user's umask like any other folder.
        self._staging = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        self._blob: BlobWriter | None = None
        self._finished = False
        (self._staging / DATA_DIR / WEIGHTS_ITEM_PATH).mkdir(parents=True)

    @property
    def blob(self) -> BlobWriter:
        """The writer for `weights/weight.bin`, created on first use."""
        if self._finished:
            raise PackageError(f"{self.path}: the package is already finished")
        if self._blob is None:
            self._blob = BlobWriter(self._staging / DATA_DIR / WEIGHTS_ITEM_PATH / WEIGHT_FILE_NAME)
        return self._blob

    def finish(self, model_bytes: bytes, *, identifiers: tuple[str, str] | None = None) -> Path:
        """Write the model and manifest, then move the package into place; returns its path.

        `identifiers` overrides the (model, weights) manifest identifiers, which are otherwise
        derived from the content (see _IDENTIFIER_NAMESPACE).
        """
        if self._finished:
            raise PackageError(f"{self.path}: finish() was already called")
        try:
            weights_digest = ""
            if self._blob is not None:
                self._blob.close()
                weights_digest = self._blob.digest
            (self._staging / DATA_DIR / MODEL_ITEM_PATH).write_bytes(model_bytes)
            if identifiers is None:
                identifiers = _content_identifiers(model_bytes, weights_digest)
            (self._staging / MANIFEST_NAME).write_text(manifest_text(*identifiers), encoding="utf-8")
            _move_into_place(self._staging, self.path)
        except BaseException:
            self.abort()  # also when used without `with`
            raise
        self._finished = True
        logger.info("wrote %s", self.path)
        return self.path

    def abort(self) -> None:
        """Discard everything written so far (safe to call more than once)."""
        if self._blob is not None:
            self._blob.close()
        shutil.rmtree(self._staging, ignore_errors=True)

    def __enter__(self) -> PackageWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._finished:
            return
        self.abort()
        if exc_type is None:
            raise PackageError(f"{self.path}: package discarded because finish() was never called")


def write_package(
    path: str | os.PathLike,
    model_bytes: bytes,
    write_weights: Callable[[BlobWriter], None] | None = None,
    *,
    identifiers: tuple[str, str] | None = None,
) -> Path:
    """Write a package in one call, for callers that know their blob offsets up front."""
    with PackageWriter(path) as package:
        if write_weights is not None:
            write_weights(package.blob)
        return package.finish(model_bytes, identifiers=identifiers)


def manifest_text(model_identifier: str, weights_identifier: str) -> str:
    """The exact Manifest.json text Core ML tooling writes (4-space indent, sorted keys)."""
    items = {
        model_identifier: _item("CoreML Model Specification", "model.mlmodel", MODEL_ITEM_PATH),
        weights_identifier: _item("CoreML Model Weights", "weights", WEIGHTS_ITEM_PATH),
    }
    manifest = {
        "fileFormatVersion": FILE_FORMAT_VERSION,
        "itemInfoEntries": items,
        "rootModelIdentifier": model_identifier,
    }
    return json.dumps(manifest, indent=4, sort_keys=True) + "\n"


def _item(description: str, name: str, path: str) -> dict[str, str]:
    return {"author": AUTHOR, "description": description, "name": name, "path": path}


def _content_identifiers(model_bytes: bytes, weights_digest: str) -> tuple[str, str]:
    content = hashlib.sha256(model_bytes).hexdigest() + weights_digest
    return tuple(
        str(uuid.uuid5(_IDENTIFIER_NAMESPACE, f"{content}/{item}")).upper()
        for item in (MODEL_ITEM_PATH, WEIGHTS_ITEM_PATH)
    )


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`; an existing `target` is removed only after the swap worked."""
    if not target.exists():
        os.rename(staging, target)
        return
    backup = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    os.rename(target, backup)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


# ------------------------------------------------------------------------------------- reader ---


@dataclass
class PackageContents:
    """A validated package. Weight files are opened on first use and cached."""

    path: Path
    manifest: dict
    model_path: Path
    model_bytes: bytes = field(repr=False)
    spec: coreml_pb2.Model = field(repr=False)
    _readers: dict[Path, BlobReader] = field(default_factory=dict, init=False, repr=False)

    @property
    def weights_dir(self) -> Path:
        """`@model_path/weights`: where blob files live (may not exist for weight-less models)."""
        return self.model_path.parent / "weights"

    def blob_reader(self, file_name: str = WEIGHT_FILE_REFERENCE) -> BlobReader:
        """The reader for a `BlobFileValue.fileName` such as "@model_path/weights/weight.bin"."""
        path = self._resolve_weight_file(file_name)
        if path not in self._readers:
            self._readers[path] = BlobReader(path)
        return self._readers[path]

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def __enter__(self) -> PackageContents:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _resolve_weight_file(self, file_name: str) -> Path:
        if not file_name.startswith(MODEL_PATH_PREFIX):
            raise PackageError(f"{self.path}: weight file {file_name!r}: expected a name starting with {MODEL_PATH_PREFIX}")
        relative = file_name[len(MODEL_PATH_PREFIX) :]
        _check_relative(self.path, relative, f"weight file {file_name!r}")
        path = self.model_path.parent / relative
        _check_inside(self.path, path, f"weight file {file_name!r}")
        if not path.is_file():
            raise PackageError(f"{self.path}: weight file {file_name!r}: expected a file at {path}, found none")
        return path


def read_package(path: str | os.PathLike) -> PackageContents:
    """Open and validate a package; raises PackageError describing the first problem found."""
    root = Path(path)
    if not root.is_dir():
        raise PackageError(f"{root}: expected an .mlpackage directory, found {'a file' if root.exists() else 'nothing'}")
    manifest = _load_manifest(root)
    _check_file_format_version(root, manifest.get("fileFormatVersion"))
    items = _check_items(root, manifest.get("itemInfoEntries"))

    root_id = manifest.get("rootModelIdentifier")
    if not isinstance(root_id, str) or not root_id:
        raise PackageError(f"{root}: {MANIFEST_NAME}: expected a rootModelIdentifier string, found {root_id!r}")
    if root_id not in items:
        raise PackageError(f"{root}: {MANIFEST_NAME}: rootModelIdentifier {root_id!r} names no itemInfoEntries item")

    model_path = root / DATA_DIR / items[root_id]["path"]
    if not model_path.is_file():
        raise PackageError(f"{root}: expected the model spec file at {model_path}, found none")
    model_bytes = model_path.read_bytes()
    spec = _parse_spec(root, model_bytes)
    return PackageContents(root, manifest, model_path, model_bytes, spec)


def _load_manifest(root: Path) -> dict:
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PackageError(f"{root}: expected {MANIFEST_NAME}, found none")
    _check_inside(root, manifest_path, MANIFEST_NAME)
    size = manifest_path.stat().st_size
    if size > _MAX_MANIFEST_BYTES:
        raise PackageError(f"{root}: {MANIFEST_NAME}: expected at most {_MAX_MANIFEST_BYTES} bytes, found {size}")
    try:
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{root}: {MANIFEST_NAME}: expected JSON, failed to parse: {exc}") from exc
    if not isinstance(manifest, dict):
        raise PackageError(f"{root}: {MANIFEST_NAME}: expected a JSON object, found {type(manifest).__name__}")
    return manifest


def _check_file_format_version(root: Path, version) -> None:
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise PackageError(f"{root}: {MANIFEST_NAME}: expected fileFormatVersion major.minor.patch, found {version!r}")
    found = tuple(int(part) for part in version.split("."))
    supported = tuple(int(part) for part in FILE_FORMAT_VERSION.split("."))
    if found > supported:
        raise PackageError(
            f"{root}: {MANIFEST_NAME}: fileFormatVersion {version} is newer than the supported {FILE_FORMAT_VERSION}"
        )


def _check_items(root: Path, items) -> dict[str, dict[str, str]]:
    if not isinstance(items, dict):
        raise PackageError(f"{root}: {MANIFEST_NAME}: expected an itemInfoEntries object, found {items!r}")
    for identifier, item in items.items():
        where = f"{MANIFEST_NAME} item {identifier!r}"
        if not isinstance(item, dict):
            raise PackageError(f"{root}: {where}: expected an object, found {item!r}")
        for key in ("author", "description", "name", "path"):
            if not isinstance(item.get(key), str):
                raise PackageError(f"{root}: {where}: expected a string {key!r}, found {item.get(key)!r}")
        _check_relative(root, item["path"], where)
        target = root / DATA_DIR / item["path"]
        _check_inside(root, target, where)
        if not target.exists():
            raise PackageError(f"{root}: {where}: expected {target} to exist, found nothing")
    return items


def _check_relative(root: Path, relative: str, where: str) -> None:
    """Reject paths that are absolute or climb out with '..', in POSIX or Windows spelling."""
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if not relative or posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        raise PackageError(f"{root}: {where}: expected a relative path inside the package, found {relative!r}")
    if ".." in posix.parts or ".." in windows.parts:
        raise PackageError(f"{root}: {where}: path {relative!r} escapes the package with '..'")


def _check_inside(root: Path, path: Path, where: str) -> None:
    """Reject paths that leave the package once symlinks are followed."""
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise PackageError(f"{root}: {where}: {path} resolves to {real}, outside the package")


def _parse_spec(root: Path, model_bytes: bytes) -> coreml_pb2.Model:
    try:
        spec = coreml_pb2.Model.FromString(model_bytes)
    except DecodeError as exc:
        raise PackageError(f"{root}: model spec: expected a Core ML Model protobuf, failed to parse: {exc}") from exc
    version = spec.specificationVersion
    if version not in SPEC_VERSIONS:
        raise PackageError(
            f"{root}: model spec: expected specificationVersion {SPEC_VERSIONS.start}..{SPEC_VERSIONS.stop - 1} "
            f"(an ML Program), found {version}"
        )
    if spec.WhichOneof("Type") != "mlProgram":
        raise PackageError(f"{root}: model spec: expected an ML Program (mlProgram), found another model kind or none")
    return spec
