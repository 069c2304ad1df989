"""Fixtures for insertion tests: a project with a trained-looking LoRA on the tiny demo SDXL.

The LoRA is built here with peft (random, non-zero B weights so it changes the output) and saved
in the diffusers layout ``StableDiffusionXLPipeline.save_lora_weights`` writes: a test fixture,
not the trainer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from insert_helpers import make_demo_lora


@pytest.fixture(scope="session")
def demo_lora_file(shared_cache) -> Path:
    target = shared_cache / "test_loras" / "lora.safetensors"
    return target if target.exists() else make_demo_lora(target)


@pytest.fixture()
def project(demo_lora_file):
    """Project 'Rex' (sks dog) with one run holding the demo LoRA."""
    from alchemy_engine.project import create_project

    proj = create_project("Rex", class_noun="dog", token="sks")
    run = proj.runs_dir / "run-1"
    run.mkdir(parents=True)
    shutil.copyfile(demo_lora_file, run / "lora.safetensors")
    return proj


@pytest.fixture(scope="session")
def session():
    """One InsertionSession for the whole test session, as the GUI would hold one."""
    from alchemy_engine.insertion import InsertionSession

    return InsertionSession()
