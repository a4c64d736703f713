"""Messy input: bad files are warned about and skipped, odd formats decode, the run goes on."""
from __future__ import annotations

import os
import re
import resource
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cli_helpers import file_hashes, load_json, peak_rss_mb, run_facekit
from conftest import DATA, SCENES, require_data
from facekit.media.sources import frame_names


def _rgb(image: np.ndarray) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of good photos in awkward formats next to broken files."""
    require_data()
    folder = tmp_path_factory.mktemp("messy")
    portrait = cv2.imread(str(SCENES / "obama.jpg"))
    shutil.copy(SCENES / "obama.jpg", folder / "plain.jpg")
    encoded = (SCENES / "obama.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(encoded[: len(encoded) // 2])
    damaged = bytearray(encoded)
    damaged[len(encoded) // 2:len(encoded) // 2 + 2000:50] = b"\xd0" * 40  # decodes, and libjpeg says so
    (folder / "damaged.jpg").write_bytes(damaged)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not a picture\n")
    (folder / "folder.png").mkdir()
    (folder / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))  # OpenCV raised on it, ending the run
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "rgba.png"), cv2.cvtColor(portrait, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "deep16.png"), portrait.astype(np.uint16) * 257)
    _rgb(portrait).convert("CMYK").save(folder / "cmyk.jpg", "JPEG")
    _rgb(portrait).save(folder / "palette.gif")  # 256 colours, as GIFs hold them
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter left: a viewer turns it right
    _rgb(portrait).transpose(Image.Transpose.ROTATE_90).save(folder / "exif.jpg", "JPEG", exif=exif.tobytes())
    shutil.copy(SCENES / "obama.jpg", folder / "spaced ünïcode name.jpg")
    # a Latin-1 name, as old archives hold them: not UTF-8, so Python sees a lone surrogate
    shutil.copy(SCENES / "obama.jpg", os.fsencode(folder) + b"/latin-1 caf\xe9.jpg")
    (folder / "profile.png").write_bytes(_with_bad_color_profile(cv2.imencode(".png", portrait)[1].tobytes()))
    return folder


def _png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header claims ``width`` x ``height`` RGB pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000)))
            + chunk(b"IEND", b""))


def _with_bad_color_profile(png: bytes) -> bytes:
    """``png`` with an iCCP chunk libpng complains about on stderr ("iCCP: too short")."""
    import struct
    import zlib

    body = b"ICC Profile\0\0" + zlib.compress(b"x" * 200)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    after_header = 8 + 25  # the signature, then IHDR (13 bytes of body, 12 of framing)
    return png[:after_header] + chunk + png[after_header:]


@pytest.fixture(scope="module")
def messy_run(messy: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("messy_out") / "faces"
    result = run_facekit(f"input={messy}", f"output={out}", "runner.progress=false", cwd=messy)
    return result, load_json(out / "alignments.json") if result.returncode == 0 else None


def test_bad_files_are_warned_about_and_counted(messy_run) -> None:
    result, alignments = messy_run
    assert result.returncode == 0, result.stderr
    log = " ".join(result.stderr.split())
    for name in ("truncated.jpg", "empty.jpg", "text.jpg", "folder.png", "bomb.png"):
        assert name in log, f"no warning names {name}"
    assert "5 skipped" in log
    assert "bomb.png: more pixels than OpenCV decodes" in log
    assert {"truncated", "empty", "text", "folder", "bomb"}.isdisjoint(alignments["frames"])
    # libjpeg's own line about a damaged file comes inside a warning naming the file, once
    assert re.search(r"damaged\.jpg: decoded despite damage, .*\(Corrupt JPEG data: ", log), log
    assert log.count("Corrupt JPEG data") == 1


@pytest.mark.slow
def test_worker_processes_decode_the_files_and_skip_the_bad_ones_alike(messy: Path, messy_run,
                                                                         tmp_path: Path) -> None:
    """With worker processes each worker decodes its own files: the same warnings, count and
    faces as the run on threads, and libjpeg's own line about a damaged file comes inside a
    warning that names the file."""
    _, on_threads = messy_run
    out = tmp_path / "faces"
    result = run_facekit(f"input={messy}", f"output={out}", "runner.progress=false", "runner.workers=2", cwd=messy)
    assert result.returncode == 0, result.stderr
    log = " ".join(result.stderr.split())
    assert "in 2 worker processes" in log and "5 skipped" in log and "bomb.png: more pixels than" in log
    for name in ("truncated.jpg", "empty.jpg", "text.jpg", "folder.png", "bomb.png"):
        assert name in log, f"no warning names {name}"
    assert load_json(out / "alignments.json")["frames"] == on_threads["frames"]
    assert re.search(r"damaged\.jpg: decoded despite damage, .*\(Corrupt JPEG data: ", log), log
    assert log.count("Corrupt JPEG data") == 1  # not printed bare as well


@pytest.mark.parametrize("frame", ["plain", "gray", "rgba", "deep16", "cmyk", "exif", "spaced ünïcode name",
                                   "profile", "latin-1 caf%E9", "palette"])
def test_awkward_formats_decode_and_find_the_face(messy_run, frame: str) -> None:
    _, alignments = messy_run
    assert len(alignments["frames"][frame]["faces"]) == 1


def test_decoder_libraries_do_not_print_their_own_lines(messy_run) -> None:
    """libpng prints a line for each colour profile it dislikes; facekit's warnings stay readable."""
    result, _ = messy_run
    assert "libpng" not in result.stderr


