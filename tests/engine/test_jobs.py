"""The job convention: requests round-trip through JSON, cancel tokens, progress events."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest

from alchemy_engine.errors import InvalidRequest, JobCancelled
from alchemy_engine.jobs import CancelToken, JobRequest, Progress


@dataclasses.dataclass(frozen=True)
class Inner(JobRequest):
    points: tuple[tuple[int, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class Outer(JobRequest):
    name: str
    image: Path
    mask: Path | None = None
    inner: Inner = Inner()
    files: tuple[Path, ...] = ()
    scale: float = 1.0


def test_request_round_trips_through_json_with_paths_and_nesting():
    request = Outer("rex", Path("/tmp/a.png"), None, Inner(((1, 2), (3, 4))), (Path("x"), Path("y")), 0.5)
    text = request.to_json()
    assert json.loads(text)["image"] == "/tmp/a.png"
    again = Outer.from_json(text)
    assert again == Outer("rex", Path("/tmp/a.png"), None, Inner(((1, 2), (3, 4))), (Path("x"), Path("y")), 0.5)
    assert isinstance(again.image, Path) and isinstance(again.files[0], Path)


def test_unknown_fields_are_refused_by_name():
    with pytest.raises(InvalidRequest, match="colour"):
        Outer.from_dict({"name": "rex", "image": "a.png", "colour": "red"})


def test_cancel_token_is_seen_across_threads():
    token = CancelToken()
    token.raise_if_cancelled()
    worker = threading.Thread(target=token.cancel)
    worker.start()
    worker.join()
    assert token.cancelled
    with pytest.raises(JobCancelled):
        token.raise_if_cancelled()


def test_progress_to_dict_leaves_out_the_image_and_empty_fields():
    event = Progress("training", step=3, total=10, loss=0.5, preview=object(), preview_path=Path("s.png"))
    assert event.fraction == pytest.approx(0.3)
    assert event.to_dict() == {"stage": "training", "step": 3, "total": 10, "loss": 0.5,
                               "preview_path": "s.png"}
    json.dumps(event.to_dict())
