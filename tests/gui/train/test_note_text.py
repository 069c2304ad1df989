"""Engine notes said for an artist; the engine's own line is kept for Details."""

from __future__ import annotations

from alchemy_gui.train.note_text import artist_note


def test_setting_changes_become_plain_sentences():
    assert artist_note("mixed_precision: auto → no (the best precision on cpu)") == "Using full precision on this CPU."
    assert artist_note("mixed_precision: auto → bf16 (the best precision on cuda)") == \
        "Using half precision (bfloat16) on this GPU."
    assert artist_note("gradient_checkpointing: auto → off (without it the run needs 0.1 GiB)").startswith("Enough memory")
    assert artist_note("compile: auto → off (auto: off on cpu, where compiling takes minutes; bench/"
                       "compile_bench.py)") == "Compiling the model is off on this CPU."
    assert artist_note("steps: 100 → 50 (fit to memory)") == "Steps set to 50 for this computer."


def test_other_notes_are_left_as_they_are():
    assert artist_note("peak memory 1.2 GiB RAM") == "peak memory 1.2 GiB RAM"
