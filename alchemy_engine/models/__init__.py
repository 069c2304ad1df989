"""What a model is and where it comes from.

``sources`` (what an SDXL source / inventory entry is), ``inventory`` (the one resolver of names,
paths, the Hugging Face cache and ``demo`` for SDXL, SAM, the detector and LoRA files), ``sdxl``,
``sam``, ``detector`` (loading), ``device`` (device/precision policy), ``probe`` (reading
safetensors headers), ``lora_files`` (reading and checking LoRA files), ``resident`` (models kept
loaded between jobs) and ``demo`` (tiny random models; it imports the others, never the reverse).
Import the submodule you need: this package imports nothing, so importing it is free.
"""
