"""Load the engine's libraries in the background once the window is up (see ``api.warm_up``)."""

from __future__ import annotations

import logging
import threading

from alchemy_engine import api

log = logging.getLogger(__name__)


def _warm_up() -> None:
    try:
        api.warm_up()
    except Exception:
        # Nothing is waiting on this thread: the first job imports the same libraries again and
        # reports a broken install to the user with its own message; here we only leave a trace.
        log.exception("Loading the engine's libraries ahead of the first job failed")


def start_warm_up() -> threading.Thread:
    """Start importing torch and friends on a plain thread (not a job: nothing shows as busy and a
    job started meanwhile simply waits on Python's import lock). Not a daemon thread: quitting
    mid-import would tear the interpreter down under a half-initialised C extension."""
    thread = threading.Thread(target=_warm_up, name="engine-warm-up")
    thread.start()
    return thread
