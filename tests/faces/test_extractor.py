"""The library surface: ``facekit.Extractor`` on numpy frames, without Hydra, files or a CLI."""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np
import pytest

import facekit
from conftest import DATA, SCENES, require_data
from facekit.errors import ConfigError
from facekit.plugin.registry import default_registry

VIDEO = DATA / "video" / "faceswap_test.mp4"


@pytest.fixture(scope="module")
def extractor() -> facekit.Extractor:
    return facekit.Extractor(detector="yunet", aligner="facemesh")


def _read(name: str) -> np.ndarray:
    require_data()
    image = cv2.imread(str(SCENES / name))
    assert image is not None, name
    return image


def _video_frames(limit: int, pulled: list[int]) -> Iterator[np.ndarray]:
    """The first ``limit`` frames, read one at a time as asked for; each read is counted."""
    require_data()
    capture = cv2.VideoCapture(str(VIDEO))
    try:
        while len(pulled) < limit and (frame := capture.read()[1]) is not None:
            pulled.append(1)
            yield frame
    finally:
        capture.release()


def _check_face(face, image: np.ndarray, size: int = 256) -> None:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = face.detection.box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert 0.5 < face.detection.score <= 1.0
    assert face.detection.points5 is not None and face.detection.points5.shape == (5, 2)
    assert face.landmarks.shape == (68, 2) and np.isfinite(face.landmarks).all()
    margin_x, margin_y = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
    assert (face.landmarks[:, 0] > x1 - margin_x).all() and (face.landmarks[:, 0] < x2 + margin_x).all()
    assert (face.landmarks[:, 1] > y1 - margin_y).all() and (face.landmarks[:, 1] < y2 + margin_y).all()
    assert face.crop.shape == (size, size, 3) and face.crop.dtype == np.uint8
    assert face.matrix.shape == (2, 3)
    # the matrix maps the face onto the crop upright: eyes in the upper half, mouth in the lower
    in_crop = face.landmarks @ face.matrix[:, :2].T + face.matrix[:, 2]
    assert ((in_crop > 0) & (in_crop < size)).all()
    left_eye, right_eye = in_crop[36:42].mean(axis=0), in_crop[42:48].mean(axis=0)
    mouth = in_crop[48:68].mean(axis=0)
    assert left_eye[0] < right_eye[0]
    assert max(left_eye[1], right_eye[1]) < size / 2 < mouth[1]
    assert abs(left_eye[1] - right_eye[1]) < 0.05 * size  # rotated level


def test_extractor_is_exported_at_the_top_level() -> None:
    from facekit.faces.extractor import Extractor

    assert facekit.Extractor is Extractor
    assert "Extractor" in facekit.__all__


def test_two_people_give_two_faces(extractor: facekit.Extractor) -> None:
    image = _read("two_people.jpg")
    before = image.copy()
    faces = extractor.extract(image)
    assert len(faces) == 2
    for face in faces:
        _check_face(face, image)
    centres = sorted((f.detection.box[0] + f.detection.box[2]) / 2 for f in faces)
    assert centres[0] < image.shape[1] / 2 < centres[1]  # one person on each side
    assert np.array_equal(image, before)  # the caller's frame is not written to


def test_crop_size_is_the_callers_choice() -> None:
    image = _read("obama_small.jpg")
    faces = facekit.Extractor(size=128).extract(image)
    assert len(faces) == 1
    _check_face(faces[0], image, size=128)


def test_detector_options_reach_the_plugin() -> None:
    image = _read("obama_small.jpg")
    strict = facekit.Extractor(detector="yunet", detector_options={"score_threshold": 0.999})
    assert strict.extract(image) == []


def test_facemeshs_mirror_view_changes_the_pose_and_nothing_else(extractor: facekit.Extractor) -> None:
    """Head pose is read from FaceMesh's points averaged with its mirror view's; the points
    written, the crop and every other measure stay the one view's, so no other output and no
    identity decision changes."""
    image = _read("obama2.jpg")  # turned: FaceMesh's two views differ most
    (face,) = extractor.extract(image)
    (one_view,) = facekit.Extractor(detector="yunet", aligner="facemesh",
                                    aligner_options={"mirror_pose": False}).extract(image)
    np.testing.assert_array_equal(face.landmarks, one_view.landmarks)
    np.testing.assert_array_equal(face.crop, one_view.crop)
    assert (face.face_px, face.misalignment, face.sharpness) == (one_view.face_px, one_view.misalignment,
                                                                 one_view.sharpness)
    assert abs(face.pose.pitch - one_view.pose.pitch) > 0.5  # type: ignore[union-attr]


