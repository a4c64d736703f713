"""Shrinking big images: halving keeps pixel edges where they were, and nothing aliases."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facekit.imaging.resize import halved, halvings_for, shrunk


def _centroid(image: np.ndarray) -> np.ndarray:
    """The brightness-weighted centre of ``image`` in pixel-edge coordinates (pixel i spans i..i+1)."""
    plane = image[..., 0].astype(np.float64)
    ys, xs = np.indices(plane.shape)
    return np.array([((xs + 0.5) * plane).sum(), ((ys + 0.5) * plane).sum()]) / plane.sum()


def _dot(height: int, width: int, x: int, y: int, radius: int = 24) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    cv2.circle(image, (x, y), radius, (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("factor,times", [(0.9, 0), (0.5, 1), (0.49, 1), (0.26, 1), (0.25, 2), (0.07, 3)])
def test_halvings_leave_less_than_a_2x_shrink(factor: float, times: int) -> None:
    assert halvings_for(factor) == times
    assert 0.5 < factor * 2 ** times <= 1


def test_halving_an_odd_sized_image_keeps_pixel_edges_in_place() -> None:
    image = _dot(1201, 1603, 700, 450)
    small, done = halved(image, 2)
    assert done == 2 and small.shape == (300, 400, 3)  # 1201 -> 600 -> 300, 1603 -> 801 -> 400
    np.testing.assert_allclose(_centroid(small) * 4, _centroid(image), atol=0.1)


def test_halving_stops_at_one_pixel() -> None:
    small, done = halved(np.zeros((5, 300, 3), np.uint8), 4)
    assert done == 2 and small.shape == (1, 75, 3)


@pytest.mark.parametrize("shape,longest", [((2999, 4001), 1280), ((4000, 3000), 1000), ((2000, 1500), 1280)])
def test_a_shrunk_image_reports_the_factor_that_maps_it_back(shape: tuple[int, int], longest: int) -> None:
    height, width = shape
    image = _dot(height, width, width // 3, height // 4, radius=40)
    small, factor = shrunk(image, longest)
    assert max(small.shape[:2]) == longest
    assert abs(small.shape[0] - height * factor) <= 1 and abs(small.shape[1] - width * factor) <= 1
    np.testing.assert_allclose(_centroid(small) / factor, _centroid(image), atol=1.5)


def test_shrinking_averages_a_fine_pattern_instead_of_aliasing() -> None:
    """A 1-pixel checkerboard is mid grey at any smaller size; sampling would keep black or white."""
    checker = (np.indices((3000, 4000)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small, _ = shrunk(np.dstack([checker] * 3), 1280)
    inner = small[2:-2, 2:-2].astype(np.float64)
    assert abs(inner.mean() - 127.5) < 2 and inner.std() < 2
