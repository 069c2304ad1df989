"""Projects on disk: round trip, names, photos, schema versions, damage and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alchemy_engine import atomic, paths
from alchemy_engine.errors import ImageImportError, InvalidRequest, ProjectError, WriteFailed
from alchemy_engine.project import (
    SCHEMA_VERSION,
    create_project,
    delete_project,
    list_projects,
    open_project,
    rename_project,
)
from alchemy_engine.project import schema as project_file


def noise(path: Path, size=(320, 280), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    return [noise(tmp_path / f"IMG_{i}.jpg", seed=i) for i in range(3)]


def test_create_and_reopen_round_trip(photos):
    project = create_project("Rex the Dog", class_noun="dog", images=photos[:2],
                             settings={"steps": 500})
    assert project.root == paths.projects_dir() / "rex-the-dog"
    for folder in (project.references_dir, project.runs_dir, project.scenes_dir,
                   project.outputs_dir, project.cache_dir):
        assert folder.is_dir()
    assert [p.name for p in project.last_import.imported] == ["img-0.png", "img-1.png"]

    again = open_project("Rex the Dog")
    assert (again.name, again.slug, again.token, again.class_noun) == \
        ("Rex the Dog", "rex-the-dog", "sks", "dog")
    assert again.settings == {"steps": 500} and again.instance_prompt == "sks dog"
    stored = again.reference_photos()
    assert [p.original_name for p in stored] == ["IMG_0.jpg", "IMG_1.jpg"]
    assert all(p.path.is_file() and p.mask_path is None and p.caption is None for p in stored)
    with Image.open(stored[0].path) as image:
        assert image.format == "PNG"
    record = json.loads(again.project_file.read_text())
    assert record["schema_version"] == SCHEMA_VERSION and record["slug"] == "rex-the-dog"
    assert open_project(again.root).name == open_project(again.project_file).name == "Rex the Dog"


def test_photos_captions_masks_and_removal(photos):
    project = create_project("Mug", class_noun="coffee mug", token="zwx", images=photos[:1])
    report = project.import_photos(photos[1:] + [photos[0]])
    assert len(report.imported) == 2
    assert [r.path for r in report.refused] == [photos[0]]
    assert "already in the project" in report.refused[0].reason

    first = project.reference_photos()[0]
    project.set_caption(first, "  a zwx coffee mug  on a table ")
    mask = np.zeros((first.height, first.width), bool)
    mask[50:100, 50:100] = True
    updated = project.set_mask(first, mask)
    assert updated.caption == "a zwx coffee mug on a table"
    assert updated.mask_path == first.path.with_name(first.path.stem + ".mask.png")
    with Image.open(updated.mask_path) as image:
        assert np.asarray(image)[60, 60] == 255
    with pytest.raises(InvalidRequest, match="same size as the photo"):
        project.set_mask(first, np.ones((10, 10), bool))

    project.remove_photo(first)
    assert not first.path.exists() and not updated.mask_path.exists()
    assert len(open_project("Mug").reference_photos()) == 2
    with pytest.raises(ProjectError, match="no photo"):
        project.set_caption(first, "gone")


def test_batch_duplicates_and_nothing_imported(tmp_path, photos):
    project = create_project("Dup", class_noun="dog")
    copy = tmp_path / "copy.png"
    with Image.open(photos[0]) as image:
        image.save(copy)  # same pixels, other file
    report = project.import_photos([photos[0], copy])
    assert len(report.imported) == 1
    assert "earlier in this import" in report.refused[0].reason
    with pytest.raises(ImageImportError, match="No photo was imported.*already in the project"):
        project.import_photos([copy])


def test_create_with_only_bad_photos_creates_nothing(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    with pytest.raises(ImageImportError, match="bad.jpg"):
        create_project("Nothing", class_noun="dog", images=[bad])
    assert list_projects() == []
    assert not any(p.name.startswith(".new") for p in paths.projects_dir().iterdir())


@pytest.mark.parametrize("kwargs, message", [
    ({"name": " ", "class_noun": "dog"}, "name is empty"),
    ({"name": "A", "class_noun": "dog", "token": "two words"}, "one word"),
    ({"name": "A", "class_noun": "dog", "token": "s_k"}, "one word"),
    ({"name": "A", "class_noun": ""}, "Class noun"),
    ({"name": "A", "class_noun": "dog!"}, "Class noun"),
    ({"name": "A", "class_noun": "dog", "token": "Dog"}, "must differ"),
])
def test_validation(kwargs, message):
    with pytest.raises(InvalidRequest, match=message):
        create_project(**kwargs)


def test_names_are_unique_by_slug():
    create_project("My Dog", class_noun="dog")
    with pytest.raises(ProjectError, match="already exists"):
        create_project("my  dog!", class_noun="dog")


def test_list_rename_delete():
    create_project("Beta", class_noun="cat")
    create_project("alpha", class_noun="dog")
    assert [s.name for s in list_projects()] == ["alpha", "Beta"]

    renamed = rename_project("Beta", "Gamma Ray")
    assert renamed.root.name == "gamma-ray" and renamed.name == "Gamma Ray"
    assert not (paths.projects_dir() / "beta").exists()
    with pytest.raises(ProjectError, match="already exists"):
        rename_project("Gamma Ray", "Alpha")
    assert rename_project("gamma-ray", "GAMMA ray").name == "GAMMA ray"  # same slug

    trash = delete_project("alpha")
    assert trash.parent == paths.data_root() / "trash" and (trash / "project.json").is_file()
    assert [s.name for s in list_projects()] == ["GAMMA ray"]
    with pytest.raises(ProjectError, match="No project named 'alpha'.*GAMMA ray"):
        open_project("alpha")


def test_stale_project_object_refuses_to_write_after_rename():
    old = create_project("Old", class_noun="dog")
    rename_project(old, "New")
    with pytest.raises(ProjectError, match="renamed or deleted"):
        old.update(settings={"x": 1})
    assert not old.root.exists()


def test_delete_refuses_folders_outside_the_projects_dir(tmp_path):
    project = create_project("Here", class_noun="dog")
    elsewhere = tmp_path / "elsewhere"
    project.root.rename(elsewhere)
    with pytest.raises(ProjectError, match="outside"):
        delete_project(elsewhere)
    assert (elsewhere / "project.json").is_file()


def test_update_merges_settings_and_checks_values():
    project = create_project("Set", class_noun="dog")
    project.update(settings={"a": 1, "b": 2})
    project.update(token="ohwx", class_noun="golden retriever", settings={"b": None, "c": [3]})
    again = open_project("Set")
    assert again.settings == {"a": 1, "c": [3]}
    assert again.instance_prompt == "ohwx golden retriever"
    with pytest.raises(InvalidRequest, match="JSON"):
        project.update(settings={"bad": object()})


def test_new_run_dirs_are_unique():
    project = create_project("Runs", class_noun="dog")
    runs = {project.new_run_dir() for _ in range(5)}
    assert len(runs) == 5 and all(r.is_dir() and r.parent == project.runs_dir for r in runs)


def test_newer_schema_is_refused_and_untouched():
    project = create_project("Future", class_noun="dog")
    record = json.loads(project.project_file.read_text())
    record["schema_version"] = SCHEMA_VERSION + 1
    project.project_file.write_text(json.dumps(record))
    before = project.project_file.read_bytes()
    with pytest.raises(ProjectError, match="newer Image Alchemy"):
        open_project("Future")
    with pytest.raises(ProjectError, match="newer Image Alchemy"):
        project.update(settings={"x": 1})
    assert project.project_file.read_bytes() == before


def test_older_schema_is_migrated_on_save():
    root = paths.projects_dir() / "old-one"
    root.mkdir(parents=True)
    (root / "project.json").write_text(json.dumps({"name": "Old One", "class_noun": "dog"}))
    project = open_project("Old One")
    assert (project.token, project.settings, project.reference_photos()) == ("sks", {}, [])
    project.save()
    record = json.loads(project.project_file.read_text())
    assert record["schema_version"] == SCHEMA_VERSION and record["references"] == []


@pytest.mark.parametrize("text", ['{"name": "Broken", ', "[1, 2]", '{"name": 3}', "\xff\xfe"])
def test_damaged_json_is_reported_and_untouched(text):
    project = create_project("Broken", class_noun="dog")
    project.project_file.write_text(text, encoding="latin-1")
    before = project.project_file.read_bytes()
    with pytest.raises(ProjectError, match=r"project\.json is damaged.*left untouched"):
        open_project(project.root)
    with pytest.raises(ProjectError, match="damaged"):
        project.update(settings={"x": 1})
    assert project.project_file.read_bytes() == before
    [summary] = list_projects()
    assert summary.error and "damaged" in summary.error


def test_failed_write_leaves_old_project_json_valid(monkeypatch):
    project = create_project("Crash", class_noun="dog", settings={"kept": True})
    before = project.project_file.read_bytes()

    def crash(fd):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:  # not undo(): that would also drop the test's home
        patch.setattr(atomic.os, "fsync", crash)
        with pytest.raises(WriteFailed, match="disk is full.*previous version is kept"):
            project.update(settings={"lost": True})
    assert project.project_file.read_bytes() == before
    assert open_project("Crash").settings == {"kept": True}
    assert [p.name for p in project.root.iterdir() if ".tmp" in p.name] == []


def test_busy_project_gives_a_clear_error(monkeypatch):
    project = create_project("Busy", class_noun="dog")
    monkeypatch.setattr(project_file, "LOCK_TIMEOUT_S", 0.2)
    with atomic.FileLock(project.root / ".lock"):
        with pytest.raises(ProjectError, match="busy"):
            project.update(settings={"x": 1})


def test_names_with_slashes_and_stale_objects():
    project = create_project("AC/DC", class_noun="band")
    assert project.slug == "ac-dc" and open_project("AC/DC").root == project.root
    delete_project(project)
    with pytest.raises(ProjectError, match="no project at"):
        delete_project(project)
    with pytest.raises(ProjectError, match="renamed or deleted"):
        project.new_run_dir()
    assert not project.root.exists()
