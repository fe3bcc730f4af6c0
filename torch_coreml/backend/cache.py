"""The on-disk compile cache: converted partitions, keyed by what determines the package bytes.

Layout: `<cache_dir>/<key>/model.mlpackage` plus `<cache_dir>/<key>/checksums.json` (sha256 of every
package file). An entry is built in a temporary directory next to it and renamed into place, so a
reader never sees half an entry. Loading re-hashes the files: a truncated weight file or an edited
manifest is a `PackageError`, which the caller turns into a rebuild.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..errors import PackageError

log = logging.getLogger(__name__)

# Bump when the entry layout or anything the key does not capture changes meaning.
CACHE_FORMAT = "1"
PACKAGE_NAME = "model.mlpackage"
CHECKSUMS = "checksums.json"


def cache_key(parts: Iterable[bytes | str]) -> str:
    h = hashlib.sha256()
    for part in (CACHE_FORMAT, torch.__version__, code_fingerprint(), *parts):
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no two part lists hash alike
        h.update(data)
    return h.hexdigest()[:40]


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """torch_coreml's version and a hash of its Python sources.

    The version alone would not do: an edited lowering or pass (a development install, a patch release
    that forgot to bump) changes the package a graph converts to, and a stale entry would silently run
    the old program. Hashing ~1 MB of sources costs a few milliseconds once per process."""
    from .. import __version__

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def tensor_digest(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous()
    raw = t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
    return f"{t.dtype}{list(t.shape)}:" + hashlib.sha256(raw.numpy().tobytes()).hexdigest()


class PackageCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, key: str) -> Path:
        return self.root / key

    def load(self, key: str) -> Path | None:
        """The cached package path, None when absent; PackageError when the entry is corrupt."""
        entry = self.entry(key)
        if not entry.exists():
            return None
        try:
            expected = json.loads((entry / CHECKSUMS).read_text())
        except (OSError, ValueError) as e:
            raise PackageError(f"{entry}: unreadable {CHECKSUMS}: {e}") from e
        actual = _checksums(entry / PACKAGE_NAME)
        if actual != expected:
            changed = sorted(set(actual.items()) ^ set(expected.items()))
            names = sorted({name for name, _ in changed})
            raise PackageError(f"{entry}: hash mismatch in {names} (corrupted or partially deleted entry)")
        return entry / PACKAGE_NAME

    def store(self, key: str, build: Callable[[Path], object]) -> Path:
        """Build the package with `build(path)` in a staging directory, then move it into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            build(staging / PACKAGE_NAME)
            (staging / CHECKSUMS).write_text(json.dumps(_checksums(staging / PACKAGE_NAME), indent=1))
            self.discard(key)
            try:
                os.replace(staging, self.entry(key))
            except OSError:
                # Another process stored the same key first; its entry is as good as ours.
                if not self.entry(key).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.entry(key) / PACKAGE_NAME

    def discard(self, key: str) -> None:
        entry = self.entry(key)
        if entry.exists():
            # Rename first so a concurrent reader sees either the whole entry or none.
            old = self.root / f".{key}.{uuid.uuid4().hex}.old"
            os.replace(entry, old)
            shutil.rmtree(old, ignore_errors=True)


def _checksums(package: Path) -> dict[str, str]:
    if not package.is_dir():
        raise PackageError(f"{package}: expected a package directory, found none")
    out = {}
    for path in sorted(package.rglob("*")):
        if path.is_file():
            out[path.relative_to(package).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
