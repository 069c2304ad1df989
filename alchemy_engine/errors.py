"""Exceptions whose message is meant for the user, as is."""

from __future__ import annotations


class AlchemyError(Exception):
    """A problem the user can fix; the message says what to do. Shown without a traceback."""


class InvalidRequest(AlchemyError, ValueError):
    """A request failed `validate()` before any heavy work started."""


class ModelError(AlchemyError):
    """A model file or folder is missing, of the wrong kind, or cannot be loaded."""


class ImageImportError(AlchemyError):
    """A photo cannot be imported; the message names the file and the reason."""


class ProjectError(AlchemyError):
    """A project is missing, locked by another process, or its files are damaged."""


class WriteFailed(AlchemyError, OSError):
    """A file could not be written (disk full, read-only, I/O error); the message names the file
    and the cause. Nothing partial was left under the file's final name."""


class JobCancelled(Exception):
    """Raised inside a job when its CancelToken is set; not an error for the user."""
