"""A third-party plugin's answer of the wrong count or shape is an error naming the plugin and
the frame (never points read scrambled, nor frames taken as done without their faces); one box
or vector that is not a face is left out with a warning and the run goes on."""
from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from conftest import DATA, require_data
from facekit.errors import StageError
from facekit.faces.stages import FaceStages
from facekit.models.store import ModelStore
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.registry import default_registry
from facekit.plugin.spec import PluginSpec
from facekit.records import Detection, Frame, FrameRecord


@dataclass
class Options:
    pass


class Answering:
    """A plugin of any kind that gives back what the test sets, whatever it is asked."""

    def __init__(self, answer):
        self.answer = answer

    def detect(self, images):
        return self.answer(images) if callable(self.answer) else self.answer

    def align(self, image, detections):
        return self.answer(detections) if callable(self.answer) else self.answer

    def embed(self, image, landmarks):
        return self.answer(landmarks) if callable(self.answer) else self.answer

    def mask(self, image, requests):
        return self.answer(requests) if callable(self.answer) else self.answer


def third_party(kind: str, answer) -> LoadedPlugin:
    spec = PluginSpec(f"theirs-{kind}", kind, lambda config, store: Answering(answer), Options)
    return LoadedPlugin(spec, Options(), None)


@pytest.fixture(scope="module")
def real():
    registry = default_registry()
    store = ModelStore(registry.models, cache_dir=None)
    return {kind: load_plugin(registry, store, kind, name) for kind, name in
            (("detector", "yunet"), ("aligner", "facemesh"), ("identity", "sface"))}


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    require_data()
    return cv2.imread(str(DATA / "images" / "people" / "p01" / "img1.jpg"))


def records(image: np.ndarray, count: int = 1) -> list[FrameRecord]:
    return [FrameRecord(Frame(name=f"frame_{n}", source="s", index=n, image=image)) for n in range(count)]


def test_a_detector_that_answers_fewer_frames_than_it_was_given_is_named_not_taken_as_faceless(real, portrait):
    stages = FaceStages(third_party("detector", lambda images: [[]]), real["aligner"])
    with pytest.raises(StageError, match=r"detector 'theirs-detector' answered frame frame_0, frame_1, frame_2, "
                                         r"frame_3 with 1 answer\(s\) for 4 frame\(s\)"):
        stages.detect(records(portrait, 4))


@pytest.mark.parametrize("answer", [None, [Detection((1.0, 1.0, 50.0, 50.0), 0.9)], [[(1, 1, 50, 50, 0.9)]]],
                         ids=["none", "flat-list", "tuples"])
def test_a_detector_answer_of_the_wrong_kind_is_named(real, portrait, answer):
    stages = FaceStages(third_party("detector", answer), real["aligner"])
    with pytest.raises(StageError, match=r"^detector 'theirs-detector' answered frame frame_0 with "):
        stages.detect(records(portrait))


def test_boxes_that_are_not_faces_are_left_out_with_a_warning(real, portrait, caplog):
    height, width = portrait.shape[:2]
    good = Detection((10.0, 10.0, 120.0, 140.0), 0.9)
    bad = [Detection((100.0, 100.0, 100.0, 100.0), 0.9), Detection((200.0, 200.0, 100.0, 100.0), 0.9),
           Detection((width + 10.0, 5.0, width + 90.0, 80.0), 0.9), Detection((-90.0, 5.0, -10.0, 80.0), 0.9),
           Detection((10.0, 10.0, float("nan"), 90.0), 0.9), Detection((10.0, 10.0, 90.0, 90.0), float("nan"))]
    record = records(portrait)[0]
    FaceStages(third_party("detector", [[good, *bad]]), real["aligner"]).detect([record])
    assert [face.detection for face in record.faces] == [good]
    assert "frame_0: detector 'theirs-detector' gave 6 box(es) that are empty" in caplog.text


