"""One seed range everywhere: random seeds, request checks, variations and seeds read back from an
image all stay within 0 … SEED_MAX, the range the GUI's seed box holds."""

from __future__ import annotations

import json
import random

import pytest

from alchemy_engine import api
from alchemy_engine.errors import InvalidRequest
from alchemy_engine.fields import random_seed
from tests.engine.insertion.test_history import _output


def test_random_seeds_are_drawn_from_the_one_range(monkeypatch):
    asked = []
    monkeypatch.setattr(random, "randrange", lambda stop: asked.append(stop) or stop - 1)
    assert random_seed() == api.SEED_MAX and asked == [api.SEED_MAX + 1]
    assert api.SEED_MAX == 2**31 - 1


def test_requests_refuse_a_seed_beyond_the_range_and_variations_wrap(tmp_path):
    _output(tmp_path, "s.png", {})
    with pytest.raises(InvalidRequest, match=r"seed must be between 0 and 2147483647 \(got 2147483648\)"):
        api.InsertRequest(project="Rex", scene=tmp_path / "s.png", seed=2**31).validate()
    request = api.InsertRequest(project="Rex", scene=tmp_path / "s.png", variations=3)
    assert request.seeds(api.SEED_MAX - 1) == [api.SEED_MAX - 1, api.SEED_MAX, 0]
    for request_class, name in ((api.InsertRequest, "seed"), (api.TrainRequest, "seed"),
                                (api.TrainRequest, "sample_seed"), (api.SceneRequest, "seed")):
        assert api.field_info(request_class, name).maximum == api.SEED_MAX


def test_a_seed_read_back_beyond_the_range_is_reported_not_passed_on(tmp_path):
    big = 3_000_000_000  # what an older version's random seed could be
    path = _output(tmp_path, "o.png", {"prompt": "a sks dog", "seed": big, "steps": 9})
    params = api.read_output_parameters(path)
    assert params["seed"] is None and params["seed_out_of_range"] == big and params["steps"] == 9
    fine = _output(tmp_path, "p.png", {"prompt": "a sks dog", "seed": 7})
    assert api.read_output_parameters(fine)["seed"] == 7 and "seed_out_of_range" not in api.read_output_parameters(fine)
    json.dumps(params)  # still plain JSON values
