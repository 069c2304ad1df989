"""Atomic writes and the inter-process file lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from alchemy_engine import atomic
from alchemy_engine.atomic import FileLock, FileLockTimeout, atomic_path, atomic_write_json, atomic_write_text
from alchemy_engine.errors import WriteFailed


def test_writes_replace_the_target_and_leave_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "data.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    atomic_write_json(target, {"c": 3})
    assert json.loads(target.read_text()) == {"c": 3}
    assert [p.name for p in target.parent.iterdir()] == ["data.json"]


def test_temporary_keeps_the_suffix_for_format_detection(tmp_path):
    with atomic_path(tmp_path / "image.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"png")
    assert (tmp_path / "image.png").read_bytes() == b"png"


def test_a_writer_that_fails_leaves_the_old_file(tmp_path):
    target = tmp_path / "files" / "keep.txt"
    atomic_write_text(target, "old")
    with pytest.raises(WriteFailed, match="keep.txt"):  # torch.save's RuntimeError, reported as a write
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["keep.txt"]


def test_a_failed_fsync_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "files" / "keep.txt"
    atomic_write_text(target, "old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:  # not undo(): that would also drop the test's home
        patch.setattr(atomic.os, "fsync", disk_full)
        with pytest.raises(WriteFailed, match="the disk is full: .* MB free on .*free some space"):
            atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["keep.txt"]


_HOLDER = """
import sys, time
from alchemy_engine.atomic import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_lock_excludes_another_process_and_is_freed_when_it_dies(tmp_path):
    lock_path = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock_path), "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(FileLockTimeout):
            FileLock(lock_path, timeout=0.3).acquire()
        assert time.monotonic() - started >= 0.3
    finally:
        holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()
    with FileLock(lock_path, timeout=5):
        pass


def test_lock_descriptor_is_closed_when_locking_fails(tmp_path, monkeypatch):
    closed = []
    real_close = atomic.os.close

    def broken_lock(fd):
        raise OSError(37, "No locks available")

    def spy_close(fd):
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(atomic, "_lock_fd", broken_lock)
    monkeypatch.setattr(atomic.os, "close", spy_close)
    with pytest.raises(OSError, match="No locks"):
        FileLock(tmp_path / ".lock").acquire()
    assert len(closed) == 1


def test_written_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    import os
    import stat

    atomic_write_text(tmp_path / "out.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "out.txt").st_mode)
    assert mode == atomic.FILE_MODE and mode & 0o044  # readable by group and others (umask 022)


@pytest.mark.parametrize("raised, cause", [
    (RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed"), None),
    (OSError(30, "Read-only file system"), "is read-only"),
    (OSError(5, "Input/output error"), "input/output error"),
    (OSError(13, "Permission denied"), "permission denied"),
])
def test_every_kind_of_failed_write_is_one_message_naming_the_file(tmp_path, raised, cause):
    target = tmp_path / "out" / "data.bin"
    with pytest.raises(WriteFailed) as info:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise raised
    assert str(target) in str(info.value) and "Traceback" not in str(info.value)
    assert cause is None or cause in str(info.value)
    assert list(target.parent.iterdir()) == []


def test_safetensors_errors_name_the_cause(tmp_path):
    from safetensors import SafetensorError

    error = SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, '
                            'message: "No space left on device" })')
    assert atomic.describe_failure(tmp_path / "x", error).startswith("the disk is full")


def test_a_lock_in_a_read_only_folder_is_a_message(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(atomic.os, "open", read_only)
    with pytest.raises(WriteFailed, match="read-only"):
        FileLock(tmp_path / ".lock").acquire()


def test_new_files_never_replace_one_even_without_hard_links(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(1, "Operation not permitted")  # exFAT, FAT, some network shares

    for patch in (False, True):
        if patch:
            monkeypatch.setattr(atomic.os, "link", no_links)
        folder = tmp_path / f"out{patch}"
        names = [atomic.write_new(folder, "x", ".txt", lambda t, n=n: _exclusive(t, n)).name for n in range(3)]
        assert names == ["x.txt", "x-2.txt", "x-3.txt"]
        assert [(folder / n).read_bytes() for n in names] == [b"0", b"1", b"2"]


def _exclusive(target, n):
    with atomic_path(target, exclusive=True) as tmp:
        tmp.write_bytes(b"%d" % n)