@pytest.mark.parametrize("answer", [
    lambda detections: [np.zeros((2, 68)) + 50 for _ in detections],  # transposed: reshapes without complaint
    lambda detections: [np.zeros((5, 2)) + 50 for _ in detections],
    lambda detections: ["points" for _ in detections],
    lambda detections: [np.zeros((68, 2)) + 50 for _ in detections][:-1],  # one face short
], ids=["transposed", "five-points", "text", "one-short"])
def test_an_aligner_answer_of_the_wrong_shape_or_count_is_named(real, portrait, answer):
    stages = FaceStages(real["detector"], third_party("aligner", answer))
    [record] = records(portrait)
    stages.detect([record])
    assert record.faces
    with pytest.raises(StageError, match=r"^aligner 'theirs-aligner' answered frame frame_0 with "):
        stages.align(record)


@pytest.mark.parametrize("answer", [
    lambda landmarks: np.ones(len(landmarks)),  # one number a face: every face at distance 0 from any reference
    lambda landmarks: np.ones((len(landmarks) - 1, 128)),
    lambda landmarks: None,
], ids=["one-dimensional", "one-short", "none"])
def test_an_identity_answer_of_the_wrong_shape_or_count_is_named(real, portrait, answer):
    stages = FaceStages(real["detector"], real["aligner"], third_party("identity", answer))
    [record] = records(portrait)
    stages.detect([record])
    stages.align(record)
    with pytest.raises(StageError, match=r"^identity 'theirs-identity' answered frame frame_0 with "):
        stages.embed(record)


def test_a_face_whose_embedding_is_not_numbers_is_left_out_with_a_warning(real, portrait, caplog):
    stages = FaceStages(real["detector"], real["aligner"], third_party("identity", lambda landmarks: np.full(
        (len(landmarks), 128), np.nan)))
    [record] = records(portrait)
    stages.detect([record])
    stages.align(record)
    assert record.faces
    stages.embed(record)
    assert record.faces == [] and "frame_0: identity 'theirs-identity' gave face(s) 0 embeddings that are not" in caplog.text


def test_the_built_in_plugins_answers_pass_unchanged(real, portrait):
    stages = FaceStages(real["detector"], real["aligner"], real["identity"])
    [record] = records(portrait)
    stages.analyse([record])
    assert record.faces and all(face.landmarks.shape == (68, 2) and face.embedding.shape == (128,)
                                for face in record.faces)


def test_a_masker_that_answers_fewer_faces_than_it_was_given_is_named(real, portrait):
    """It left faces without their mask and said nothing."""
    from facekit.faces.masks import MaskMaker

    masker = third_party("masker", lambda requests: [np.full((128, 128), 255, np.uint8)])
    stages = FaceStages(real["detector"], real["aligner"], masks=MaskMaker([masker]))
    [record] = records(portrait)
    stages.analyse([record])
    record.faces = record.faces * 2  # two faces asked for, one mask answered
    with pytest.raises(StageError, match=r"^masker 'theirs-masker' failed on frame frame_0: ValueError: 1 mask\(s\) "
                                         r"for 2 face\(s\)"):
        stages.finish(record)


class PoseAnswering(Answering):
    """An aligner with points of its own for head pose (a ``PoseAligner``), and an outline."""

    def align_for_pose(self, image, detections, outline=False):
        return self.answer(detections) if callable(self.answer) else self.answer


def pose_aligner(answer) -> LoadedPlugin:
    spec = PluginSpec("theirs-pose", "aligner", lambda config, store: PoseAnswering(answer), Options)
    return LoadedPlugin(spec, Options(), None)


