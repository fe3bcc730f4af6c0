"""Image resizing ops against coremltools (declarations, versions, type inference) and against
independent values: torch's interpolate / grid_sample, numpy formulas, and `GOLD`, outputs of the
real Core ML runtime recorded as expectations in coremltools' own op tests (plain numbers, facts).

Add a row to a table to add a case.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.mil.ops._eval import run_op
from tests.mil.ops.test_control_flow import (assert_same_declaration, assert_same_types, ct_versions,
                                             evaluate, our_types)
from torch_coreml.errors import MILTypeError
from torch_coreml.mil.builder import new_function
from torch_coreml.mil.ops import CATALOGUE
from torch_coreml.mil.types import Symbol, tensor

f32, f16, i32 = np.float32, np.float16, np.int32
OPS = ["upsample_nearest_neighbor", "resize_nearest_neighbor", "upsample_bilinear", "resize_bilinear",
       "crop_resize", "crop", "affine", "resample", "resize"]
_rng = np.random.default_rng(7)


def rand(*shape, dtype=f32):
    return _rng.uniform(-3, 3, size=shape).astype(dtype)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- declarations -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", OPS)
def test_versions_match_coremltools(op):
    assert [s.since for s in CATALOGUE.versions(op)] == ct_versions(op)


@pytest.mark.parametrize("op,target", [(op, s.since.name) for op in OPS for s in CATALOGUE.versions(op)])
def test_declaration_matches_coremltools(op, target):
    assert_same_declaration(op, target)


# -- type inference ---------------------------------------------------------------------------------
RESAMPLE_MODES = dict(sampling_mode="bilinear", padding_mode="constant", padding_value=f32(0),
                      coordinates_mode="normalized_minus_one_to_one", align_corners=True)
TYPE_CASES = [
    ("upsample_nearest_neighbor", {"x": ((1, 3, 4, 5), "fp32")},
     {"scale_factor_height": 2, "scale_factor_width": 3}, "iOS15"),
    ("upsample_nearest_neighbor", {"x": ((3, 7, 10), "fp16")},
     {"scale_factor_height": f32(0.7), "scale_factor_width": f32(1.55)}, "iOS17"),
    ("upsample_nearest_neighbor", {"x": (("b", 2, "h", 5), "fp32")}, {"scale_factor_width": 2}, "iOS15"),
    ("resize_nearest_neighbor", {"x": (("b", 3, 4, 5), "fp32")},
     {"target_size_height": 7, "target_size_width": 2}, "iOS15"),
    ("upsample_bilinear", {"x": ((1, 3, 4, 5), "fp32")},
     {"scale_factor_height": f32(2.6), "scale_factor_width": f32(2), "align_corners": False}, "iOS15"),
    ("upsample_bilinear", {"x": ((1, 3, "h", 5), "fp16")},
     {"scale_factor_height": 2, "scale_factor_width": 2, "half_pixel_centers": True,
      "align_corners": False}, "iOS16"),
    ("resize_bilinear", {"x": ((2, 4, 6), "fp32")}, {}, "iOS15"),
    ("resize_bilinear", {"x": (("n", 2, 4, 6), "fp16")},
     {"target_size_height": 3, "target_size_width": 9, "sampling_mode": "OFFSET_CORNERS"}, "iOS17"),
    ("crop", {"x": ((1, 3, 10, 8), "fp32")},
     {"crop_height": np.array([1, 2], i32), "crop_width": np.array([0, 3], i32)}, "iOS15"),
    ("crop", {"x": ((3, "h", 8), "fp16")},
     {"crop_height": np.array([0, 0], i32), "crop_width": np.array([2, 2], i32)}, "iOS15"),
    ("crop_resize", {"x": ((2, 3, 8, 8), "fp32"), "roi": ((4, 1, 4, 1, 1), "fp32")},
     {"target_height": 3, "target_width": 5}, "iOS15"),
    ("crop_resize", {"x": (("b", "c", 8, 8), "fp16"), "roi": ((4, 1, 4, 1, 1), "fp16")},
     {"target_height": 3, "pad_value": f16(1), "sampling_mode": "ALIGN_CORNERS"}, "iOS16"),
    ("crop_resize", {"x": ((1, 3, 8, 8), "fp32"), "roi": ((2, 1, 5, 1, 1), "fp32")}, {}, "iOS16"),
    ("crop_resize", {"x": ((4, 3, 8, 8), "fp32"), "boxes": ((3, 4), "fp32")},
     {"box_indices": np.array([0, 3, 1], i32), "target_height": 2, "target_width": 6,
      "normalized_coordinates": True}, "iOS17"),
    ("crop_resize", {"x": ((4, 3, 8, 8), "fp16"), "boxes": ((3, 4), "uint16")}, {}, "iOS17"),
    ("crop_resize", {"x": (("b", 3, 8, 8), "fp32"), "boxes": ((5, 4), "fp32"),  # coremltools needs a
                     "box_indices": ((5,), "int32")}, {"target_width": 4}, "iOS17"),  # static N
    ("affine", {"x": ((2, 3, 5, 6), "fp32"), "transform_matrix": ((1, 6), "fp32")},
     dict(output_height=4, output_width=7, **RESAMPLE_MODES), "iOS15"),
    ("resample", {"x": ((2, 3, 5, 6), "fp32"), "coordinates": ((2, 4, 7, 2), "int32")},
     RESAMPLE_MODES, "iOS15"),
    ("resample", {"x": (("b", 3, 5, 6), "fp16"), "coordinates": (("b", "h", "w", 2), "fp16")},
     dict(RESAMPLE_MODES, padding_value=f16(0)), "iOS16"),
    ("resample", {"x": ((2, 3, 5, 6), "fp32"), "coordinates": ((2, 4, 7, 2), "int8")},
     RESAMPLE_MODES, "iOS17"),
    ("resize", {"x": ((1, 2, 3, "n"), "fp32")},
     {"shape": np.array([1, 0, 5], i32), "resized_dims": np.uint32(2)}, "iOS17"),
    ("resize", {"x": ((1, 2, 3, 4), "int32"), "shape": ((3,), "int32")},
     {"resized_dims": np.uint32(2), "interpolation_mode": "NEAREST_NEIGHBOR"}, "iOS17"),
    ("resize", {"x": ((2, 3, 4), "fp16")},
     {"shape": np.array([5, 6, 7], np.uint16), "resized_dims": np.uint32(3)}, "iOS18"),
]


@pytest.mark.parametrize("op,inputs,consts,target", TYPE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TYPE_CASES)])
def test_types_match_coremltools(op, inputs, consts, target):
    assert_same_types(op, inputs, consts, target)


def test_crop_resize_with_image_index_crops_one_image():
    # coremltools infers [N, B, C, ...] for 5-value rois, but its docs (and Core ML) give one crop per
    # box: [N, 1, C, ...]. We follow the docs.
    assert our_types("crop_resize", {"x": ((2, 3, 8, 8), "fp32"), "roi": ((4, 1, 5, 1, 1), "fp32")},
                     {"target_height": 2, "target_width": 2}, "iOS15") == [("fp32", (4, 1, 3, 2, 2))]


# -- values: Core ML outputs recorded in coremltools' op tests ---------------------------------------
IMG4 = np.arange(1, 17, dtype=f32).reshape(1, 1, 4, 4)
AFF_X = np.array([11.0, 22.0, 33.0, 44.0], f32).reshape(1, 1, 2, 2)
AFF_M = np.array([-1.0, -2.0, -3.7, -1.0, 3.5, 1.2], f32).reshape(1, 6)
COORDS = np.array([-1.0, -2.0, -3.7, -1.0, 0.0, 0.0, 3.5, 1.2], f32).reshape(1, 2, 2, 2)
ROI3 = np.array([[0.1, 0.3, 1.3, 1.0], [0.5, 1.8, 1.0, 0.3], [0.0, 0.4, 0.6, 0.7]], f32)
PAD_GOLD = [3.1, 5.2, 10, 10, 10, 7.899, 10, 13.9, 2.2, 3.1, 9.4, 10.3]


def _resample(sm, pm, pv, cm, ac):
    return dict(sampling_mode=sm, padding_mode=pm, padding_value=f32(pv), coordinates_mode=cm, align_corners=ac)


GOLD = [  # op, runtime inputs, consts, target, expected (flattened)
    ("resize_nearest_neighbor", {"x": np.array([0.37, 6.17], f32).reshape(1, 1, 2, 1)},
     {"target_size_height": 2, "target_size_width": 3}, "iOS15", [0.37] * 3 + [6.17] * 3),
    ("upsample_nearest_neighbor", {"x": np.array([1.5, -2.5, 3.5], f32).reshape(1, 1, 1, 3)},
     {"scale_factor_height": f32(3.17), "scale_factor_width": f32(0.67)}, "iOS15", [1.5, -2.5] * 3),
    ("upsample_nearest_neighbor", {"x": np.array([1.5, -2.5, 3.5], f32).reshape(1, 1, 1, 3)},
     {"scale_factor_height": f32(2.0), "scale_factor_width": f32(1.12)}, "iOS15", [1.5, -2.5, 3.5] * 2),
    ("upsample_bilinear", {"x": np.array([0, 1], f32).reshape(1, 1, 2)},
     {"scale_factor_height": 1, "scale_factor_width": 3, "align_corners": True}, "iOS15",
     [0, 0.2, 0.4, 0.6, 0.8, 1]),
    ("upsample_bilinear", {"x": np.array([0, 1], f32).reshape(1, 1, 2)},
     {"scale_factor_height": f32(1), "scale_factor_width": f32(2.6), "align_corners": False}, "iOS15",
     [0, 0.1, 0.5, 0.9, 1]),
    ("upsample_bilinear", {"x": np.array([1, 2], f32).reshape(1, 1, 1, 2)},
     {"scale_factor_height": 2, "scale_factor_width": 3, "align_corners": True}, "iOS16",
     [1.0, 1.2, 1.4, 1.6, 1.8, 2.0] * 2),
    ("upsample_bilinear", {"x": np.array([1, 2], f32).reshape(1, 1, 1, 2)},
     {"scale_factor_height": 2, "scale_factor_width": 3, "align_corners": False}, "iOS16",
     [1.0, 1.0, 1.33334, 1.66667, 2.0, 2.0] * 2),
    ("upsample_bilinear", {"x": np.array([1, 2], f32).reshape(1, 1, 1, 2)},
     {"scale_factor_height": 2, "scale_factor_width": 3, "align_corners": False,
      "half_pixel_centers": False}, "iOS16", [1.0, 1.33334, 1.66667, 2.0, 2.0, 2.0] * 2),
    ("crop_resize", {"x": IMG4}, {"roi": np.array([1, 1, 2, 2], f32).reshape(1, 1, 4, 1, 1),
                                  "target_height": 4, "target_width": 4, "sampling_mode": "ALIGN_CORNERS"},
     "iOS15", [6, 6.333333, 6.666666, 7, 7.333333, 7.666666, 8, 8.333333, 8.666666, 9, 9.333333,
               9.666666, 10, 10.333333, 10.666666, 11]),
    ("crop_resize", {"x": IMG4}, {"roi": np.array([1, 1, 2, 2], f32).reshape(1, 1, 4, 1, 1),
                                  "sampling_mode": "ALIGN_CORNERS"}, "iOS15", [8.5]),
    ("crop_resize", {"x": IMG4}, {"roi": np.array([0, 0, 0, 1 / 3, 1 / 3], f32).reshape(1, 1, 5, 1, 1),
                                  "target_height": 2, "target_width": 2, "normalized_coordinates": True,
                                  "sampling_mode": "ALIGN_CORNERS"}, "iOS15", [1, 2, 5, 6]),
    ("crop_resize", {"x": IMG4}, {"roi": np.array([2, 2, 1, 1], f32).reshape(1, 1, 4, 1, 1),
                                  "target_height": 2, "target_width": 2, "sampling_mode": "ALIGN_CORNERS"},
     "iOS15", [11, 10, 7, 6]),
    ("crop_resize", {"x": IMG4}, {"roi": np.concatenate([np.zeros((3, 1), f32), ROI3], 1).reshape(3, 1, 5, 1, 1),
                                  "target_height": 2, "target_width": 2, "normalized_coordinates": True,
                                  "sampling_mode": "ALIGN_CORNERS", "pad_value": f32(10)}, "iOS16", PAD_GOLD),
    ("crop_resize", {"x": IMG4}, {"boxes": ROI3, "box_indices": np.zeros(3, i32), "target_height": 2,
                                  "target_width": 2, "normalized_coordinates": True,
                                  "sampling_mode": "ALIGN_CORNERS", "pad_value": f32(10)}, "iOS17", PAD_GOLD),
    ("crop_resize", {"x": IMG4}, {"boxes": np.array([[1, 1, 2, 2]], f32), "target_height": 2,
                                  "target_width": 2, "sampling_mode": "ALIGN_CORNERS"}, "iOS17", [6, 7, 10, 11]),
    ("affine", {"x": AFF_X, "transform_matrix": AFF_M},
     dict(output_height=3, output_width=3, **_resample("bilinear", "constant", 0, "normalized_minus_one_to_one", True)),
     "iOS15", [10.752501, 2.5025, 0.0, 1.9799997, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("affine", {"x": AFF_X, "transform_matrix": AFF_M},
     dict(output_height=2, output_width=5, **_resample("bilinear", "constant", 0, "normalized_minus_one_to_one", True)),
     "iOS15", [10.752501, 5.94, 2.5025, 0.44000006, 0, 0, 0, 0, 0, 0]),
    ("resample", {"x": AFF_X, "coordinates": COORDS},
     _resample("bilinear", "constant", 6.17, "normalized_minus_one_to_one", True), "iOS15", [8.585, 6.17, 27.5, 6.17]),
    ("resample", {"x": AFF_X, "coordinates": COORDS},
     _resample("nearest", "border", -1, "unnormalized", False), "iOS15", [11, 11, 11, 44]),
    ("resample", {"x": AFF_X, "coordinates": COORDS},
     _resample("bilinear", "reflection", -1, "normalized_zero_to_one", True), "iOS15", [22, 36.3, 11, 34.1]),
    ("resample", {"x": AFF_X, "coordinates": COORDS},
     _resample("nearest", "symmetric", -1, "normalized_zero_to_one", False), "iOS15", [22, 33, 11, 33]),
    ("resample", {"x": AFF_X, "coordinates": np.array([0, 0, 1, 1] * 2, np.int8).reshape(1, 2, 2, 2)},
     _resample("bilinear", "constant", 6.17, "normalized_minus_one_to_one", True), "iOS17", [27.5, 44] * 2),
    ("resize", {"x": np.array([-6.174, 9.371], f32).reshape(1, 1, 1, 2, 1)},
     {"shape": np.array([1, 1, 3, 2], i32), "resized_dims": np.uint32(2),
      "interpolation_mode": "NEAREST_NEIGHBOR"}, "iOS17", [-6.174] * 2 + [9.371] * 4),
    ("resize", {"x": np.array([-6.174, 9.371], f32).reshape(1, 1, 2, 1),
                "shape": np.array([1, 1, 3, 2], i32)},
     {"resized_dims": np.uint32(2), "interpolation_mode": "NEAREST_NEIGHBOR"}, "iOS17",
     [-6.174] * 2 + [9.371] * 4),
    ("resize", {"x": np.array([0, 1], f32).reshape(1, 1, 1, 2), "shape": np.array([3, 1, 5], i32)},
     {"resized_dims": np.uint32(2)}, "iOS17", [0, 0.4, 0.8, 1, 1]),
]
# The sampling-mode grids documented for resize_bilinear (resizing [0, 1] returns the positions).
for _n, _grids in {5: {"UNALIGN_CORNERS": [0, .1, .5, .9, 1], "STRICT_ALIGN_CORNERS": [0, .25, .5, .75, 1],
                       "ALIGN_CORNERS": [0, .25, .5, .75, 1], "DEFAULT": [0, .4, .8, 1, 1],
                       "OFFSET_CORNERS": [.1, .3, .5, .7, .9]},
                   6: {"UNALIGN_CORNERS": [0, 0, 1 / 3, 2 / 3, 1, 1], "ALIGN_CORNERS": [0, .2, .4, .6, .8, 1],
                       "DEFAULT": [0, 1 / 3, 2 / 3, 1, 1, 1],
                       "OFFSET_CORNERS": [1 / 12, .25, 5 / 12, 7 / 12, .75, 11 / 12]}}.items():
    for _mode, _want in _grids.items():
        GOLD.append(("resize_bilinear", {"x": np.array([0, 1], f32).reshape(1, 1, 2)},
                     {"target_size_height": 1, "target_size_width": _n, "sampling_mode": _mode}, "iOS15", _want))


@pytest.mark.parametrize("op,inputs,consts,target,want", GOLD, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOLD)])
def test_values_match_core_ml(op, inputs, consts, target, want):
    (out,), _ = run_op(op, target, consts=consts, **inputs)
    # Core ML computes in reduced precision: its recorded outputs are good to about 1e-3.
    np.testing.assert_allclose(out.numpy().reshape(-1), np.asarray(want, f32), rtol=1e-3, atol=1e-3)


# -- values: torch references -----------------------------------------------------------------------
def _interp(x, size, mode, align=None):
    kw = {} if align is None else {"align_corners": align}
    return F.interpolate(torch.from_numpy(x), size=size, mode=mode, **kw).numpy()


X = rand(2, 3, 5, 7)
TORCH_CASES = [  # op, consts, target, reference
    ("upsample_nearest_neighbor", {"scale_factor_height": f32(2), "scale_factor_width": f32(1.5)}, "iOS15",
     _interp(X, (10, 10), "nearest")),
    ("resize_nearest_neighbor", {"target_size_height": 8, "target_size_width": 3}, "iOS15",
     _interp(X, (8, 3), "nearest-exact")),
    ("upsample_bilinear", {"scale_factor_height": f32(2), "scale_factor_width": f32(1.5)}, "iOS15",
     _interp(X, (10, 10), "bilinear", True)),
    ("upsample_bilinear", {"scale_factor_height": f32(0.6), "scale_factor_width": f32(3), "align_corners": False},
     "iOS15", _interp(X, (3, 21), "bilinear", False)),
    ("upsample_bilinear", {"scale_factor_height": 2, "scale_factor_width": 2, "align_corners": False},
     "iOS16", _interp(X, (10, 14), "bilinear", False)),
    ("resize_bilinear", {"target_size_height": 9, "target_size_width": 4, "sampling_mode": "UNALIGN_CORNERS"},
     "iOS15", _interp(X, (9, 4), "bilinear", False)),
    ("resize_bilinear", {"target_size_height": 9, "target_size_width": 4,
                         "sampling_mode": "STRICT_ALIGN_CORNERS"}, "iOS15", _interp(X, (9, 4), "bilinear", True)),
    ("crop", {"crop_height": np.array([1, 2], i32), "crop_width": np.array([0, 3], i32)}, "iOS15",
     X[:, :, 1:3, 0:4]),
    ("resize", {"shape": np.array([4, 6, 9], i32), "resized_dims": np.uint32(3),
                "sampling_mode": "STRICT_ALIGN_CORNERS"}, "iOS17",
     _interp(X[None], (4, 6, 9), "trilinear", True)[0]),
    ("resize", {"shape": np.array([2, 0], np.uint16), "resized_dims": np.uint32(2),
                "interpolation_mode": "NEAREST_NEIGHBOR"}, "iOS17", _interp(X, (2, 7), "nearest-exact")),
]


@pytest.mark.parametrize("op,consts,target,want", TORCH_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)])
@pytest.mark.parametrize("dtype", [f32, f16])
def test_values_match_torch(op, consts, target, want, dtype):
    (out,), (t,) = run_op(op, target, consts=consts, x=X.astype(dtype))
    assert t.dtype.name == {f32: "fp32", f16: "fp16"}[dtype] and out.dtype == torch.from_numpy(X.astype(dtype)).dtype
    tol = 1e-5 if dtype == f32 else 1e-2
    np.testing.assert_allclose(out.float().numpy(), want, rtol=tol, atol=tol)
    assert tuple(t.shape) == want.shape


GRID_X = rand(2, 3, 5, 6)


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("coords_dtype", [f32, f16])
def test_resample_matches_grid_sample(padding, mode, coords_dtype):
    grid = _rng.uniform(-1.4, 1.4, size=(2, 4, 7, 2)).astype(coords_dtype)
    ours = _resample(mode, "constant" if padding == "zeros" else padding, 0, "normalized_minus_one_to_one", True)
    (out,), _ = run_op("resample", "iOS16", consts=ours, x=GRID_X, coordinates=grid)
    want = F.grid_sample(torch.from_numpy(GRID_X), torch.from_numpy(grid.astype(f32)), mode=mode,
                         padding_mode=padding, align_corners=True)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_affine_matches_affine_grid():
    theta = np.array([[0.8, -0.3, 0.1, 0.2, 1.1, -0.2], [1.2, 0.1, -0.3, -0.1, 0.7, 0.4]], f32)
    consts = dict(output_height=4, output_width=9, **_resample("bilinear", "constant", 0,
                                                              "normalized_minus_one_to_one", True))
    (out,), _ = run_op("affine", consts=consts, x=GRID_X, transform_matrix=theta)
    grid = F.affine_grid(torch.from_numpy(theta).reshape(2, 2, 3), [2, 3, 4, 9], align_corners=True)
    want = F.grid_sample(torch.from_numpy(GRID_X), grid, align_corners=True)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def _crop_and_resize_ref(img, boxes, idx, th, tw, pad):
    """tf.image.crop_and_resize, written out: normalized corner boxes, align-corners grids."""
    _, c, h, w = img.shape
    out = np.zeros((len(boxes), c, th, tw))
    for n, ((y0, x0, y1, x1), b) in enumerate(zip(boxes, idx)):
        for i in range(th):
            y = (y0 + i * (y1 - y0) / (th - 1)) * (h - 1)
            for j in range(tw):
                x = (x0 + j * (x1 - x0) / (tw - 1)) * (w - 1)
                if not (0 <= y <= h - 1 and 0 <= x <= w - 1):
                    out[n, :, i, j] = pad
                    continue
                ya, xa = int(np.floor(y)), int(np.floor(x))
                yb, xb = min(ya + 1, h - 1), min(xa + 1, w - 1)
                dy, dx = y - ya, x - xa
                top = img[b, :, ya, xa] * (1 - dx) + img[b, :, ya, xb] * dx
                bot = img[b, :, yb, xa] * (1 - dx) + img[b, :, yb, xb] * dx
                out[n, :, i, j] = top * (1 - dy) + bot * dy
    return out


@pytest.mark.parametrize("target", ["iOS16", "iOS17"])
def test_crop_resize_matches_crop_and_resize(target):
    boxes = _rng.uniform(-0.2, 1.2, size=(5, 4)).astype(f32)
    idx = np.array([0, 1, 1, 0, 1], i32)
    want = _crop_and_resize_ref(GRID_X, boxes, idx, 3, 4, -2.0)
    consts = {"target_height": 3, "target_width": 4, "normalized_coordinates": True,
              "sampling_mode": "ALIGN_CORNERS", "pad_value": f32(-2)}
    if target == "iOS16":
        consts["roi"] = np.concatenate([idx[:, None].astype(f32), boxes], 1).reshape(5, 1, 5, 1, 1)
    else:
        consts.update(boxes=boxes, box_indices=idx)
    (out,), _ = run_op("crop_resize", target, consts=consts, x=GRID_X)
    np.testing.assert_allclose(out.numpy().reshape(want.shape), want, rtol=1e-4, atol=1e-4)


def test_crop_resize_box_modes_agree():
    corners = np.array([[1.0, 0.5, 3.0, 4.5]], f32)  # h0, w0, h1, w1
    forms = {"CORNERS_HEIGHT_FIRST": corners, "CORNERS_WIDTH_FIRST": corners[:, [1, 0, 3, 2]],
             "CENTER_SIZE_HEIGHT_FIRST": np.array([[2.0, 2.5, 2.0, 4.0]], f32),
             "CENTER_SIZE_WIDTH_FIRST": np.array([[2.5, 2.0, 4.0, 2.0]], f32)}
    outs = [run_op("crop_resize", "iOS17", consts={"boxes": b, "box_coordinate_mode": m, "target_height": 3,
                                                    "target_width": 3, "spatial_scale": f32(1)}, x=GRID_X)[0][0]
            for m, b in forms.items()]
    for o in outs[1:]:
        np.testing.assert_allclose(o.numpy(), outs[0].numpy(), rtol=1e-6)


def test_kernels_follow_runtime_shapes():
    """One program with symbolic dims, run on inputs of two different sizes."""
    fn, b = new_function("f", {"x": tensor("fp32", (Symbol("b"), 3, Symbol("h"), Symbol("w"))),
                               "shape": tensor("int32", (2,))}, "iOS17")
    x, shape = fn.inputs
    ups = b.op("upsample_bilinear", x=x, scale_factor_height=f32(2), scale_factor_width=f32(1.5))
    near = b.op("upsample_nearest_neighbor", x=x, scale_factor_height=2, scale_factor_width=3)
    cropped = b.op("crop", x=x, crop_height=np.array([1, 0], i32), crop_width=np.array([0, 2], i32))
    resized = b.op("resize", x=x, shape=shape, resized_dims=np.uint32(2), sampling_mode="UNALIGN_CORNERS")
    assert all(isinstance(d, Symbol) for d in ups.type.shape[2:] + cropped.type.shape[2:] + resized.type.shape[2:])
    fn.block.outputs = [ups, near, cropped, resized]
    for dims in ((2, 4, 6), (1, 3, 9)):
        xv = rand(dims[0], 3, dims[1], dims[2])
        got = evaluate(fn, x=xv, shape=np.array([5, 7], i32))
        h, w = dims[1:]
        want = [_interp(xv, (2 * h, int(1.5 * w)), "bilinear", True), _interp(xv, (2 * h, 3 * w), "nearest"),
                xv[:, :, 1:, :w - 2], _interp(xv, (5, 7), "bilinear", False)]
        for g, wv in zip(got, want):
            np.testing.assert_allclose(g.numpy(), wv, rtol=1e-5, atol=1e-5)


# -- errors -----------------------------------------------------------------------------------------
def _build(op, target="iOS17", **types):
    fn, b = new_function("f", {k: tensor(*v) for k, v in types.items()}, target)
    return fn, b, {v.name: v for v in fn.inputs}


def test_rejects_bad_inputs():
    fn, b, v = _build("x", x=("fp32", (1, 2, 4, 4)), xi=("int32", (1, 2, 4, 4)), x2=("fp32", (4, 4)),
                      t=("int32", ()), c=("fp32", (1, 3, 3, 3)))
    cases = [
        (r"upsample_nearest_neighbor.*'x'.*int32", lambda: b.op("upsample_nearest_neighbor", x=v["xi"])),
        (r"upsample_bilinear.*'x'.*rank", lambda: b.op("upsample_bilinear", x=v["x2"])),
        (r"resize_nearest_neighbor.*'target_size_width'.*missing",
         lambda: b.op("resize_nearest_neighbor", x=v["x"], target_size_height=2)),
        (r"resize_bilinear.*'target_size_height'.*constant",
         lambda: b.op("resize_bilinear", x=v["x"], target_size_height=v["t"])),
        (r"resize_bilinear.*'sampling_mode'", lambda: b.op("resize_bilinear", x=v["x"], sampling_mode="CUBIC")),
        (r"crop.*'crop_width'", lambda: b.op("crop", x=v["x"], crop_height=np.array([0, 0], i32),
                                             crop_width=np.array([1], i32))),
        (r"crop_resize.*'boxes'", lambda: b.op("crop_resize", x=v["x"], boxes=np.ones((2, 5), f32))),
        (r"crop_resize.*'box_indices'", lambda: b.op("crop_resize", x=v["x"], boxes=np.ones((2, 4), f32))),
        (r"crop_resize.*'roi'", lambda: b.op("crop_resize", x=v["x"], roi=np.ones((2, 4), f32))),
        (r"resample.*'coordinates'", lambda: b.op("resample", x=v["x"], coordinates=v["c"], **RESAMPLE_MODES)),
        (r"resample.*'padding_mode'", lambda: b.op("resample", x=v["x"], coordinates=np.ones((1, 2, 2, 2), f32),
                                                   **dict(RESAMPLE_MODES, padding_mode="wrap"))),
        (r"affine.*'sampling_mode'", lambda: b.op("affine", x=v["x"], transform_matrix=np.ones((1, 6), f32),
                                                  output_height=2, output_width=2,
                                                  **dict(RESAMPLE_MODES, sampling_mode="nearest"))),
        (r"resize.*'interpolation_mode'", lambda: b.op("resize", x=v["x"], shape=np.array([2, 2], i32),
                                                       resized_dims=np.uint32(2), interpolation_mode="CUBIC")),
        (r"resize.*'resized_dims'", lambda: b.op("resize", x=v["x"], shape=np.array([2, 2], i32),
                                                 resized_dims=np.int32(2))),
    ]
    for pattern, build in cases:
        with pytest.raises(MILTypeError, match=pattern):
            build()


def test_resample_fp16_coordinates_need_ios16():
    fn, b, v = _build("x", "iOS15", x=("fp32", (1, 2, 4, 4)), c=("fp16", (1, 3, 3, 2)))
    with pytest.raises(MILTypeError, match=r"resample.*'coordinates'.*fp16"):
        b.op("resample", x=v["x"], coordinates=v["c"], **RESAMPLE_MODES)
