"""Exceptions raised by the public API. Messages say what went wrong and how to fix it."""

from __future__ import annotations


class RagError(Exception):
    """Base class for every error this package raises on purpose."""


class ModelNotFoundError(RagError):
    """A model name or path could not be resolved to a usable model."""


class ModelIntegrityError(RagError):
    """A model file does not have the expected size or sha256."""


class IndexMismatchError(RagError):
    """The index was built with settings (embedder, schema) that differ from the ones asked for."""


class IndexCorruptError(RagError):
    """An index file is unreadable or inconsistent."""


class IndexBusyError(RagError):
    """Another process is writing to the index and the caller asked not to wait."""


class FeedNotFoundError(RagError):
    """No subscribed feed matches the number, URL or path given."""


class LoadError(RagError):
    """One input file (or record) could not be turned into articles."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class RemoteModelError(RagError):
    """A remote (OpenAI-compatible) model server could not be reached or refused the request."""