def test_extract_many_is_lazy_and_matches_extract(extractor: facekit.Extractor) -> None:
    pulled: list[int] = []
    results = extractor.extract_many(_video_frames(10, pulled))
    assert len(pulled) == 0  # nothing is read before the first result is asked for
    first = next(results)
    assert len(pulled) == 1
    rest = list(results)
    assert len(pulled) == 10 and len(rest) == 9

    frames = list(_video_frames(10, []))
    for faces, frame in zip([first, *rest], frames, strict=True):
        assert len(faces) == 1  # one talking head
        _check_face(faces[0], frame)
        again = extractor.extract(frame)  # frame by frame or as a stream: the same answer
        np.testing.assert_array_equal(again[0].landmarks, faces[0].landmarks)
        np.testing.assert_array_equal(again[0].crop, faces[0].crop)


def test_a_frame_that_is_not_an_image_is_refused_after_the_good_frames_before_it(extractor: facekit.Extractor) -> None:
    wrong = np.zeros((64, 64, 2), np.uint8)  # two channels: neither grey, BGR nor BGRA
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        extractor.extract(wrong)
    # in a stream the good frames before the bad one still come out
    results = extractor.extract_many([_read("obama_small.jpg"), wrong])
    assert len(next(results)) == 1
    with pytest.raises(ValueError):
        next(results)


@pytest.mark.parametrize("convert", [lambda im: im.astype(np.float32) / 255, lambda im: im.astype(np.float32),
                                     lambda im: im.tolist()], ids=["float-0-1", "float-0-255", "list"])
def test_frames_that_are_not_uint8_arrays_are_refused(extractor: facekit.Extractor, convert) -> None:
    """A float frame in [0, 1] would otherwise find no face at all, silently."""
    with pytest.raises(ValueError, match="uint8"):
        extractor.extract(convert(_read("obama_small.jpg")))


@pytest.mark.parametrize("kind", ["detector", "aligner"])
def test_unknown_plugin_names_the_choices(kind: str) -> None:
    with pytest.raises(ConfigError) as error:
        facekit.Extractor(**{kind: "nosuch"})
    message = str(error.value)
    assert "nosuch" in message and "choose one of" in message
    choices = default_registry().names(kind)
    assert choices and all(name in message for name in choices)


def test_unknown_plugin_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no_such_option"):
        facekit.Extractor(detector="yunet", detector_options={"no_such_option": 1})


@pytest.mark.parametrize(("options", "named"), [({"size": -5}, "size"), ({"size": 0}, "size"), ({"size": "256"}, "size"),
                                                ({"size": 9000}, "size"), ({"mask_size": 0}, "mask_size")])
def test_a_crop_size_the_cli_would_refuse_is_a_value_error_at_construction(options: dict, named: str) -> None:
    with pytest.raises(ValueError, match=f"Extractor's {named} must be a whole number of pixels from 1 to 8192"):
        facekit.Extractor(**options)


def test_an_empty_image_is_refused_like_any_other_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"none of the sides 0; got uint8 \(0, 0, 3\)"):
        facekit.Extractor().extract(np.zeros((0, 0, 3), np.uint8))


@pytest.mark.parametrize(("image", "got"), [([[1, 2]], "got list"), (np.zeros((4, 4, 3), np.float32), "got float32"),
                                            (np.zeros((4, 4, 2), np.uint8), r"got uint8 \(4, 4, 2\)")])
def test_an_image_that_is_not_bgr_pixels_is_refused_saying_what_it_was(image, got: str) -> None:
    with pytest.raises(ValueError, match=got):
        facekit.Extractor().extract(image)


def _boxes(faces) -> list[list[float]]:
    return [np.asarray(face.detection.box, dtype=float).tolist() for face in faces]


def test_a_grey_or_bgra_image_gives_the_faces_of_the_same_photo_in_bgr() -> None:
    photo = cv2.imread(str(require_data() / "images" / "scenes" / "obama.jpg"))
    grey_photo = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    extractor = facekit.Extractor()
    as_grey = extractor.extract(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    as_bgra = extractor.extract(cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    assert _boxes(as_bgra) == _boxes(extractor.extract(photo))
    assert _boxes(as_grey) == _boxes(extractor.extract(grey_photo)) and as_grey


def test_offline_that_is_not_a_bool_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Extractor's offline is True or False, got 'no'"):
        facekit.Extractor(offline="no")


def test_plugin_options_that_are_not_a_mapping_are_a_type_error_naming_the_plugin() -> None:
    with pytest.raises(TypeError, match="aligner facemesh's options are a mapping of option names to values"):
        facekit.Extractor(aligner_options=[1, 2])


def test_identity_options_without_an_identity_plugin_are_refused_and_no_masks_is_none() -> None:
    """identity_options with no identity were dropped without a word; masks=None was a TypeError."""
    with pytest.raises(ValueError, match="identity_options set the options of an identity plugin: name one"):
        facekit.Extractor(identity_options={"num_threads": 1})
    assert facekit.Extractor(masks=None).stages.masks is None
