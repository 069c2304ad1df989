"""Memory: how much a job will need, what it used, and whether jobs fit together.

``trace`` (an SDXL UNet on the ``meta`` device and the activation traces of a training step and of
an inference step), ``training`` (a training request's peak estimate, ``--fit``, the ``auto``
choices of gradient checkpointing and weight storage), ``phases`` (that estimate per phase:
loading, caching, training; host RAM and device memory), ``inference`` (images per denoising call,
UNet storage on the CPU), ``peaks`` (measured peaks per phase), ``report`` (measured next to
estimated after a run, ``memory.json``), ``footprints`` (what each job holds, the memory budget,
whether jobs fit together).

It sits below the two stages and imports only ``models`` and the basics; the stages and
``studies/job_memory.py`` pass their requests in, read by their fields. Import the submodule you
need: this package imports nothing, so importing it is free (``trace``, ``training`` and ``phases``
import torch).
"""
