"""`.mlpackage` writer and reader: round trip, exact manifest, determinism, atomicity, hostile input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from torch_coreml.errors import BlobError, PackageError
from torch_coreml.format.package import PackageWriter, manifest_text, read_package, write_package
from torch_coreml.format.proto import coreml_pb2 as pb

from ._proto_models import BIAS, relu_model

MODEL_FILE = Path("Data/com.apple.CoreML/model.mlmodel")
WEIGHTS_DIR = Path("Data/com.apple.CoreML/weights")


def write_relu(path: Path, bias: np.ndarray | None = None) -> Path:
    """relu(x), plus `bias` read from the blob when given, saved as a package."""
    with PackageWriter(path) as package:
        offset = package.blob.write(bias) if bias is not None else None
        return package.finish(relu_model(shape=(1, 10), bias_offset=offset).SerializeToString())


def tree(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


def test_round_trip_with_weights(tmp_path):
    path = write_relu(tmp_path / "m.mlpackage", BIAS)
    with read_package(path) as contents:
        assert contents.spec == relu_model(shape=(1, 10), bias_offset=64)
        assert contents.model_bytes == (path / MODEL_FILE).read_bytes()
        assert contents.weights_dir == path / WEIGHTS_DIR
        np.testing.assert_array_equal(contents.blob_reader().read(64, "fp32", BIAS.shape), BIAS)
        assert contents.blob_reader() is contents.blob_reader()


def test_layout_without_weights(tmp_path):
    path = write_relu(tmp_path / "m.mlpackage")
    assert sorted(tree(path)) == sorted(["Data", "Data/com.apple.CoreML", str(WEIGHTS_DIR), str(MODEL_FILE), "Manifest.json"])
    assert read_package(path).spec.mlProgram.functions["main"].opset == "CoreML5"


def test_manifest_is_exactly_what_core_ml_tooling_writes(tmp_path):
    path = write_relu(tmp_path / "m.mlpackage")
    text = (path / "Manifest.json").read_text()
    manifest = json.loads(text)
    assert text == json.dumps(manifest, indent=4, sort_keys=True) + "\n"
    assert manifest["fileFormatVersion"] == "1.0.0"
    root = manifest["rootModelIdentifier"]
    items = manifest["itemInfoEntries"]
    assert items.pop(root) == {
        "author": "com.apple.CoreML", "description": "CoreML Model Specification",
        "name": "model.mlmodel", "path": "com.apple.CoreML/model.mlmodel",
    }
    assert list(items.values()) == [{
        "author": "com.apple.CoreML", "description": "CoreML Model Weights",
        "name": "weights", "path": "com.apple.CoreML/weights",
    }]


def test_same_inputs_give_identical_packages(tmp_path):
    (tmp_path / "a").mkdir()
    first = write_relu(tmp_path / "a" / "m.mlpackage", BIAS)
    second = write_relu(tmp_path / "m.mlpackage", BIAS)
    assert tree(first) == tree(second)


def test_different_content_gives_different_identifiers(tmp_path):
    plain = json.loads((write_relu(tmp_path / "p.mlpackage") / "Manifest.json").read_text())
    weighted = json.loads((write_relu(tmp_path / "w.mlpackage", BIAS) / "Manifest.json").read_text())
    other_bias = json.loads((write_relu(tmp_path / "o.mlpackage", BIAS + 1) / "Manifest.json").read_text())
    identifiers = [set(m["itemInfoEntries"]) for m in (plain, weighted, other_bias)]
    assert not (identifiers[0] & identifiers[1]) and not (identifiers[1] & identifiers[2])


def test_explicit_identifiers(tmp_path):
    path = write_package(tmp_path / "m.mlpackage", relu_model().SerializeToString(), identifiers=("A", "B"))
    assert (path / "Manifest.json").read_text() == manifest_text("A", "B")


def test_write_package_with_weight_callback(tmp_path):
    model = relu_model(shape=(1, 10), bias_offset=64).SerializeToString()
    path = write_package(tmp_path / "m.mlpackage", model, lambda blob: blob.write(BIAS))
    assert read_package(path).blob_reader().read(64).tolist() == BIAS.ravel().tolist()


# --------------------------------------------------------------------------------- atomicity ---


def failing_weights(blob) -> None:
    blob.write(np.ones(100, np.float32))
    raise RuntimeError("boom")


def test_failure_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        write_package(tmp_path / "m.mlpackage", b"", failing_weights)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_package(tmp_path):
    path = write_relu(tmp_path / "m.mlpackage", BIAS)
    before = tree(path)
    with pytest.raises(RuntimeError):
        write_package(path, b"", failing_weights)
    assert tree(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]


def test_successful_overwrite_replaces_the_package(tmp_path):
    path = write_relu(tmp_path / "m.mlpackage", BIAS)
    write_relu(path)
    assert not (path / WEIGHTS_DIR / "weight.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]


def test_forgetting_finish_discards_the_package(tmp_path):
    with pytest.raises(PackageError, match="finish\\(\\) was never called"):
        with PackageWriter(tmp_path / "m.mlpackage") as package:
            package.blob.write(np.ones(3, np.float32))
    assert list(tmp_path.iterdir()) == []


def test_blob_error_inside_writer_discards_the_package(tmp_path):
    with pytest.raises(BlobError):
        with PackageWriter(tmp_path / "m.mlpackage") as package:
            package.blob.write(np.ones(3))  # float64 has no blob dtype
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, message",
    [("m.mlmodel", "expected a path ending in .mlpackage"), ("missing/m.mlpackage", "parent directory")],
)
def test_writer_refuses_bad_targets(tmp_path, name, message):
    with pytest.raises(PackageError, match=message):
        PackageWriter(tmp_path / name)


def test_package_gets_normal_permissions(tmp_path):
    """Like any folder the user creates (umask applies), not 0700 like a temp dir."""
    path = write_relu(tmp_path / "m.mlpackage")
    (tmp_path / "plain").mkdir()
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_failure_in_finish_leaves_nothing_behind(tmp_path):
    writer = PackageWriter(tmp_path / "m.mlpackage")
    with pytest.raises(TypeError):
        writer.finish("not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_to_replace_a_file(tmp_path):
    (tmp_path / "m.mlpackage").write_text("not a package")
    with pytest.raises(PackageError, match="not a directory"):
        PackageWriter(tmp_path / "m.mlpackage")


# ------------------------------------------------------------------------ hostile packages ---


@pytest.fixture
def package(tmp_path) -> Path:
    return write_relu(tmp_path / "m.mlpackage", BIAS)


def edit_manifest(path: Path, edit) -> None:
    manifest = json.loads((path / "Manifest.json").read_text())
    edit(manifest)
    (path / "Manifest.json").write_text(json.dumps(manifest))


def root_item(manifest: dict) -> dict:
    return manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]


def test_missing_manifest(package):
    (package / "Manifest.json").unlink()
    with pytest.raises(PackageError, match="expected Manifest.json, found none"):
        read_package(package)


@pytest.mark.parametrize(
    "text, message",
    [("{not json", "expected JSON"), (b"\xff\xfe", "expected JSON"), ("[1, 2]", "expected a JSON object, found list")],
)
def test_unparsable_manifest(package, text, message):
    target = package / "Manifest.json"
    target.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(PackageError, match=message):
        read_package(package)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(fileFormatVersion="1.0.1"), "fileFormatVersion 1.0.1 is newer than the supported 1.0.0"),
        (lambda m: m.update(fileFormatVersion="2.0.0"), "newer than the supported"),
        (lambda m: m.update(fileFormatVersion="1.0"), "expected fileFormatVersion major.minor.patch, found '1.0'"),
        (lambda m: m.pop("fileFormatVersion"), "found None"),
        (lambda m: m.pop("rootModelIdentifier"), "expected a rootModelIdentifier string"),
        (lambda m: m.update(rootModelIdentifier="nope"), "rootModelIdentifier 'nope' names no itemInfoEntries item"),
        (lambda m: m.update(itemInfoEntries=[]), "expected an itemInfoEntries object"),
        (lambda m: root_item(m).pop("author"), "expected a string 'author', found None"),
        (lambda m: root_item(m).update(description=3), "expected a string 'description', found 3"),
        (lambda m: root_item(m).pop("name"), "expected a string 'name'"),
        (lambda m: root_item(m).pop("path"), "expected a string 'path'"),
        (lambda m: root_item(m).update(path="../../etc/passwd"), "escapes the package with '..'"),
        (lambda m: root_item(m).update(path="com.apple.CoreML/../../x"), "escapes the package with '..'"),
        (lambda m: root_item(m).update(path="..\\..\\x"), "escapes the package with '..'"),
        (lambda m: root_item(m).update(path="/etc/passwd"), "expected a relative path inside the package"),
        (lambda m: root_item(m).update(path="C:\\Windows\\x"), "expected a relative path inside the package"),
        (lambda m: root_item(m).update(path=""), "expected a relative path inside the package"),
        (lambda m: root_item(m).update(path="com.apple.CoreML/gone"), "expected .* to exist, found nothing"),
        (lambda m: root_item(m).update(path="com.apple.CoreML/weights"), "expected the model spec file at"),
    ],
)
def test_bad_manifest_content(package, edit, message):
    edit_manifest(package, edit)
    with pytest.raises(PackageError, match=message):
        read_package(package)


def test_symlinked_model_outside_the_package(package, tmp_path):
    outside = tmp_path / "outside.mlmodel"
    outside.write_bytes((package / MODEL_FILE).read_bytes())
    (package / MODEL_FILE).unlink()
    (package / MODEL_FILE).symlink_to(outside)
    with pytest.raises(PackageError, match="outside the package"):
        read_package(package)


def test_symlinked_data_dir_outside_the_package(package, tmp_path):
    (package / "Data").rename(tmp_path / "elsewhere")
    (package / "Data").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PackageError, match="outside the package"):
        read_package(package)


def test_symlinks_inside_the_package_are_fine(package):
    (package / "Data/com.apple.CoreML/real.mlmodel").write_bytes((package / MODEL_FILE).read_bytes())
    (package / MODEL_FILE).unlink()
    (package / MODEL_FILE).symlink_to("real.mlmodel")
    assert read_package(package).spec.specificationVersion == 6


def test_model_file_missing(package):
    (package / MODEL_FILE).unlink()
    with pytest.raises(PackageError, match="to exist, found nothing"):
        read_package(package)


@pytest.mark.parametrize("version", [0, 1, 5, 11, -3])
def test_spec_version_outside_ml_program_range(package, version):
    spec = pb.Model.FromString((package / MODEL_FILE).read_bytes())
    spec.specificationVersion = version
    (package / MODEL_FILE).write_bytes(spec.SerializeToString())
    with pytest.raises(PackageError, match=f"expected specificationVersion 6..10 \\(an ML Program\\), found {version}"):
        read_package(package)


def test_not_an_ml_program(package):
    (package / MODEL_FILE).write_bytes(pb.Model(specificationVersion=6).SerializeToString())
    with pytest.raises(PackageError, match="expected an ML Program"):
        read_package(package)


def test_garbage_spec(package):
    (package / MODEL_FILE).write_bytes(b"\xff" * 20)
    with pytest.raises(PackageError, match="expected a Core ML Model protobuf"):
        read_package(package)


def test_not_a_directory(tmp_path):
    with pytest.raises(PackageError, match="found nothing"):
        read_package(tmp_path / "absent.mlpackage")
    (tmp_path / "file.mlpackage").write_text("x")
    with pytest.raises(PackageError, match="found a file"):
        read_package(tmp_path / "file.mlpackage")


@pytest.mark.parametrize(
    "file_name, message",
    [
        ("weights/weight.bin", "expected a name starting with @model_path/"),
        ("@model_path/../../../x.bin", "escapes the package"),
        ("@model_path//etc/passwd", "expected a relative path"),
        ("@model_path/weights/other.bin", "expected a file at"),
    ],
)
def test_bad_weight_file_names(package, file_name, message):
    with pytest.raises(PackageError, match=message):
        read_package(package).blob_reader(file_name)


def test_corrupt_weight_file_is_reported_lazily(package):
    (package / WEIGHTS_DIR / "weight.bin").write_bytes(b"\x00" * 10)
    contents = read_package(package)  # the blob is only opened when asked for
    with pytest.raises(BlobError, match="at least a 64-byte header"):
        contents.blob_reader()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinked_weight_file_outside_the_package(package, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes((package / WEIGHTS_DIR / "weight.bin").read_bytes())
    (package / WEIGHTS_DIR / "weight.bin").unlink()
    (package / WEIGHTS_DIR / "weight.bin").symlink_to(outside)
    with pytest.raises(PackageError, match="outside the package"):
        read_package(package).blob_reader()


def test_symlinked_manifest_outside_the_package(package, tmp_path):
    outside = tmp_path / "Manifest.json"
    outside.write_bytes((package / "Manifest.json").read_bytes())
    (package / "Manifest.json").unlink()
    (package / "Manifest.json").symlink_to(outside)
    with pytest.raises(PackageError, match="outside the package"):
        read_package(package)