def test_color_profiles_are_dropped_without_changing_pixels(messy: Path) -> None:
    from facekit.media.sources import read_image

    with_profile = read_image(messy / "profile.png")
    assert with_profile is not None
    assert np.array_equal(with_profile, cv2.imread(str(SCENES / "obama.jpg")))


def test_exif_rotation_is_applied_before_detection(messy_run) -> None:
    """Landmarks come in the coordinates of the image as a viewer shows it."""
    _, alignments = messy_run
    rotated, plain = (alignments["frames"][n] for n in ("exif", "plain"))
    assert (rotated["width"], rotated["height"]) == (plain["width"], plain["height"])
    offset = np.abs(np.array(rotated["faces"][0]["landmarks"]) - np.array(plain["faces"][0]["landmarks"]))
    assert offset.mean() < 3.0  # same face, same place (JPEG re-encoding moves points a little)


@pytest.mark.slow
def test_huge_image_is_found_in_bounded_memory(tmp_path: Path) -> None:
    """An 8000x8000 photo: the face is found, and the run needs the decoded frame (192 MB) plus
    little more, because the detector works on a copy shrunk to its own input size."""
    require_data()
    portrait = cv2.imread(str(SCENES / "obama.jpg"))
    canvas = cv2.resize(portrait, (8000, 8000), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(tmp_path / "huge.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])
    frame_mb = canvas.nbytes / 2**20
    del canvas
    small_mb = peak_rss_mb(f"input={SCENES / 'obama.jpg'}", f"output={tmp_path / 'small'}", "runner.progress=false",
                           cwd=tmp_path)
    huge_mb = peak_rss_mb(f"input={tmp_path / 'huge.jpg'}", f"output={tmp_path / 'out'}", "runner.progress=false",
                          cwd=tmp_path)
    assert len(load_json(tmp_path / "out" / "alignments.json")["frames"]["huge"]["faces"]) == 1
    assert huge_mb - small_mb < 1.5 * frame_mb, f"peak {huge_mb:.0f} MB against {small_mb:.0f} MB for a small photo"


def _atoms(data: bytes | bytearray, start: int, end: int):
    """(type, offset, header size, size) of each MP4 atom between ``start`` and ``end``."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:  # a 64-bit size follows the type
            (size,), header = struct.unpack_from(">Q", data, offset + 8), 16
        elif size == 0:  # to the end of the file
            size = end - offset
        yield kind, offset, header, size
        offset += size


def _with_index_in_front(data: bytes) -> bytes:
    """An MP4 whose index (moov) follows its media data (mdat), as cameras and OpenCV write it,
    rewritten with the index first (what ``qt-faststart`` and ``ffmpeg -movflags +faststart``
    do): every chunk offset in the index (stco/co64) moves on by the index's size. Cut short,
    such a file still opens and its frames before the cut decode; with the index at the end a
    cut loses the index and nothing opens."""
    top = {kind: (offset, size) for kind, offset, _, size in _atoms(data, 0, len(data))}
    (moov_at, moov_size), (mdat_at, _) = top[b"moov"], top[b"mdat"]
    assert mdat_at < moov_at, "the index is already in front"
    moov = bytearray(data[moov_at:moov_at + moov_size])

    def shift(start: int, end: int) -> None:
        for kind, offset, header, size in _atoms(moov, start, end):
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
                shift(offset + header, offset + size)
            elif kind in (b"stco", b"co64"):
                form, width = (">I", 4) if kind == b"stco" else (">Q", 8)
                (entries,) = struct.unpack_from(">I", moov, offset + header + 4)  # after version and flags
                for at in range(offset + header + 8, offset + header + 8 + entries * width, width):
                    struct.pack_into(form, moov, at, struct.unpack_from(form, moov, at)[0] + moov_size)

    shift(0, moov_size)
    return data[:mdat_at] + bytes(moov) + data[mdat_at:moov_at] + data[moov_at + moov_size:]


@pytest.mark.slow
def test_truncated_video_keeps_the_frames_before_the_damage(tmp_path: Path) -> None:
    """A video cut short (a copy that stopped, a download that broke) whose index is in front:
    it opens with its full frame count, the frames before the cut are read and kept, numbered as
    in the whole file, and the run ends normally with a warning that the file is truncated, not
    that a damaged stretch was passed over (no frame in between was lost)."""
    require_data()
    whole = _with_index_in_front((DATA / "video" / "faceswap_test.mp4").read_bytes())
    (tmp_path / "whole.mp4").write_bytes(whole)
    clip = tmp_path / "cut.mp4"
    clip.write_bytes(whole[: int(len(whole) * 0.6)])
    capture = cv2.VideoCapture(str(clip))
    assert capture.isOpened() and capture.get(cv2.CAP_PROP_FRAME_COUNT) == 91  # the index survived the cut
    capture.release()
    before_cut = _frames_before_first_failure(clip)
    assert 20 < before_cut < 91

    runs = {}
    for name in ("whole", "cut"):
        result = run_facekit(f"input={tmp_path / f'{name}.mp4'}", f"output={tmp_path / name}", "runner.progress=false",
                             cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        # rich wraps lines, anywhere in a long path: the log is compared without white space
        runs[name] = ("".join(result.stderr.split()), load_json(tmp_path / name / "alignments.json")["frames"])
    log, frames = runs["cut"]
    whole_log, whole_frames = runs["whole"]
    assert len(whole_frames) == 91 and "istruncated" not in whole_log  # the rewritten index is sound
    kept = len(frames)
    assert before_cut <= kept < 91
    assert list(frames) == [f"cut_{n:06d}" for n in range(1, kept + 1)]
    for number in range(1, kept + 1):  # the same frames as in the whole file, and their faces kept
        cut_faces, whole_faces = frames[f"cut_{number:06d}"]["faces"], whole_frames[f"whole_{number:06d}"]["faces"]
        assert cut_faces and [f["landmarks"] for f in cut_faces] == [f["landmarks"] for f in whole_faces], number
        assert all((tmp_path / "cut" / face["crop"]).is_file() for face in cut_faces)
    assert f"cut.mp4endedafter{kept}of91frames:thefileistruncatedordamaged" in log, log
    assert "damagedstretch" not in log
    assert load_json(tmp_path / "cut" / "alignments.json")["meta"]["video_ended_at"] == kept

    # the same command again: every frame the file holds is done, so nothing is read for nothing
    before = file_hashes(tmp_path / "cut", "*.png", "*.json")
    again = run_facekit(f"input={clip}", f"output={tmp_path / 'cut'}", "runner.progress=false", cwd=tmp_path)
    assert again.returncode == 0 and f"nothing to do: {kept} frames already done" in again.stderr, again.stderr
    assert file_hashes(tmp_path / "cut", "*.png", "*.json") == before  # run_summary.json kept as the run left it


def _damaged_copy(tmp_path: Path) -> Path:
    """The 91-frame test clip with 20 KB in its middle zeroed: the frames on either side decode."""
    require_data()
    data = bytearray((DATA / "video" / "faceswap_test.mp4").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20_000] = bytes(20_000)
    clip = tmp_path / "damaged.mp4"
    clip.write_bytes(bytes(data))
    return clip


def _frames_before_first_failure(clip: Path) -> int:
    capture = cv2.VideoCapture(str(clip))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.mark.parametrize("mode", ["parallel", "serial"])  # serial reads the video once per pass
def test_damage_in_the_middle_of_a_video_does_not_end_the_run(tmp_path: Path, mode: str) -> None:
    clip = _damaged_copy(tmp_path)
    before_damage = _frames_before_first_failure(clip)
    assert 0 < before_damage < 91  # the damage does stop a plain read loop
    result = run_facekit(f"input={clip}", f"output={tmp_path / 'out'}", "runner.progress=false",
                         f"runner.mode={mode}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frames = load_json(tmp_path / "out" / "alignments.json")["frames"]
    assert before_damage + 20 < len(frames) < 91  # the frames after the damage, not the damaged ones
    assert "".join(result.stderr.split()).count("damaged.mp4:1damagedstretch(es)passedover") == 1  # rich wraps lines
    assert "[h264" not in result.stderr  # FFmpeg's own lines (dozens a packet) stay quiet


def test_resuming_a_damaged_video_numbers_its_frames_the_same(tmp_path: Path) -> None:
    from facekit.media.sources import open_input

    clip = _damaged_copy(tmp_path)
    source = open_input(clip)
    names = [frame.name for frame in source.frames()]
    assert len(names) > _frames_before_first_failure(clip) + 20
    done = frozenset(names[: len(names) // 3] + names[-5:])
    assert [frame.name for frame in source.frames(skip=done)] == [n for n in names if n not in done]


def _mjpeg_avi_with_blank_frames(path: Path, frames: int = 10) -> None:
    """An MJPG AVI of ``frames`` frames, then every frame's JPEG data overwritten with zeros in
    place: the RIFF headers, chunk sizes and the idx1 index are untouched, so the file opens
    and gives its frame count, but no frame decodes."""
    size = (96, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, size)
    gradient = np.linspace(0, 255, size[0] * size[1] * 3).astype(np.uint8).reshape(size[1], size[0], 3)
    for index in range(frames):
        writer.write(np.roll(gradient, index * 7, axis=1))
    writer.release()
    data = bytearray(path.read_bytes())
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI "
    blanked, offset = 0, 12
    while offset + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, offset)
        if kind == b"LIST" and data[offset + 8:offset + 12] == b"movi":
            inner = offset + 12
            while inner + 8 <= offset + 8 + length:
                chunk, chunk_length = struct.unpack_from("<4sI", data, inner)
                if chunk[2:] in (b"dc", b"db"):  # a video frame's data
                    data[inner + 8:inner + 8 + chunk_length] = bytes(chunk_length)
                    blanked += 1
                inner += 8 + chunk_length + (chunk_length & 1)  # chunks are padded to even sizes
        offset += 8 + length + (length & 1)
    assert blanked == frames
    path.write_bytes(bytes(data))


def test_video_that_opens_but_decodes_no_frame_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """A video that opens and gives a frame count, none of whose frames decode: one warning
    names it, the summary counts it skipped, and no faces are written."""
    clip = tmp_path / "blank.avi"
    _mjpeg_avi_with_blank_frames(clip)
    capture = cv2.VideoCapture(str(clip))
    assert capture.isOpened() and capture.get(cv2.CAP_PROP_FRAME_COUNT) == 10
    assert not capture.read()[0]
    capture.release()
    out = tmp_path / "out"
    result = run_facekit(f"input={clip}", f"output={out}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    log = "".join(result.stderr.split())  # rich wraps lines, anywhere in a long path
    assert log.count("blank.avi:thevideoholdsnodecodableframe") == 1, result.stderr
    summary = load_json(out / "run_summary.json")
    assert (summary["frames"], summary["faces"], summary["skipped"]) == (0, 0, 1)
    assert load_json(out / "alignments.json")["frames"] == {}
    assert not list(out.glob("*.png"))


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_a_video_and_a_photo_whose_names_are_not_utf8_are_read_alone_and_in_a_collection_and_re_cropped(
        tmp_path: Path) -> None:
    """A Latin-1 name (a byte that is not UTF-8) reaches Python with a surrogate, which OpenCV's
    video reader took down with a segmentation fault and the alignments and collection files
    could not hold. The files are read by their own names; what facekit writes names them with
    %XX, its output folders included."""
    require_data()
    tree = tmp_path / "tree"
    tree.mkdir()
    video, photo = os.fsencode(tree) + b"/v\xe9.mp4", os.fsencode(tree) + b"/caf\xe9.jpg"
    shutil.copy(DATA / "video" / "faceswap_test.mp4", video)
    shutil.copy(SCENES / "obama.jpg", photo)
    for name, source in (("video", video), ("photo", photo), ("collection", os.fsencode(tree))):
        result = run_facekit(f"input={os.fsdecode(source)}", f"output={tmp_path / name}", "runner.progress=false",
                             "sample.every_n=10", cwd=tmp_path)
        assert result.returncode == 0 and "Logging error" not in result.stderr, (name, result.stderr[-2000:])
    assert len(load_json(tmp_path / "video" / "alignments.json")["frames"]) == 10
    assert list(load_json(tmp_path / "photo" / "alignments.json")["frames"]) == ["caf%E9"]
    states = {e["source"]: (e["output"], e["state"])
              for e in load_json(tmp_path / "collection" / "collection.json")["sources"]}
    assert states == {".": (".", "done"), "v%E9.mp4": ("v%E9", "done")}
    assert len(load_json(tmp_path / "collection" / "v%E9" / "alignments.json")["frames"]) == 10
    for name in ("video", "collection"):
        again = run_facekit("task=recrop", f"input={tmp_path / name}", f"output={tmp_path / (name + '-128')}",
                            "output.size=128", cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]


def test_video_that_does_not_open_is_a_one_line_error(tmp_path: Path) -> None:
    """An MP4 that OpenCV's writer closed with no frame holds no index at all: nothing opens."""
    clip = tmp_path / "none.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    writer.release()
    assert not cv2.VideoCapture(str(clip)).isOpened()
    result = run_facekit(f"input={clip}", f"output={tmp_path / 'out'}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "none.mp4'cannotbeopenedasavideo" in "".join(result.stderr.split()), result.stderr


def test_every_file_gets_its_own_frame_name() -> None:
    files = [Path(name) for name in sorted(["a.jpg", "a.png", "a_jpg.bmp", "a.JPG", "b.jpg", "A.jpg"])]
    names = frame_names(files)
    assert names == ["A", "a_jpg", "a_jpg_2", "a_png", "a_jpg_3", "b"]  # A.jpg, a.JPG, a.jpg, a.png, a_jpg.bmp, b.jpg
    assert len(set(frame_names([Path(f"{i % 7}.{'jpg' if i < 7 else 'png'}") for i in range(14)]))) == 14


def test_files_whose_names_meet_keep_their_own_faces(tmp_path: Path) -> None:
    """a.jpg and a.png become a_jpg and a_png, which a_jpg.png would have met: three frames,
    three face files, none written over."""
    require_data()
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "a.png", "a_jpg.png"):
        cv2.imwrite(str(folder / name), cv2.imread(str(SCENES / "obama.jpg")))
    out = tmp_path / "faces"
    result = run_facekit(f"input={folder}", f"output={out}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(load_json(out / "alignments.json")["frames"]) == ["a_jpg", "a_jpg_2", "a_png"]
    assert len(list(out.glob("*.png"))) == 3


def test_files_a_folder_run_does_not_read_are_named_by_suffix(tmp_path: Path, caplog) -> None:
    """Camera RAW files, videos, subfolders (one per person, say): a folder run reads the images
    directly in it, and says what it left."""
    from facekit.errors import FacekitError
    from facekit.media.sources import open_input

    for name in ("a.cr2", "b.CR2", "clip.mp4", ".hidden", "notes"):
        (tmp_path / name).write_bytes(b"")
    for name in ("p01", "p02.v2", ".cache"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "face.jpg").write_bytes(b"")
    with pytest.raises(FacekitError,
                       match=r"holds no images .*; it holds 2 \.cr2, 1 \.mp4, 1 \(no suffix\), 2 subfolders$"):
        open_input(tmp_path)
    (tmp_path / "photo.jpg").write_bytes(b"")
    with caplog.at_level("INFO", logger="facekit.media.sources"):
        assert open_input(tmp_path, exclude=tmp_path / "p02.v2").files == [tmp_path / "photo.jpg"]
    assert ("not read (not images by their suffix, or subfolders, which a folder run does not enter): "
            "2 .cr2, 1 .mp4, 1 (no suffix), 1 subfolder") in caplog.text


def test_paths_with_image_names_that_are_not_files_are_skipped_unopened(tmp_path: Path) -> None:
    """A FIFO named like a photo would block the run forever if opened; a broken link and a
    folder are named for what they are."""
    from facekit.media.sources import open_input

    (tmp_path / "photo.jpg").write_bytes(b"")
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "gone.png").symlink_to(tmp_path / "deleted.png")
    (tmp_path / "album.jpg").mkdir()
    source = open_input(tmp_path)
    assert source.files == [tmp_path / "photo.jpg"]
    assert list(source.skipped.items()) == [
        (str(tmp_path / "album.jpg"), "a folder, not an image"),
        (str(tmp_path / "gone.png"), f"a broken link (to {str(tmp_path / 'deleted.png')!r})"),
        (str(tmp_path / "pipe.jpg"), "not a regular file (a pipe, socket or device)")]


def test_unwritable_output_fails_before_any_work(tmp_path: Path) -> None:
    require_data()
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_facekit(f"input={SCENES / 'obama.jpg'}", f"output={blocker / 'faces'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot be written" in result.stderr and "Traceback" not in result.stderr
    result = run_facekit(f"input={SCENES / 'obama.jpg'}", f"output={blocker}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"facekit: error: output {str(blocker)!r} is a file; give a folder for the faces"


@pytest.mark.slow
def test_an_output_that_fills_up_mid_run_ends_in_one_line_and_resumes(tmp_path: Path) -> None:
    """A disk that fills up: a file-size limit (RLIMIT_FSIZE, inherited by the run) makes
    writes past 24 KB fail as a full disk would, once the alignments journal grows past it
    about halfway through the scenes. The run ends in one line, and with room again the same
    command resumes and ends as a run that never failed."""
    require_data()
    args = [f"input={SCENES}", "output.size=64", "runner.progress=false", "cache.enabled=false"]
    whole = run_facekit(*args, f"output={tmp_path / 'whole'}", cwd=tmp_path)  # also makes the derived models
    assert whole.returncode == 0, whole.stderr

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (24_000, 24_000))

    full = run_facekit(*args, f"output={tmp_path / 'out'}", cwd=tmp_path, preexec=small_files)
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr
    assert full.stderr.strip().splitlines()[-1].startswith("facekit: error: cannot write")
    resumed = run_facekit(*args, f"output={tmp_path / 'out'}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    done = int(re.search(r"resuming: (\d+) frame", " ".join(resumed.stderr.split())).group(1))
    assert 0 < done < 15
    frames = [load_json(tmp_path / run / "alignments.json")["frames"] for run in ("out", "whole")]
    assert frames[0] == frames[1]
    assert file_hashes(tmp_path / "out", "*.png") == file_hashes(tmp_path / "whole", "*.png")
    umask = os.umask(0)
    os.umask(umask)
    assert all((png.stat().st_mode & 0o777) == 0o666 & ~umask for png in (tmp_path / "out").glob("*.png")), \
        "face crops should get the umask's mode (readable by others), not mkstemp's 0600"


def test_output_inside_the_input_folder_is_not_read_back(tmp_path: Path) -> None:
    require_data()
    shutil.copy(SCENES / "obama.jpg", tmp_path / "obama.jpg")
    for _ in range(2):  # the second run would see the first run's faces if they were read back
        result = run_facekit(f"input={tmp_path}", f"output={tmp_path / 'faces'}", "runner.progress=false",
                             cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert list(load_json(tmp_path / "faces" / "alignments.json")["frames"]) == ["obama"]


def test_output_equal_to_the_input_folder_is_refused(tmp_path: Path) -> None:
    require_data()
    shutil.copy(SCENES / "obama.jpg", tmp_path / "obama.jpg")
    result = run_facekit(f"input={tmp_path}", f"output={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2 and "is the input folder" in result.stderr


@pytest.mark.parametrize("in_collection", [False, True])
def test_hidden_files_of_a_folder_are_not_read(tmp_path: Path, in_collection: bool) -> None:
    """A folder copied by a Mac to a USB disk holds ``._IMG_1.jpg`` beside ``IMG_1.jpg``, which
    was read and skipped as not an image, a warning a photo; a hidden photo was read and its face
    written as a hidden file. Hidden entries are left out, as a collection's walk leaves them."""
    require_data()
    from facekit.media.sources import open_input

    photo = (SCENES / "obama.jpg").read_bytes()
    (tmp_path / "IMG_1.jpg").write_bytes(photo)
    (tmp_path / "._IMG_1.jpg").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    (tmp_path / ".thumb.jpg").write_bytes(photo)
    source = open_input(tmp_path, in_collection=in_collection)
    assert [frame.name for frame in source.frames()] == ["IMG_1"] and not source.skipped


@pytest.mark.slow  # three runs: the README's fast tier keeps within its 8 minutes
def test_a_damaged_photo_read_on_its_own_is_named_in_the_decoders_warning(tmp_path: Path) -> None:
    """A photo given alone, and a reference photo, were decoded once with fd 2 left open: libjpeg's
    own "Corrupt JPEG data: ..." line reached the terminal naming no file (a reference photo's
    with no facekit line at all), and again on every rerun."""
    require_data()
    data = bytearray((DATA / "images" / "people" / "p01" / "img11.jpg").read_bytes())
    at = int(len(data) * 0.6)
    data[at:at + 200] = b"\x55" * 200
    (tmp_path / "garbled.jpg").write_bytes(bytes(data))
    runs = [("input=garbled.jpg", "output=alone"), ("input=garbled.jpg", "output=alone"),  # and its rerun
            (f"input={SCENES / 'obama.jpg'}", "output=filtered", "filter.refs=[garbled.jpg]")]
    for args in runs:
        result = run_facekit(*args, "runner.progress=false", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        raw = [line for line in result.stderr.splitlines() if line.startswith("Corrupt JPEG data")]
        assert raw == [], result.stderr
    assert "reference photo garbled.jpg: decoded despite damage, some pixels may be wrong (Corrupt JPEG data" \
        in " ".join(result.stderr.split())
