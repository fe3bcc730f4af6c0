"""Packages we write load in coremltools (as an oracle), and packages coremltools writes load in ours.

coremltools cannot run models on Linux; `skip_model_load=True` still reads and checks the package
and the spec, and the MIL proto loader rebuilds a MIL program (reading const values from our blob).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from torch_coreml.format.package import PackageWriter, read_package

from ._proto_models import BIAS, relu_model

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil.frontend.milproto.load import load as load_milproto  # noqa: E402
from coremltools.proto import Model_pb2  # noqa: E402


def write(path: Path, spec_version: int = 6, with_bias: bool = False) -> Path:
    with PackageWriter(path) as package:
        if with_bias:
            spec = relu_model(spec_version, shape=BIAS.shape, bias_offset=package.blob.write(BIAS))
        else:
            spec = relu_model(spec_version)
        return package.finish(spec.SerializeToString())


def ops_of(program) -> list[str]:
    return [op.op_type for op in program.functions["main"].operations]


def test_minimal_relu_package_loads_in_coremltools(tmp_path):
    path = write(tmp_path / "relu.mlpackage")
    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    spec = mlmodel.get_spec()
    assert spec.specificationVersion == 6
    assert [f.name for f in spec.description.input] == ["x"]
    assert [f.name for f in spec.description.output] == ["y"]
    assert spec.SerializeToString(deterministic=True) == relu_model().SerializeToString(deterministic=True)

    program = load_milproto(spec, specification_version=6, file_weights_dir=str(Path(mlmodel.weights_dir)))
    assert ops_of(program) == ["relu"]
    assert program.functions["main"].opset_version == ct.target.iOS15


@pytest.mark.parametrize("spec_version", [6, 9])
def test_blob_const_is_read_by_the_milproto_loader(tmp_path, spec_version):
    path = write(tmp_path / "bias.mlpackage", spec_version, with_bias=True)
    spec = Model_pb2.Model.FromString(read_package(path).model_bytes)
    program = load_milproto(spec, spec_version, file_weights_dir=str(path / "Data/com.apple.CoreML/weights"))
    assert ops_of(program) == ["relu", "const", "add"]
    const = program.functions["main"].find_ops(op_type="const")[0]
    np.testing.assert_array_equal(const.val.val, BIAS)


def test_package_saved_by_coremltools_reads_in_ours(tmp_path):
    ours = write(tmp_path / "ours.mlpackage", with_bias=True)
    spec = Model_pb2.Model.FromString(read_package(ours).model_bytes)
    weights_dir = str(ours / "Data/com.apple.CoreML/weights")
    theirs = tmp_path / "theirs.mlpackage"
    ct.models.MLModel(spec, weights_dir=weights_dir, skip_model_load=True).save(str(theirs))

    with read_package(theirs) as contents:
        assert contents.model_bytes == read_package(ours).model_bytes
        np.testing.assert_array_equal(contents.blob_reader().read(64, "fp32", BIAS.shape), BIAS)

    # Same manifest apart from coremltools' random identifiers.
    def anonymized(package: Path) -> str:
        manifest = json.loads((package / "Manifest.json").read_text())
        root = manifest.pop("rootModelIdentifier")
        items = manifest.pop("itemInfoEntries")
        manifest["items"] = sorted(items.values(), key=lambda item: item["name"])
        manifest["root"] = items[root]["name"]
        return json.dumps(manifest, sort_keys=True)

    assert anonymized(theirs) == anonymized(ours)
    text = (theirs / "Manifest.json").read_text()
    assert text == json.dumps(json.loads(text), indent=4, sort_keys=True) + "\n"
