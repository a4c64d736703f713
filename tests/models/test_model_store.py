"""The model store against a real loopback HTTP server: resume, retry, checksums, locks, offline."""
from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from facekit.errors import ModelError
from facekit.models.checksum import read_sidecar
from facekit.models.download import RetryPolicy, download
from facekit.models.spec import ModelFile, ModelSpec
from facekit.models.store import ModelStore, default_cache_dir
from loopback_server import Served, serving

FAST = RetryPolicy(attempts=3, backoff=0.001, max_delay=0.01, timeout=5.0)
DATA = os.urandom(200_000)
SHA = hashlib.sha256(DATA).hexdigest()
NAME = "weights.bin"


@pytest.fixture
def served() -> Iterator[Served]:
    with serving({f"/{NAME}": DATA}) as server:
        yield server


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEKIT_OFFLINE", raising=False)


def spec_for(url: str | None, sha256: str | None = SHA, size: int | None = len(DATA),
             **kwargs: str) -> dict[str, ModelSpec]:
    return {"m": ModelSpec(id="m", files=(ModelFile(NAME, sha256, size, url),), **kwargs)}


def store_for(specs: dict[str, ModelSpec], **kwargs: object) -> ModelStore:
    return ModelStore(specs, quiet=True, retry=FAST, **kwargs)  # type: ignore[arg-type]


def leftovers(folder: Path) -> list[str]:
    """Files in a cache folder, less the empty lock files that stay by design."""
    return sorted(n for n in os.listdir(folder) if not n.endswith(".lock")) if folder.exists() else []


# -- downloads -----------------------------------------------------------------------------------

def test_download_verifies_and_lands_in_the_cache(served: Served, isolated_cache: Path) -> None:
    store = store_for(spec_for(served.url(f"/{NAME}")))
    assert store.state("m") == "downloadable"
    path = store.path("m")
    assert path == isolated_cache / "models" / "m" / NAME
    assert path.read_bytes() == DATA
    assert leftovers(path.parent) == [NAME]
    assert store.state("m") == "present"