GOOD_POINTS = np.array([[50.0 + 3 * (i % 17), 60.0 + 4 * (i // 17)] for i in range(68)])


@pytest.mark.parametrize("answer, said", [
    (lambda detections: [(GOOD_POINTS, GOOD_POINTS.T) for _ in detections], "pose points of shape (2, 68)"),
    (lambda detections: [(GOOD_POINTS, GOOD_POINTS[:60]) for _ in detections], "pose points of shape (60, 2)"),
    (lambda detections: [(GOOD_POINTS, GOOD_POINTS, GOOD_POINTS.ravel()) for _ in detections],
     "an outline of shape (136,)"),
], ids=["pose-transposed", "pose-short", "outline-flat"])
def test_an_aligner_s_pose_points_and_outline_are_checked_as_its_points_are(real, portrait, answer, said):
    """Transposed pose points were taken (pitch 106 degrees for a 16-degree face); short ones
    were 'stage failed: ValueError' naming no plugin; a flat outline was blamed on the mesh masker."""
    stages = FaceStages(real["detector"], pose_aligner(answer))
    [record] = records(portrait)
    stages.detect([record])
    with pytest.raises(StageError, match=rf"^aligner 'theirs-pose' answered frame frame_0 with {re.escape(said)}"):
        stages.align(record)


def test_embeddings_of_another_length_than_the_earlier_ones_are_named(real, portrait):
    """Two lengths cannot be compared: 'embeddings of different sizes: 32 and 64' named no plugin."""
    lengths = iter([64, 32])
    stages = FaceStages(real["detector"], real["aligner"], third_party(
        "identity", lambda landmarks: np.ones((len(landmarks), next(lengths)))))
    first, second = records(portrait, 2)
    stages.analyse([first])
    with pytest.raises(StageError, match=r"answered frame frame_1 with 32-dimension embeddings where its earlier "
                                         r"ones had 64"):
        stages.analyse([second])


def test_an_embedding_too_large_for_float32_is_left_out_as_not_numbers(real, portrait, caplog):
    """1e300 passed the check as float64 and was stored as inf (Infinity in alignments.json)."""
    stages = FaceStages(real["detector"], real["aligner"], third_party(
        "identity", lambda landmarks: np.full((len(landmarks), 8), 1e300)))
    [record] = records(portrait)
    stages.analyse([record])
    assert record.faces == [] and "embeddings that are not numbers" in caplog.text


def test_a_reference_photo_whose_embedding_is_not_numbers_is_one_line_naming_it(real, portrait):
    """It was an IndexError traceback."""
    from facekit.faces.reference_photos import reference_embedding

    stages = FaceStages(real["detector"], real["aligner"], third_party(
        "identity", lambda landmarks: np.full((len(landmarks), 8), np.nan)))
    with pytest.raises(StageError, match=r"^reference photo 'ref\.jpg': its face was left out"):
        reference_embedding(portrait, stages, "ref.jpg")


def test_a_float_mask_with_a_pixel_that_is_not_a_number_is_scaled_as_the_rest():
    """One NaN made the mask's max NaN, so a [0, 1] mask was stored unscaled: 0 and 1 of 255."""
    from facekit.faces.masks import checked_mask

    mask = np.zeros((4, 4))
    mask[1:3, 1:3], mask[0, 0] = 1.0, np.nan
    stored = checked_mask(mask, 4, "theirs")
    assert stored[1, 1] == 255 and stored[0, 0] == 0 and stored.dtype == np.uint8


def test_a_face_file_whose_embedding_is_not_numbers_stays_out_of_curation_s_clusters(real, caplog):
    """Since embeddings that are not numbers are left out, curation's embed_crop read the face it
    had just lost: an IndexError."""
    from facekit.curate.embeddings import embed_crop
    from facekit.curate.inventory import FaceEntry
    from facekit.imaging.geometry import MEAN_FACE_68

    stages = FaceStages(real["detector"], real["aligner"], third_party(
        "identity", lambda landmarks: np.full((len(landmarks), 4), np.inf)))
    face = FaceEntry("a.png", ("s", "f", 0), 0, MEAN_FACE_68 * 100 + 50, None, None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.15)
    assert embed_crop(stages, np.zeros((256, 256, 3), np.uint8), face) is None
    assert "embeddings that are not numbers" in caplog.text
