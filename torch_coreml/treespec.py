"""Text form of a pytree spec (a model's input/output structure) that also covers torch's structseqs.

`torch.utils._pytree.treespec_dumps` refuses the named tuples torch ops return (`torch.return_types.max`,
`sort`, `topk`, ...), yet a model may well return `torch.max(x, dim)` as is. Such nodes are written as
plain tuples plus a list of (path, class name) to put back when read.
"""

from __future__ import annotations

import importlib
import json

import torch.utils._pytree as pytree

_KEY = "torch_coreml.structseq"


def dumps(spec: pytree.TreeSpec) -> str:
    structseqs: list = []
    plain = _replace(spec, (), structseqs)
    text = pytree.treespec_dumps(plain)
    return json.dumps({"treespec": text, _KEY: structseqs}) if structseqs else text


def loads(text: str) -> pytree.TreeSpec:
    data = json.loads(text)
    if not (isinstance(data, dict) and _KEY in data):
        return pytree.treespec_loads(text)
    spec = pytree.treespec_loads(data["treespec"])
    for path, name in data[_KEY]:
        spec = _restore(spec, tuple(path), _structseq_class(name))
    return spec


def _replace(spec, path, found):
    if spec.is_leaf():
        return spec
    children = [_replace(spec.child(i), path + (i,), found) for i in range(spec.num_children)]
    if pytree.is_structseq_class(spec.type):
        found.append([list(path), f"{spec.type.__module__}.{spec.type.__qualname__}"])
        return pytree.TreeSpec(tuple, None, children)
    return pytree.TreeSpec(spec.type, spec.context, children)


def _restore(spec, path, cls):
    children = [spec.child(i) for i in range(spec.num_children)]
    if not path:
        return pytree.TreeSpec(cls, None, children)
    children[path[0]] = _restore(children[path[0]], path[1:], cls)
    return pytree.TreeSpec(spec.type, spec.context, children)


def _structseq_class(name: str):
    module, _, qualname = name.rpartition(".")
    if module != "torch.return_types":
        raise ValueError(f"unexpected named-tuple type {name!r} in a saved model structure")
    cls = getattr(importlib.import_module(module), qualname, None)
    if cls is None or not pytree.is_structseq_class(cls):
        raise ValueError(f"{name!r} is not a torch return type in this torch release")
    return cls
