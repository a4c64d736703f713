"""A cluster sheet's captions: the face's source and its face file, each shortened in the middle
to the tile's width, so the frame number and face index at the end stay readable."""
from __future__ import annotations

import cv2

from facekit.curate.sheets import CAPTION_SCALE, tile_caption
from facekit.sweep.contact_sheet import FONT, TILE


def test_a_caption_names_the_source_and_the_face_file_keeping_both_ends() -> None:
    source, face_file = tile_caption("short_hamilton_clip.mp4", "short_hamilton_clip_000212_1.png")
    for shown, full in ((source, "short_hamilton_clip.mp4"), (face_file, "short_hamilton_clip_000212_1.png")):
        start, _, end = shown.partition("..")
        assert start and end and full.startswith(start) and full.endswith(end)
        assert cv2.getTextSize(shown, FONT, CAPTION_SCALE, 1)[0][0] <= TILE
    assert face_file.endswith("212_1.png") and source.endswith(".mp4")


def test_a_short_caption_is_left_whole() -> None:
    assert tile_caption("img1.jpg", "img1_0.png") == ["img1.jpg", "img1_0.png"]
