"""Catalogue downloads against a local stand-in for the Hub (127.0.0.1; never the real network):
progress, resume after SIGKILL, sha256 refusal, server and connection failures, a full disk,
cancel, two downloads of one file, offline mode."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hub_server import FakeHub, HubFile, lfs_sha256

from alchemy_engine.cli import main as cli_main
from alchemy_engine.errors import InvalidRequest, JobCancelled, ModelError
from alchemy_engine.jobs import CancelToken, Progress, Stage
from alchemy_engine.models.catalogue import catalogue_status, partial_file, pick
from alchemy_engine.models.download import DownloadRequest, download_models

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
BIG = os.urandom(21 * MB + 123)  # more than two of the hub library's 10 MB read chunks
CONFIG = json.dumps({"model_type": "grounding-dino"}).encode()
WEIGHTS = os.urandom(50_000)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The fake hub serving a two-model catalogue; HF_ENDPOINT points at it, offline mode is off,
    and the hub library reads 1 MB at a time (10 MB in real use) so progress and cancel show."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", MB)
    server = FakeHub({"acme/base/big.safetensors": HubFile(BIG),
                      "acme/det/config.json": HubFile(CONFIG, lfs=False),
                      "acme/det/model.safetensors": HubFile(WEIGHTS)}).start()
    catalogue = {"version": 1, "models": [
        {"id": "base", "title": "a base", "required": True, "repo": "acme/base", "revision": "main",
         "target": "sdxl", "licence": "test", "licence_url": "http://example.invalid/licence",
         "files": [{"path": "big.safetensors", "size": len(BIG), "sha256": lfs_sha256(BIG)}]},
        {"id": "det", "title": "a detector", "required": True, "repo": "acme/det", "revision": "main",
         "target": "detector/det", "licence": "test", "licence_url": "",
         "files": [{"path": "config.json", "size": len(CONFIG), "sha256": None},
                   {"path": "model.safetensors", "size": len(WEIGHTS), "sha256": None}]},
        {"id": "extra", "title": "optional", "required": False, "repo": "acme/extra", "target": "eval/x",
         "licence": "", "licence_url": "", "files": [{"path": "model.safetensors", "size": 10, "sha256": None}]}]}
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(catalogue), encoding="utf-8")
    monkeypatch.setenv("IMAGE_ALCHEMY_CATALOGUE", str(path))
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield server
    server.stop()


def _request(**kw) -> DownloadRequest:
    return DownloadRequest(**{"required": True, "accept_licences": True, "timeout_s": 2.0, **kw})


def test_required_models_are_fetched_verified_and_placed_with_progress(hub, alchemy_home):
    events: list[Progress] = []
    result = download_models(_request(), events.append)
    base = alchemy_home / "models" / "sdxl" / "big.safetensors"
    assert base.read_bytes() == BIG
    assert (alchemy_home / "models/detector/det/config.json").read_bytes() == CONFIG  # git sha1 checked
    assert (alchemy_home / "models/detector/det/model.safetensors").read_bytes() == WEIGHTS  # hub sha256
    assert result.bytes_fetched == len(BIG) + len(CONFIG) + len(WEIGHTS) and result.bytes_resumed == 0
    big = [e for e in events if e.stage == Stage.DOWNLOAD and "big.safetensors" in e.message]
    steps = [e.step for e in big]
    assert steps == sorted(steps) and steps[-1] == len(BIG) and all(e.total == len(BIG) for e in big)
    assert any(e.it_per_s for e in big)
    assert not list((alchemy_home / "models" / ".downloads").glob("*.part"))
    assert {m["id"]: m["state"] for m in catalogue_status()} == {"base": "present", "det": "present",
                                                                "extra": "missing"}
    before = len(hub.requests)
    again = download_models(_request())
    assert len(again.present) == 3 and not again.fetched and len(hub.requests) == before  # nothing asked


def test_cli_download_survives_sigkill_and_resumes(hub, alchemy_home, tmp_path):
    """Done-when: `models download --required` killed mid-file resumes from its bytes, not from 0."""
    hub.files["acme/base/big.safetensors"].chunk_delay = 0.1  # ~2 s; the child writes 10 MB at a time
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf_home")}
    child = subprocess.Popen([sys.executable, "main.py", "models", "download", "--required",
                              "--accept-licences", "--json"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = partial_file(pick(["base"])[0], pick(["base"])[0].files[0])
    deadline = time.monotonic() + 60
    while not (partial.is_file() and partial.stat().st_size >= 10 * MB):
        assert child.poll() is None and time.monotonic() < deadline, child.stderr.read() if child.stderr else ""
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    kept = partial.stat().st_size
    assert 0 < kept < len(BIG)
    hub.files["acme/base/big.safetensors"].chunk_delay = 0
    assert cli_main(["models", "download", "--required", "--accept-licences"]) == 0
    assert (alchemy_home / "models/sdxl/big.safetensors").read_bytes() == BIG
    resumed_from = int(hub.gets("big.safetensors")[-1].removeprefix("bytes=").rstrip("-"))
    assert kept <= resumed_from < len(BIG)  # the second run asked only for the rest


def test_a_file_whose_sha256_differs_is_deleted_and_refused(hub, alchemy_home):
    hub.files["acme/base/big.safetensors"].body = BIG[:-1] + bytes([BIG[-1] ^ 1])
    with pytest.raises(ModelError, match="does not match its sha256.*the download was deleted"):
        download_models(_request(models=("base",), required=False))
    assert not (alchemy_home / "models/sdxl/big.safetensors").exists()
    assert not partial_file(pick(["base"])[0], pick(["base"])[0].files[0]).exists()


@pytest.mark.parametrize("setup, words", [
    (lambda hub: setattr(hub.files["acme/base/big.safetensors"], "status", 404), "was not found"),
    (lambda hub: setattr(hub.files["acme/base/big.safetensors"], "status", 500), "answered HTTP 500"),
    (lambda hub: setattr(hub.files["acme/base/big.safetensors"], "head_delay", 5), "did not answer in time"),
    (lambda hub: hub.stop(), "cannot connect to http://127.0.0.1"),
])
def test_server_failures_end_in_one_clear_message(hub, setup, words):
    setup(hub)
    with pytest.raises(ModelError, match=words) as caught:
        download_models(_request(models=("base",), required=False, timeout_s=0.5))
    assert "\n" not in str(caught.value)


def test_offline_mode_says_how_to_turn_downloads_on(hub, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        download_models(_request())


def test_disk_full_before_and_during_the_transfer(hub, alchemy_home, monkeypatch):
    import shutil as real_shutil

    from alchemy_engine.models import download

    usage = real_shutil.disk_usage(alchemy_home)
    with monkeypatch.context() as patch:
        patch.setattr(download.shutil, "disk_usage", lambda p: usage._replace(free=1000))
        with pytest.raises(ModelError, match="not enough free disk space"):
            download_models(_request(models=("base",), required=False))
    assert not hub.requests  # refused before asking the server anything
    writes = {"n": 0}
    real_write = download._ProgressFile.write

    def fill_up(self, data):
        writes["n"] += 1
        if writes["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(download._ProgressFile, "write", fill_up)
    with pytest.raises(ModelError, match="the disk is full.*it resumes"):
        download_models(_request(models=("base",), required=False))


def test_cancel_keeps_the_bytes_and_the_next_run_resumes(hub, alchemy_home):
    hub.files["acme/base/big.safetensors"].chunk_delay = 0.05  # progress is reported every 0.25 s
    cancel = CancelToken()

    def cancel_midway(event: Progress) -> None:
        if event.stage == Stage.DOWNLOAD and event.step > 3 * MB:
            cancel.cancel()

    with pytest.raises(JobCancelled):
        download_models(_request(models=("base",), required=False), cancel_midway, cancel)
    kept = partial_file(pick(["base"])[0], pick(["base"])[0].files[0]).stat().st_size
    assert 0 < kept < len(BIG)
    result = download_models(_request(models=("base",), required=False))
    assert result.bytes_resumed == kept and result.bytes_fetched == len(BIG) - kept
    assert (alchemy_home / "models/sdxl/big.safetensors").read_bytes() == BIG


def test_a_server_ignoring_the_range_sends_it_all_and_the_file_is_still_right(hub, alchemy_home):
    hub.files["acme/base/big.safetensors"].chunk_delay = 0.05
    cancel = CancelToken()
    with pytest.raises(JobCancelled):
        download_models(_request(models=("base",), required=False),
                        lambda e: e.step > 3 * MB and cancel.cancel(), cancel)
    hub.files["acme/base/big.safetensors"].chunk_delay = 0
    hub.files["acme/base/big.safetensors"].ignore_range = True
    events: list[Progress] = []
    download_models(_request(models=("base",), required=False), events.append)
    assert (alchemy_home / "models/sdxl/big.safetensors").read_bytes() == BIG
    assert hub.gets("big.safetensors")[-1].startswith("bytes=")  # it asked for the rest, got everything
    assert max(e.step for e in events) == len(BIG)


def test_two_downloads_of_one_file_at_once_one_waits(hub, alchemy_home):
    hub.files["acme/base/big.safetensors"].chunk_delay = 0.02
    results, errors, waited = [], [], []

    def run() -> None:
        try:
            results.append(download_models(_request(models=("base",), required=False),
                                           lambda e: waited.append(e) if e.stage == Stage.WAITING else None))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(results) == 2 and waited
    assert sorted(len(r.fetched) for r in results) == [0, 1]
    assert len(hub.gets("big.safetensors")) == 1  # fetched once
    assert (alchemy_home / "models/sdxl/big.safetensors").read_bytes() == BIG


def test_requests_are_checked_before_anything_is_fetched(hub):
    with pytest.raises(InvalidRequest, match="accepting each model's licence"):
        download_models(DownloadRequest(required=True))
    with pytest.raises(InvalidRequest, match="name the models"):
        download_models(DownloadRequest(accept_licences=True))
    with pytest.raises(ModelError, match="unknown model nope; the catalogue has base, det, extra"):
        download_models(_request(models=("nope",)))
    assert DownloadRequest(token="secret").to_dict()["token"] is None
    assert not hub.requests


def test_the_shipped_catalogue_covers_what_the_app_needs(monkeypatch):
    """The catalogue in resources/ reads, every file is safetensors / config (or Meta's SAM .pth),
    and the required set is what training, insertion and automatic masks need."""
    monkeypatch.delenv("IMAGE_ALCHEMY_CATALOGUE", raising=False)
    from alchemy_engine.models.catalogue import load_catalogue

    models = {m.id: m for m in load_catalogue()}
    assert {"sdxl-base", "sam-vit-b", "sam-vit-h", "grounding-dino-tiny", "dino-vits16",
            "clip-vit-large-patch14"} <= set(models)
    assert {m.id for m in models.values() if m.required} == {"sdxl-base", "sam-vit-b", "grounding-dino-tiny"}
    for model in models.values():
        assert model.licence and model.licence_url.startswith("https://") and model.size > 0
        for file in model.files:
            assert file.path.endswith((".safetensors", ".json", ".txt")) or file.name.startswith("sam_vit_")
    assert models["sdxl-base"].files[0].sha256 and models["sdxl-base"].folder().name == "sdxl"
    assert models["dino-vits16"].target == "eval/dino-vits16"  # where the score models are looked for


def test_a_catalogue_naming_a_pickle_is_refused(tmp_path, monkeypatch):
    from alchemy_engine.models.catalogue import load_catalogue

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"models": [{"id": "x", "title": "x", "repo": "a/b", "target": "sdxl",
                                            "files": [{"path": "model.ckpt", "size": 1, "sha256": None}]}]}))
    with pytest.raises(ModelError, match="not a safetensors or config file"):
        load_catalogue(path)
    path.write_text(json.dumps({"models": [{"id": "x", "title": "x", "repo": "a/b", "target": "../../etc",
                                            "files": []}]}))
    with pytest.raises(ModelError, match="not a folder under models/"):
        load_catalogue(path)