def test_resume_after_the_server_hangs_up_mid_file(served: Served) -> None:
    served.cut_after = 70_000
    path = store_for(spec_for(served.url(f"/{NAME}"))).path("m")
    assert [r[1] for r in served.requests] == [None, "bytes=70000-"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA


def test_server_that_ignores_range_restarts_cleanly(served: Served) -> None:
    served.cut_after, served.ignore_range = 70_000, True
    path = store_for(spec_for(served.url(f"/{NAME}"))).path("m")
    assert [r[1] for r in served.requests] == [None, "bytes=70000-"]  # asked to resume, got 200
    assert path.read_bytes() == DATA  # rewritten from byte 0, not appended


def test_partial_file_from_an_earlier_run_is_resumed(served: Served) -> None:
    store = store_for(spec_for(served.url(f"/{NAME}")))
    store.folder("m").mkdir(parents=True)
    (store.folder("m") / f"{NAME}.part").write_bytes(DATA[:123_456])
    assert store.path("m").read_bytes() == DATA
    assert served.requests == [(f"/{NAME}", "bytes=123456-")]


def test_partial_file_longer_than_the_file_is_discarded(served: Served) -> None:
    store = store_for(spec_for(served.url(f"/{NAME}")))
    store.folder("m").mkdir(parents=True)
    (store.folder("m") / f"{NAME}.part").write_bytes(DATA + b"junk")
    assert store.path("m").read_bytes() == DATA
    assert served.requests == [(f"/{NAME}", None)]


def test_retries_server_errors_with_backoff(served: Served) -> None:
    served.fail_first = 2
    assert store_for(spec_for(served.url(f"/{NAME}"))).path("m").read_bytes() == DATA
    assert len(served.requests) == 3


def test_gives_up_after_the_retry_budget(served: Served) -> None:
    served.fail_first = 99
    store = store_for(spec_for(served.url(f"/{NAME}")))
    with pytest.raises(ModelError, match=r"HTTP 503 .*after 3 tries") as error:
        store.path("m")
    assert served.url(f"/{NAME}") in str(error.value) and str(store.folder("m")) in str(error.value)
    assert len(served.requests) == FAST.attempts


def test_corrupt_download_is_a_checksum_error_and_leaves_nothing(served: Served) -> None:
    served.files[f"/{NAME}"] = bytes([DATA[0] ^ 0xFF]) + DATA[1:]
    store = store_for(spec_for(served.url(f"/{NAME}")))
    with pytest.raises(ModelError, match="checksum") as error:
        store.path("m")
    assert served.url(f"/{NAME}") in str(error.value)
    assert leftovers(store.folder("m")) == []


def test_404_names_the_url_and_the_folder_and_is_not_retried(served: Served) -> None:
    url = served.url("/nowhere/weights.bin")
    store = store_for(spec_for(url))
    with pytest.raises(ModelError, match="HTTP 404") as error:
        store.path("m")
    message = str(error.value)
    assert url in message and str(store.folder("m")) in message and "\n" not in message
    assert len(served.requests) == 1
    assert leftovers(store.folder("m")) == []


def test_cache_hit_makes_no_request(served: Served) -> None:
    specs = spec_for(served.url(f"/{NAME}"))
    first = store_for(specs).ensure("m")
    assert store_for(specs).ensure("m") == first == {NAME: first[NAME]}
    assert len(served.requests) == 1


def test_unknown_checksum_is_recorded_on_first_download_and_checked_after(served: Served) -> None:
    specs = spec_for(served.url(f"/{NAME}"), sha256=None, size=None)
    path = store_for(specs).path("m")
    assert read_sidecar(path) == SHA
    path.write_bytes(bytes([DATA[0] ^ 0xFF]) + DATA[1:])  # same size, other content (b"x" + ... was
    # the same content whenever the random DATA began with "x": 1 run in 256 failed)
    with pytest.raises(ModelError, match="checksum"):
        store_for(specs).path("m")


def test_concurrent_downloads_of_one_file_make_one_request(served: Served) -> None:
    served.chunk_delay = 0.01  # ~0.13 s a download, so the two overlap
    specs = spec_for(served.url(f"/{NAME}"))
    start = threading.Barrier(2)
    results: list[Path | BaseException] = []

    def fetch() -> None:
        start.wait()
        try:
            results.append(store_for(specs).path("m"))
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            results.append(e)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 2 and results[0] == results[1], results
    assert isinstance(results[0], Path) and results[0].read_bytes() == DATA
    assert len(served.requests) == 1  # the second waited on the lock and found the file
    assert leftovers(results[0].parent) == [NAME]


def test_download_with_a_progress_bar(served: Served, tmp_path: Path) -> None:
    download(served.url(f"/{NAME}"), tmp_path / NAME, sha256=SHA, retry=FAST)
    assert (tmp_path / NAME).read_bytes() == DATA


# -- offline -------------------------------------------------------------------------------------

@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("offline mode opened a connection")
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_never_touches_the_network(served: Served, no_sockets: None, how: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    if how == "env":
        monkeypatch.setenv("FACEKIT_OFFLINE", "1")
    store = store_for(spec_for(served.url(f"/{NAME}")), offline=how == "flag")
    assert store.state("m") == "missing"
    with pytest.raises(ModelError, match="offline") as error:
        store.ensure("m")
    assert served.url(f"/{NAME}") in str(error.value) and str(store.folder("m")) in str(error.value)
    assert served.requests == []


def test_offline_uses_the_cache(served: Served, no_sockets: None) -> None:
    store = store_for(spec_for(served.url(f"/{NAME}")), offline=True)
    store.folder("m").mkdir(parents=True)
    (store.folder("m") / NAME).write_bytes(DATA)
    assert store.path("m").read_bytes() == DATA
    assert store.state("m") == "present"


# -- the cache and packages ----------------------------------------------------------------------

def test_facekit_home_is_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: Served) -> None:
    monkeypatch.setenv("FACEKIT_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home"
    assert store_for(spec_for(served.url(f"/{NAME}"))).path("m") == tmp_path / "home" / "models" / "m" / NAME


def test_corrupt_file_in_the_cache_is_reported_not_replaced(served: Served) -> None:
    store = store_for(spec_for(served.url(f"/{NAME}")))
    store.folder("m").mkdir(parents=True)
    (store.folder("m") / NAME).write_bytes(DATA[:-1] + b"!")
    assert store.state("m") == "missing"
    with pytest.raises(ModelError, match="checksum.*delete it"):
        store.path("m")
    assert served.requests == []


@pytest.fixture
def weights_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway installed package that ships the weights in ``models/``."""
    package = tmp_path / "site" / "facekit_test_weights"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the store must not import me')\n")
    (package / "models" / NAME).write_bytes(DATA)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package


def test_package_resource_is_found_without_a_download(weights_package: Path, served: Served) -> None:
    store = store_for(spec_for(served.url(f"/{NAME}"), package="facekit_test_weights", package_dir="models"))
    assert store.state("m") == "present"
    assert store.path("m") == weights_package / "models" / NAME
    assert served.requests == []


def test_cache_comes_before_the_package(weights_package: Path) -> None:
    store = store_for(spec_for(None, package="facekit_test_weights", package_dir="models"))
    store.folder("m").mkdir(parents=True)
    (store.folder("m") / NAME).write_bytes(DATA)
    assert store.path("m") == store.folder("m") / NAME


def test_package_resource_is_verified(weights_package: Path) -> None:
    (weights_package / "models" / NAME).write_bytes(DATA[:1000])
    store = store_for(spec_for(None, package="facekit_test_weights", package_dir="models"))
    with pytest.raises(ModelError, match="size is 1000 bytes.*reinstall"):
        store.path("m")


def test_no_source_says_where_to_put_the_file() -> None:
    store = store_for(spec_for(None, package="facekit_no_such_package"))
    assert store.state("m") == "missing"
    with pytest.raises(ModelError, match=f"{NAME} not found; put it in .*facekit_no_such_package"):
        store.path("m")


def test_unknown_ids_and_files_are_model_errors() -> None:
    store = store_for(spec_for(None))
    with pytest.raises(ModelError, match="unknown model id 'x'"):
        store.path("x")
    with pytest.raises(ModelError, match="has no file 'other.bin'"):
        store.path("m", "other.bin")


# -- zip archives (faceswap's model releases) ----------------------------------------------------

def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, body in members.items():
            zipped.writestr(name, body)
    return buffer.getvalue()


def test_files_inside_a_zip_are_extracted_once_and_verified(served: Served) -> None:
    prototxt = b"name: 'net'\n"
    served.files["/model.zip"] = _zip({"model/weights.bin": DATA, "model/deploy.prototxt": prototxt})
    files = (ModelFile(NAME, SHA, len(DATA), served.url("/model.zip"), archive=True),
             ModelFile("deploy.prototxt", None, None, served.url("/model.zip"), archive=True))
    store = store_for({"m": ModelSpec(id="m", files=files)})
    paths = store.ensure("m")
    assert paths[NAME].read_bytes() == DATA and paths["deploy.prototxt"].read_bytes() == prototxt
    assert len(served.requests) == 1  # one download serves both members
    assert read_sidecar(paths["deploy.prototxt"]) == hashlib.sha256(prototxt).hexdigest()
    assert leftovers(store.folder("m")) == ["deploy.prototxt", "deploy.prototxt.sha256", NAME]


def test_a_zip_member_with_the_wrong_checksum_leaves_nothing(served: Served) -> None:
    served.files["/model.zip"] = _zip({NAME: DATA[:-1] + bytes([DATA[-1] ^ 0xFF])})  # always differs
    store = store_for({"m": ModelSpec(id="m", files=(ModelFile(NAME, SHA, len(DATA), served.url("/model.zip"),
                                                               archive=True),))})
    with pytest.raises(ModelError, match="checksum"):
        store.path("m")
    assert leftovers(store.folder("m")) == []


def test_a_zip_without_the_member_names_what_it_holds(served: Served) -> None:
    served.files["/model.zip"] = _zip({"other.bin": DATA})
    store = store_for({"m": ModelSpec(id="m", files=(ModelFile(NAME, None, None, served.url("/model.zip"),
                                                               archive=True),))})
    with pytest.raises(ModelError, match="holds no weights.bin.*other.bin"):
        store.path("m")


def test_an_unreachable_zip_says_which_file_to_unpack_where(served: Served) -> None:
    store = store_for({"m": ModelSpec(id="m", files=(ModelFile(NAME, None, None, served.url("/gone.zip"),
                                                               archive=True),))})
    with pytest.raises(ModelError) as error:
        store.path("m")
    message = str(error.value)
    assert served.url("/gone.zip") in message and f"unzip it and put {NAME} in {store.folder('m')}/" in message
    assert "\n" not in message


def test_offline_with_a_zip_says_to_unzip_it(served: Served, no_sockets: None) -> None:
    store = store_for({"m": ModelSpec(id="m", files=(ModelFile(NAME, None, None, served.url("/w.zip"),
                                                               archive=True),))}, offline=True)
    with pytest.raises(ModelError, match="offline") as error:
        store.path("m")
    assert f"download {served.url('/w.zip')}, unzip it and put {NAME} in {store.folder('m')}/" in str(error.value)
    assert served.requests == []


def test_a_host_that_does_not_resolve_fails_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """A name that does not resolve now will not seconds later: one try, no back-off, and the
    message says which host. ``.invalid`` never resolves (RFC 2606), so nothing leaves the machine."""
    url = "http://weights.facekit.invalid/weights.bin"
    store = ModelStore(spec_for(url), quiet=True)  # the default policy: 5 tries with back-off
    with caplog.at_level("WARNING", logger="facekit.models.download"), pytest.raises(ModelError) as error:
        store.path("m")
    message = str(error.value)
    assert "host weights.facekit.invalid does not resolve" in message and url in message
    assert "tries" not in message and "retrying" not in caplog.text
    assert leftovers(store.folder("m")) == []


def test_every_model_a_run_lacks_is_named_at_once(served: Served) -> None:
    from facekit.plugin.loading import LoadedPlugin, ensure_all_weights
    from facekit.plugin.spec import PluginSpec

    specs = {name: ModelSpec(id=name, files=(ModelFile(NAME, SHA, len(DATA), served.url(f"/{name}/gone")),))
             for name in ("first", "second")}
    store = store_for(specs)
    plugins = [LoadedPlugin(PluginSpec(name, "detector", lambda c, s: None, object, model_ids=(name,)), None, store)
               for name in specs]
    with pytest.raises(ModelError, match="^2 models are missing: model 'first': .*; model 'second': .*HTTP 404"):
        ensure_all_weights(plugins)
