"""Two real processes changing one project: both changes land, and a kill never tears the file."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from alchemy_engine.project import create_project, open_project

SPAWN = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads


def _writer(root: str, tag: str, photos: list[str], barrier, rounds: int) -> None:
    """Child process: import its photos, then update its own settings keys, many times."""
    project = open_project(Path(root))
    barrier.wait(timeout=60)
    for i in range(rounds):
        project.update(settings={f"{tag}-{i}": i})
        if i < len(photos):
            project.import_photos([photos[i]])


def test_two_processes_importing_and_updating_both_land(tmp_path):
    project = create_project("Shared", class_noun="dog")
    photos = {}
    for tag, offset in (("a", 0), ("b", 10)):
        photos[tag] = []
        for i in range(2):
            rng = np.random.default_rng(offset + i)
            path = tmp_path / f"{tag}{i}.png"
            Image.fromarray(rng.integers(0, 256, (260, 260, 3), dtype=np.uint8)).save(path)
            photos[tag].append(str(path))
    rounds = 8
    barrier = SPAWN.Barrier(2)
    workers = [SPAWN.Process(target=_writer, args=(str(project.root), tag, photos[tag],
                                                    barrier, rounds)) for tag in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]

    result = open_project("Shared")
    expected = {f"{tag}-{i}": i for tag in ("a", "b") for i in range(rounds)}
    assert result.settings == expected
    assert sorted(p.original_name for p in result.reference_photos()) == ["a0.png", "a1.png",
                                                                           "b0.png", "b1.png"]
    assert all(p.path.is_file() for p in result.reference_photos())


_KILLED_WRITER = """
import sys
from alchemy_engine.project import open_project
project = open_project(sys.argv[1])
i = 0
while True:
    i += 1
    project.update(settings={"counter": i, "padding": "x" * 200_000})
    if i == 20:
        print("wrote 20", flush=True)  # the parent kills it now, during the writes that follow
"""


def test_killing_a_writer_mid_write_leaves_a_valid_project_json(tmp_path):
    project = create_project("Killed", class_noun="dog")
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(project.root)],
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert child.stdout.readline().strip() == "wrote 20"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    record = json.loads(project.project_file.read_text())
    assert record["name"] == "Killed"
    assert open_project("Killed").settings["counter"] >= 20
    project.update(settings={"after": True})  # the OS released the dead writer's lock
    assert open_project("Killed").settings["after"] is True
