"""Landmark geometry: Umeyama, the mean face, the alignment matrix and the face warp."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from facekit.imaging import geometry
from facekit.imaging.geometry import (DEFAULT_PADDING, INNER, MEAN_FACE_68, alignment_matrix, matrix_scale,
                                      mean_face_fit, spans_a_face, transform_points, umeyama, warp_face,
                                      warp_replicated)

ROOT = Path(__file__).resolve().parents[2]
LANDMARKS = ROOT.parent / "shared" / "data" / "landmarks"
XML_FILES = sorted(LANDMARKS.glob("*_with_face_landmarks.xml"))
needs_landmarks = pytest.mark.skipif(not XML_FILES, reason=f"landmark data not found under {LANDMARKS}")


def similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx],
                     [scale * np.sin(a), scale * np.cos(a), ty],
                     [0, 0, 1]])


def derive_script():
    spec = importlib.util.spec_from_file_location("derive_mean_face", ROOT / "bench" / "derive_mean_face.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crop_mean_face(size: int, padding: float = DEFAULT_PADDING) -> np.ndarray:
    return MEAN_FACE_68 * size * (1 - 2 * padding) + size * padding


# --- umeyama ---------------------------------------------------------------------------------

@pytest.mark.parametrize("angle, scale, tx, ty", [(0, 1, 0, 0), (37, 2.5, -40, 12), (-170, 0.1, 3, 900)])
def test_umeyama_recovers_a_known_similarity(angle, scale, tx, ty):
    src = np.random.default_rng(0).uniform(-50, 50, (30, 2))
    truth = similarity(angle, scale, tx, ty)
    np.testing.assert_allclose(umeyama(src, transform_points(src, truth)), truth, atol=1e-9)


def test_umeyama_without_scale_is_a_rigid_fit():
    src = np.random.default_rng(1).uniform(-1, 1, (10, 2))
    fitted = umeyama(src, transform_points(src, similarity(20, 3, 1, 2)), estimate_scale=False)
    assert matrix_scale(fitted) == pytest.approx(1)


def test_umeyama_works_in_3d():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(20, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.linalg.det(q))
    dst = 1.7 * src @ rotation.T + [1, 2, 3]
    fitted = umeyama(src, dst)
    np.testing.assert_allclose(fitted[:3, :3], 1.7 * rotation, atol=1e-9)
    np.testing.assert_allclose(fitted[:3, 3], [1, 2, 3], atol=1e-9)


def test_umeyama_is_robust_to_noise():
    rng = np.random.default_rng(3)
    src = MEAN_FACE_68 * 200
    truth = similarity(15, 1.3, 30, -20)
    dst = transform_points(src, truth) + rng.normal(scale=1.0, size=src.shape)
    fitted = umeyama(src, dst)
    assert matrix_scale(fitted) == pytest.approx(1.3, rel=0.01)
    assert np.rad2deg(np.arctan2(fitted[1, 0], fitted[0, 0])) == pytest.approx(15, abs=0.5)
    np.testing.assert_allclose(fitted[:2, 2], truth[:2, 2], atol=2)


def test_umeyama_never_mirrors():
    src = np.random.default_rng(4).uniform(-1, 1, (10, 2))
    fitted = umeyama(src, src * [-1, 1])
    assert np.linalg.det(fitted[:2, :2]) > 0


def test_umeyama_rejects_degenerate_input():
    with pytest.raises(ValueError):
        umeyama(np.ones((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError):
        umeyama(np.zeros((5, 2)), np.zeros((4, 2)))


# --- the mean face ---------------------------------------------------------------------------

def test_the_mean_face_fit_is_each_face_s_own_when_faces_alternate():
    """The kept fit answers only the points it was made from: faces asked in turn (as the
    measures of two faces of one frame are) each get their own umeyama fit, equal to a fresh
    one, and nobody can change the one handed out."""
    rng = np.random.default_rng(3)
    faces = [MEAN_FACE_68 * 90 + rng.normal(0, 2, (68, 2)) + offset for offset in (100, 300)]
    fresh = [umeyama(face[INNER], MEAN_FACE_68[INNER]) for face in faces]
    for turn in range(4):
        face = faces[turn % 2]
        fitted = mean_face_fit(face)
        np.testing.assert_array_equal(fitted, fresh[turn % 2])
        assert mean_face_fit(face.copy()) is fitted  # the same points again: the kept answer
    with pytest.raises(ValueError):
        fitted[0, 0] = 1.0
    moved = faces[0].copy()
    moved[np.arange(68)[INNER][0], 0] += 1e-9  # one inner point, by a hair
    assert not np.array_equal(mean_face_fit(moved), fresh[0])


def test_mean_face_is_in_ibug_order_inside_the_unit_square():
    face = MEAN_FACE_68
    assert face.shape == (68, 2)
    assert face.min() >= 0 and face.max() <= 1
    eyes_y, nose_y, mouth_y = face[36:48, 1].mean(), face[27:36, 1].mean(), face[48:68, 1].mean()
    assert face[17:27, 1].mean() < eyes_y < nose_y < mouth_y < face[8, 1]
    assert face[36, 0] < face[39, 0] < face[42, 0] < face[45, 0]
    assert face[0, 0] < face[8, 0] < face[16, 0]
    assert face[48, 0] < face[54, 0] and face[31, 0] < face[35, 0]


def test_mean_face_is_upright_and_centred_on_its_inner_points():
    inner = MEAN_FACE_68[INNER]
    np.testing.assert_allclose((inner.min(axis=0) + inner.max(axis=0)) / 2, [0.5, 0.5], atol=1e-5)
    assert MEAN_FACE_68[36:42, 1].mean() == pytest.approx(MEAN_FACE_68[42:48, 1].mean(), abs=1e-5)
    np.testing.assert_allclose(MEAN_FACE_68[27:31, 0], 0.5, atol=1e-5)  # nose bridge on the axis


@needs_landmarks
def test_mean_face_table_matches_its_derivation():
    np.testing.assert_allclose(derive_script().derive(XML_FILES), MEAN_FACE_68, atol=2e-6)


# --- alignment -------------------------------------------------------------------------------

@pytest.mark.parametrize("angle, scale, tx, ty", [(0, 300, 50, 80), (33, 120, 400, 200), (-80, 40, 10, 700)])
def test_aligning_a_moved_mean_face_gives_the_mean_face_in_the_crop(angle, scale, tx, ty):
    source = transform_points(MEAN_FACE_68, similarity(angle, scale, tx, ty))
    crop_points = transform_points(source, alignment_matrix(source, 256))
    np.testing.assert_allclose(crop_points, crop_mean_face(256), atol=1e-6)


def test_padding_shrinks_the_face_towards_the_crop_centre():
    source = MEAN_FACE_68 * 100
    for padding in (0.0, 0.25):
        crop_points = transform_points(source, alignment_matrix(source, 200, padding=padding))
        np.testing.assert_allclose(crop_points, crop_mean_face(200, padding), atol=1e-6)
    with pytest.raises(ValueError):
        alignment_matrix(source, 200, padding=0.5)
    with pytest.raises(ValueError):
        alignment_matrix(source[:51], 200)


@needs_landmarks
def test_real_faces_land_near_the_mean_face():
    faces = derive_script().load_faces(XML_FILES)
    target = crop_mean_face(256)
    errors = []
    for face in faces:
        crop_points = transform_points(face, alignment_matrix(face, 256))
        errors.append(np.linalg.norm(crop_points[INNER] - target[INNER], axis=1).mean())
        assert crop_points.min() > 0 and crop_points.max() < 256  # jaw included
    assert np.median(errors) < 0.02 * 256 and max(errors) < 0.05 * 256  # turned heads differ more


def test_transform_points_takes_2x3_and_3x3():
    matrix = similarity(90, 2, 1, 1)
    expected = [[1, 3], [-1, 1]]
    np.testing.assert_allclose(transform_points([[1, 0], [0, 1]], matrix), expected, atol=1e-12)
    np.testing.assert_allclose(transform_points([[1, 0], [0, 1]], matrix[:2]), expected, atol=1e-12)


# --- warping ---------------------------------------------------------------------------------

def blob_image(shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    inside = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2
    return np.dstack([inside.astype(np.uint8) * 255] * 3)


def centroid(image: np.ndarray) -> np.ndarray:
    weights = image[..., 0].astype(np.float64)
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    return np.array([(xx * weights).sum(), (yy * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("scale", [0.2, 0.9, 1.0, 3.0])
def test_warp_face_puts_source_points_where_the_matrix_says(scale):
    centre = np.array([300.3, 210.7])
    image = blob_image((480, 640), centre, radius=12 / scale)
    matrix = similarity(25, scale, 0, 0)[:2]
    matrix[:, 2] = [64, 64] - transform_points([centre], matrix)[0] + [5.5, -7.25]
    crop = warp_face(image, matrix, 128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    expected = transform_points([centroid(image)], matrix)[0]  # the drawn blob's own centre
    np.testing.assert_allclose(centroid(crop), expected, atol=0.2)


def test_warp_face_averages_instead_of_aliasing_when_shrinking():
    checker = (np.indices((512, 512)).sum(axis=0) % 2 * 255).astype(np.uint8)
    crop = warp_face(np.dstack([checker] * 3), np.array([[0.25, 0, 0], [0, 0.25, 0]]), 128)
    assert abs(crop[2:-2, 2:-2].mean() - 127.5) < 3 and crop[2:-2, 2:-2].std() < 3


@pytest.mark.parametrize("shrink", [0.03, 0.005], ids=["33x", "200x"])
def test_a_very_large_shrink_puts_points_where_the_matrix_says_and_averages_a_checkerboard(shrink: float) -> None:
    """Beyond a 23x shrink the region is box-averaged before its blur (a Gaussian of hundreds of
    taps took seconds a face): the crop still lands where the matrix says and does not alias."""
    size = 24
    footprint = int(size / shrink) + 40
    centre = np.array([footprint / 2 + 3.3, footprint / 2 - 7.9])
    image = blob_image((footprint, footprint), centre, radius=6 / shrink)
    matrix = similarity(25, shrink, 0, 0)[:2]
    matrix[:, 2] = [size / 2, size / 2] - transform_points([centre], matrix)[0] + [1.5, -2.25]
    crop = warp_face(image, matrix, size)
    expected = transform_points([centroid(image)], matrix)[0]
    np.testing.assert_allclose(centroid(crop), expected, atol=0.2)
    checker = (np.indices((footprint, footprint)).sum(axis=0) % 2 * 255).astype(np.uint8)
    flat = warp_face(np.dstack([checker] * 3), similarity(0, shrink, 0, 0)[:2], size)[2:-2, 2:-2]
    assert abs(flat.mean() - 127.5) < 3 and flat.std() < 3


def test_a_very_large_shrink_gives_the_gaussian_paths_pixels_within_a_few_levels(monkeypatch) -> None:
    """The box-then-blur path against the plain Gaussian one on a real photo, enlarged 4x and
    given fine grain so aliasing would show, the crop inside the frame: mean difference under 1
    level, none over 8 (3% of the range)."""
    import cv2

    from facekit.imaging import geometry

    photo = cv2.imread(str(ROOT.parent / "shared" / "data" / "images" / "scenes" / "two_people.jpg"))
    if photo is None:
        pytest.skip("shared test data not found")
    large = cv2.resize(photo, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    grain = np.random.default_rng(0).integers(-40, 40, large.shape)
    large = np.clip(large.astype(int) + grain, 0, 255).astype(np.uint8)
    centre = np.array(large.shape[1::-1]) / 2
    for size, shrink in ((16, 0.018), (32, 0.024), (64, 0.03)):
        matrix = similarity(10, shrink, 0, 0)[:2]
        matrix[:, 2] = [size / 2, size / 2] - transform_points([centre], matrix)[0]
        boxed = warp_face(large, matrix, size).astype(int)
        monkeypatch.setattr(geometry, "_BOXED_ABOVE_SIGMA", np.inf)
        gaussian = warp_face(large, matrix, size)
        monkeypatch.undo()
        difference = np.abs(boxed - gaussian)
        assert difference.mean() < 1 and difference.max() <= 8, (size, difference.mean(), difference.max())


def test_warp_face_fills_outside_the_frame_with_black():
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = warp_face(image, np.array([[1.0, 0, 50], [0, 1.0, 50]]), 100)
    assert (crop[:45, :45] == 0).all() and (crop[55:, 55:] == 200).all()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


@pytest.mark.parametrize("enlargement", [1.5, 2.5, 4.0])
def test_enlarged_faces_are_as_sharp_as_a_bicubic_warp(enlargement):
    """A face photo shrunk, then cropped back up, against the crop of the full-size photo: within
    0.2 dB of cv2.warpAffine(INTER_CUBIC), and above a bilinear warp."""
    import cv2

    photo = cv2.imread(str(ROOT.parent / "shared" / "data" / "images" / "scenes" / "obama.jpg"))
    if photo is None:
        pytest.skip("shared test data not found")
    height, width = photo.shape[:2]
    full = similarity(12, 256 / (0.6 * min(height, width)), 0, 0)
    full[:2, 2] = [128, 128] - transform_points([[width / 2, height / 2]], full[:2])[0]
    reference = warp_face(photo, full[:2], 256)
    shrink = matrix_scale(full[:2]) / enlargement  # so the small photo's crop enlarges this much
    small = cv2.resize(photo, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    sx, sy = small.shape[1] / width, small.shape[0] / height
    to_small = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    matrix = (full @ np.linalg.inv(to_small))[:2]
    assert matrix_scale(matrix) == pytest.approx(enlargement, rel=0.02)
    inner = (slice(8, -8), slice(8, -8))
    ours = _psnr(warp_face(small, matrix, 256)[inner], reference[inner])
    cubic = _psnr(cv2.warpAffine(small, matrix, (256, 256), flags=cv2.INTER_CUBIC)[inner], reference[inner])
    linear = _psnr(cv2.warpAffine(small, matrix, (256, 256), flags=cv2.INTER_LINEAR)[inner], reference[inner])
    assert ours > cubic - 0.2 and ours > linear + 0.1, (ours, cubic, linear)


@pytest.mark.parametrize("points, spans", [
    (MEAN_FACE_68 * 80 + 100, True),
    (MEAN_FACE_68 * [80, 5] + 100, True),              # squeezed to a sixteenth of its height
    (np.full((68, 2), 50.0), False),                    # all in one place
    (np.stack([np.linspace(0, 90, 68), np.linspace(5, 50, 68)], axis=1), False),  # on one line
    (np.round(np.stack([np.linspace(0, 90, 68), np.linspace(5, 50, 68)], axis=1), 2), False),  # rounded as stored
    (np.where(np.arange(136).reshape(68, 2) == 7, np.nan, MEAN_FACE_68 * 80), False),  # not a number
])
def test_points_that_span_a_face(points: np.ndarray, spans: bool) -> None:
    assert spans_a_face(points) is spans


def test_a_replicated_warp_is_the_same_bytes_inside_at_and_beyond_the_edges():
    """``warp_replicated`` takes OpenCV's faster BORDER_CONSTANT path only where no sample
    reaches the border, so every crop, inside the frame, across its edges or past them, is
    BORDER_REPLICATE's to the byte."""
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    taken = {True: 0, False: 0}
    for _ in range(600):
        angle, scale, size = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 3.0), int(rng.choice([16, 48, 64]))
        cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
        centre = rng.uniform([-20, -20], [220, 140])  # the crop's centre lands anywhere near the frame
        matrix = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
        matrix[:, 2] = size / 2 - matrix[:, :2] @ centre
        expected = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        np.testing.assert_array_equal(warp_replicated(frame, matrix, size), expected)
        taken[geometry.samples_inside(matrix, size, 200, 120, margin=1)] += 1
    assert min(taken.values()) > 100  # both ways were taken, often
