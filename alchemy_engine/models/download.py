"""Fetch catalogue models on the user's request: the only code in the app that downloads.

``download_models(request, progress, cancel)`` is a job. For each file of each model asked for:

1. already in place → skipped (a download never replaces a file the user has);
2. a lock per file (:class:`~alchemy_engine.atomic.FileLock`): a second download of the same file,
   from this or another process, waits, then finds the file in place;
3. ``huggingface_hub`` resolves the file (``hf_hub_url`` + ``get_hf_file_metadata``: HF_ENDPOINT
   mirrors, HF_TOKEN or the request's token for gated repos) and streams it with its ``http_get``
   into ``models/.downloads/<model>--<file>.part``, appending from the bytes already there — a
   cancel, a crash or a SIGKILL leaves the partial file, and the next run resumes it with a Range
   request;
4. free disk space is checked before any byte is fetched;
5. the whole file is checked against the catalogue's sha256 (else the sha256 the Hub publishes
   for it); a mismatch deletes the partial file and says so;
6. only then is it renamed into place (same file system, atomic) and the folder synced.

The hub library keeps its own partial files under a per-process random name, so a killed process
could never resume; that is why the transfer goes through ``http_get`` into our own partial file.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alchemy_engine.atomic import FileLock, fsync_dir, make_dirs, move
from alchemy_engine.errors import InvalidRequest, ModelError
from alchemy_engine.fields import setting
from alchemy_engine.jobs import CancelToken, JobRequest, Progress, ProgressCallback, Stage, no_progress
from alchemy_engine.models.catalogue import (
    CatalogueFile,
    CatalogueModel,
    partial_file,
    pick,
    staging_dir,
)

log = logging.getLogger(__name__)

FREE_SPACE_MARGIN = 256 * 1024**2  # keep this much free beyond the download itself
_REPORT_EVERY_S = 0.25
_HASH_CHUNK = 8 * 1024**2


@dataclass(frozen=True)
class DownloadRequest(JobRequest):
    """Which catalogue models to fetch. ``token``: for gated repos (else HF_TOKEN / a saved login).
    ``accept_licences``: the user has seen each licence and its link (front-ends show them first)."""

    models: tuple[str, ...] = setting((), cli=False, label="Models", help="catalogue ids to fetch")
    required: bool = setting(False, label="Everything required", help="also every model the app needs")
    accept_licences: bool = setting(False, label="Licences accepted",
                                    help="the user has read each model's licence (shown with its link)")
    token: str | None = setting(None, label="Hugging Face token", help="for gated repos (default: HF_TOKEN)")
    timeout_s: float = setting(10.0, minimum=0.1, maximum=600.0, label="Timeout (s)",
                               help="how long to wait for the server to answer")

    def validate(self) -> None:
        super().validate()
        if not self.models and not self.required:
            raise InvalidRequest("name the models to download (see 'models download --list'), or ask for "
                                 "everything required with --required")
        if not self.accept_licences:
            raise InvalidRequest("downloading means accepting each model's licence; read them ('models "
                                 "download --list' shows each with its link) and pass --accept-licences")
    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "token": None}  # a saved request never carries the token


@dataclass(frozen=True)
class DownloadResult:
    fetched: tuple[str, ...] = ()  # paths placed by this run
    present: tuple[str, ...] = ()  # paths that were already in place
    bytes_fetched: int = 0
    bytes_resumed: int = 0  # bytes a partial file already had when this run started on it

    def to_dict(self) -> dict[str, Any]:
        return {"fetched": list(self.fetched), "present": list(self.present),
                "bytes_fetched": self.bytes_fetched, "bytes_resumed": self.bytes_resumed}


class _ProgressFile:
    """The partial file as ``http_get`` writes it: counts bytes, reports speed and time left, and
    stops the transfer at the next chunk once cancelled (the bytes so far stay for a resume)."""

    def __init__(self, handle: Any, label: str, done: int, total: int, progress: ProgressCallback,
                 cancel: CancelToken) -> None:
        self._handle, self._label, self._progress, self._cancel = handle, label, progress, cancel
        self.done, self.total = done, total
        self._start, self._start_done, self._last = time.monotonic(), done, 0.0

    def write(self, data: bytes) -> int:
        self._cancel.raise_if_cancelled()
        self._handle.write(data)
        self.done += len(data)
        now = time.monotonic()
        if now - self._last >= _REPORT_EVERY_S or self.done >= self.total:
            self._last = now
            self.report(now)
        return len(data)

    def report(self, now: float) -> None:
        speed = (self.done - self._start_done) / max(now - self._start, 1e-6)
        eta = (self.total - self.done) / speed if speed > 0 else None
        self._progress(Progress(Stage.DOWNLOAD, step=self.done, total=self.total, it_per_s=speed, eta_s=eta,
                                message=f"{self._label}: {self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB, "
                                        f"{speed / 1e6:,.1f} MB/s"))

    def truncate(self, size: int | None = None) -> int:
        """A server that ignored the Range request sends the whole file: start the count again."""
        kept = self._handle.truncate(size)
        self.done = self._start_done = kept
        return kept

    def __getattr__(self, name: str) -> Any:  # seek / tell / flush for http_get's resume path
        return getattr(self._handle, name)


def _silent_tqdm() -> type:
    from huggingface_hub.utils import tqdm as hub_tqdm

    class Silent(hub_tqdm):  # our own progress events replace the hub's terminal bar
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "disable": True})

    return Silent


def _hub_message(exc: BaseException, model: CatalogueModel, file: CatalogueFile, endpoint: str) -> str:
    """One line for the user, from what huggingface_hub or the connection raised."""
    from huggingface_hub import errors

    where = f"{model.repo}/{file.path} from {endpoint}"
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return (f"cannot fetch {where}: HF_HUB_OFFLINE is set, which turns every download off; unset it "
                "(or set it to 0) and try again")
    if isinstance(exc, errors.GatedRepoError):
        return (f"{model.repo} is gated: accept its licence on its Hub page ({model.licence_url}) while "
                "logged in, then give your access token (HF_TOKEN, or the token field)")
    if isinstance(exc, (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.EntryNotFoundError)):
        return (f"{where} was not found (HTTP 404); the catalogue may be out of date, or the mirror "
                "does not have it")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 404:
            return (f"{where} was not found (HTTP 404); the catalogue may be out of date, or the mirror "
                    "does not have it")
        if status in (401, 403):
            return (f"{model.repo} refused access (HTTP {status}): give a Hugging Face access token "
                    f"(HF_TOKEN, or the token field) of an account that accepted {model.licence_url}")
        return f"the server answered HTTP {status} for {where}; try again later"
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return f"the server did not answer in time for {where}; check the connection and try again"
    if isinstance(exc, httpx2.TransportError):
        return f"cannot connect to {endpoint} ({exc.__class__.__name__}); check the connection or HF_ENDPOINT"
    return f"fetching {where} failed: {exc}"


def _transfer_errors() -> tuple[type[BaseException], ...]:
    """What the hub library and its HTTP client raise for a failed transfer (OSError covers the
    offline switch, a refused connection that outlived the retries, and a full disk)."""
    import httpx2
    from huggingface_hub import errors

    return errors.HfHubHTTPError, httpx2.HTTPError, OSError


def _check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + FREE_SPACE_MARGIN:
        raise ModelError(f"not enough free disk space in {folder}: the download needs "
                         f"{(needed + FREE_SPACE_MARGIN) / 1e9:.2f} GB and {free / 1e9:.2f} GB are free; "
                         "free some space and try again (what was fetched so far is kept)")


def _expected_digest(file: CatalogueFile, etag: str | None) -> tuple[str, str]:
    """``(algorithm, hex)`` to check: the catalogue's sha256, else the Hub's LFS sha256 (64 hex) or
    git blob sha1 (40 hex) from the file's ETag."""
    if file.sha256:
        return "sha256", file.sha256
    tag = (etag or "").strip('"').lower()
    if len(tag) == 64:
        return "sha256", tag
    if len(tag) == 40:
        return "git-sha1", tag
    raise ModelError(f"the catalogue has no sha256 for {file.path} and the server published none; "
                     "it cannot be verified, so it is not fetched")


def _digest(path: Path, algorithm: str, cancel: CancelToken) -> str:
    digest = hashlib.sha256() if algorithm == "sha256" else hashlib.sha1()
    if algorithm == "git-sha1":
        digest.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            cancel.raise_if_cancelled()
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_file(model: CatalogueModel, file: CatalogueFile, request: DownloadRequest,
                progress: ProgressCallback, cancel: CancelToken) -> tuple[int, int]:
    """Fetch, verify and place one file; returns ``(bytes fetched now, bytes resumed)``."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = hf_hub_url(model.repo, file.path, revision=model.revision, endpoint=endpoint)
    token = request.token or None
    partial = partial_file(model, file)
    try:
        meta = get_hf_file_metadata(url, token=token, timeout=request.timeout_s, endpoint=endpoint)
        algorithm, expected = _expected_digest(file, meta.etag)
        size = meta.size if meta.size is not None else file.size
        resumed = partial.stat().st_size if partial.is_file() else 0
        if resumed > size:  # not this file's bytes: start again
            partial.unlink()
            resumed = 0
        _check_free_space(partial.parent, size - resumed)
        with partial.open("ab") as handle:
            writer = _ProgressFile(handle, file.name, resumed, size, progress, cancel)
            http_get(meta.location, writer, resume_size=resumed, expected_size=size,  # type: ignore[arg-type]
                     headers=build_hf_headers(token=token), displayed_filename=file.name,
                     tqdm_class=_silent_tqdm())
            handle.flush()
            os.fsync(handle.fileno())
            writer.report(time.monotonic())
    except _transfer_errors() as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # the disk filled up meanwhile
            raise ModelError(f"the disk is full: {partial.parent} has no space left for {file.name}; "
                             "free some space and run the download again (it resumes)") from exc
        log.warning("download of %s failed", url, exc_info=True)
        raise ModelError(_hub_message(exc, model, file, endpoint)) from exc
    progress(Progress(Stage.DOWNLOAD, step=size, total=size, message=f"{file.name}: checking its {algorithm}"))
    actual = _digest(partial, algorithm, cancel)
    if actual != expected:
        partial.unlink()
        raise ModelError(f"{file.name} from {model.repo} does not match its {algorithm} (expected {expected}, "
                         f"got {actual}); the download was deleted. Try again; if it happens again the "
                         "server or mirror has a different file")
    destination = model.destination(file)
    make_dirs(destination.parent)
    move(partial, destination, then="the verified download stays in " + str(partial.parent))
    fsync_dir(destination.parent)
    return size - resumed, resumed


def download_models(request: DownloadRequest, progress: ProgressCallback = no_progress,
                    cancel: CancelToken | None = None) -> DownloadResult:
    """Fetch every file of the models asked for that is not in place yet (see the module docstring)."""
    request.validate()
    cancel = cancel or CancelToken()
    models = pick(request.models, request.required)
    fetched: list[str] = []
    present: list[str] = []
    total_fetched = total_resumed = 0
    make_dirs(staging_dir())
    todo = [(m, f) for m in models for f in m.files if not m.destination(f).is_file()]
    partial = sum(partial_file(m, f).stat().st_size for m, f in todo if partial_file(m, f).is_file())
    _check_free_space(staging_dir(), max(sum(f.size for _, f in todo) - partial, 0))  # all of it, up front
    for model in models:
        for file in model.files:
            destination = model.destination(file)
            if destination.is_file():
                present.append(str(destination))
                continue
            lock = FileLock(partial_file(model, file).with_suffix(".lock"), timeout=0)
            while not lock.try_acquire():
                cancel.raise_if_cancelled()
                progress(Progress(Stage.WAITING, message=f"{file.name}: another download of it is running; waiting"))
                time.sleep(0.2)
            try:
                if destination.is_file():  # the other download placed it
                    present.append(str(destination))
                    continue
                got, resumed = _fetch_file(model, file, request, progress, cancel)
            finally:
                lock.release()
            fetched.append(str(destination))
            total_fetched += got
            total_resumed += resumed
    return DownloadResult(tuple(fetched), tuple(present), total_fetched, total_resumed)
