"""Turn files into Articles: one loader per format, and a walker that reports every failure.

Formats: ``.txt`` (wire style: optional title, ``By`` byline, ``CITY (AGENCY) -`` dateline),
``.md`` (optional YAML front matter, ``# Title``), ``.html`` (main text via trafilatura),
``.json`` / ``.jsonl`` (records), and RSS / Atom feeds (``.rss``, ``.atom``, ``.xml``).
A single-article file may have a sidecar ``<stem>.meta.json`` with metadata overrides.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from rag.documents.articles import MAX_TITLE_CHARS, Article, clean_field, read_date, terminal_safe
from rag.errors import LoadError
from rag.ingest.formats.feeds import load_feed
from rag.ingest.formats.html import load_html
from rag.ingest.formats.plain import load_md, load_txt
from rag.ingest.formats.reading import (
    LoadFailure,
    LoadResult,
    LoadWarning,
    Warn,
    _check_not_binary,
    _ignore,
    _read_bounded,
    _read_bytes,
    decode_text,
)
from rag.ingest.formats.records import _load_records, _records_from_json, _records_from_jsonl

SIDECAR_SUFFIX = ".meta.json"


TextLoader = Callable[[Path, str, Warn], list[Article]]
BytesLoader = Callable[[Path, bytes, Warn], list[Article]]
_TEXT_LOADERS: dict[str, TextLoader] = {".txt": load_txt, ".text": load_txt, ".md": load_md, ".markdown": load_md}
_BYTES_LOADERS: dict[str, BytesLoader] = {
    ".html": load_html,
    ".htm": load_html,
    ".rss": load_feed,
    ".atom": load_feed,
    ".xml": load_feed,
}
_RECORD_FORMATS = {".json": _records_from_json, ".jsonl": _records_from_jsonl, ".ndjson": _records_from_jsonl}
SUPPORTED_SUFFIXES = tuple(sorted({*_TEXT_LOADERS, *_BYTES_LOADERS, *_RECORD_FORMATS}))


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _apply_sidecar(path: Path, articles: list[Article], data: bytes | None, warn: Warn = _ignore) -> list[Article]:
    if data is None or len(articles) != 1:
        return articles
    sidecar = sidecar_path(path)
    try:
        meta = json.loads(data.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise LoadError(str(path), f"sidecar {sidecar.name} is not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise LoadError(str(path), f"sidecar {sidecar.name} must hold a JSON object")
    changes: dict[str, Any] = {}
    for name in ("title", "source", "url", "author"):
        if name in meta:
            changes[name] = clean_field(meta[name], MAX_TITLE_CHARS if name == "title" else 2000)
    if "published" in meta:
        changes["published"], problem = read_date(meta["published"])
        if problem:
            warn(f"sidecar {sidecar.name}: published date {problem}; the article is kept without a date")
    if explicit_id := clean_field(meta.get("id")):
        changes["key"] = f"id:{explicit_id}"
    changes = {k: v for k, v in changes.items() if v is not None or k in ("url",)}
    return [articles[0].with_metadata(**changes)]


def read_file(path: Path, max_bytes: int = 25_000_000) -> tuple[bytes, bytes | None]:
    """The bytes of a supported file and of its sidecar (None when it has none); raises LoadError.
    Split from parsing so a distributed engine can read on one machine and parse on another."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        if not path.exists():
            raise LoadError(str(path), "no such file")
        raise LoadError(
            str(path),
            f"unsupported file type '{suffix or '(none)'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})",
        )
    data = _read_bytes(path, max_bytes)
    sidecar = sidecar_path(path)
    if suffix in _RECORD_FORMATS or not sidecar.is_file():
        return data, None
    try:
        return data, _read_bounded(sidecar, max_bytes)
    except OSError as e:
        raise LoadError(str(path), f"cannot read sidecar {sidecar.name}: {e}") from None


def load_bytes(path: Path, data: bytes, sidecar: bytes | None = None) -> LoadResult:
    """Parse the bytes ``read_file`` returned for ``path`` into articles; every problem becomes a
    LoadFailure, never an exception. Touches no file: ``path`` only names the articles."""
    result = LoadResult()
    suffix = path.suffix.lower()

    def warn(message: str) -> None:
        result.warnings.append(LoadWarning.of(path, message))

    try:
        _check_not_binary(path, data)
        if suffix in _RECORD_FORMATS:
            _load_records(path, _RECORD_FORMATS[suffix](path, decode_text(path, data, warn)), result)
            if not result.articles and not result.failures:
                raise LoadError(str(path), "no records")
        elif suffix in _TEXT_LOADERS:
            text = decode_text(path, data, warn)
            result.articles = _apply_sidecar(path, _TEXT_LOADERS[suffix](path, text, warn), sidecar, warn)
        else:
            result.articles = _apply_sidecar(path, _BYTES_LOADERS[suffix](path, data, warn), sidecar, warn)
    except LoadError as e:
        result.failures.append(LoadFailure.of(e.path, e.reason))
    except RecursionError:
        result.failures.append(LoadFailure.of(path, "nested too deeply to read (the parser ran out of stack)"))
    except Exception as e:  # a parser bug must not sink the batch
        result.failures.append(LoadFailure.of(path, f"could not parse ({type(e).__name__}: {e})"))
    return result


def name_problem(path: Path) -> str | None:
    """Why a file's name cannot be indexed: one that is not UTF-8 (Python holds its bad bytes
    as lone surrogates, which SQLite, JSON and terminals all refuse)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8; rename it (e.g. `convmv -f latin1 -t utf8`) to index it"
    return None


def shown_path(path: Path | str) -> str:
    """A path as reports and terminals show it: undecodable bytes and controls as escapes."""
    return terminal_safe(str(path))


def load_file(path: Path, max_bytes: int = 25_000_000) -> LoadResult:
    """Load one file into articles; every problem becomes a LoadFailure, never an exception."""
    if problem := name_problem(path):
        return LoadResult(failures=[LoadFailure.of(shown_path(path), problem)])
    try:
        data, sidecar = read_file(path, max_bytes)
    except LoadError as e:
        return LoadResult(failures=[LoadFailure.of(e.path, e.reason)])
    except OSError as e:
        return LoadResult(failures=[LoadFailure.of(path, f"cannot read ({e.strerror or e})")])
    return load_bytes(path, data, sidecar)


def _walk(top: Path, follow_symlinks: bool, skipped: list[LoadFailure]) -> Iterator[Path]:
    """Files below ``top`` in sorted path order (hidden ones and sidecars skipped), yielded as
    the walk reaches them: a depth-first walk over each folder's sorted entries, so only one
    listing per level is held, never the archive's paths (100,000 files must not cost the
    driver 100,000 paths), and with a stack of iterators rather than recursion (a 1,100-deep
    tree must not hit Python's recursion limit). Symbolic links that lead out of ``top`` are
    skipped with a reason unless ``follow_symlinks``; followed folders are entered once (a link
    back up would loop)."""
    root = top.resolve()
    seen: set[tuple[int, int]] = set()
    levels: list[Iterator[os.DirEntry[str]]] = []
    follow_hint = "pass --follow-symlinks (add(..., follow_symlinks=True)) to index what links point to"

    def enter(folder: Path) -> None:
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in seen:
                return
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as it:
                levels.append(iter(sorted(it, key=lambda e: e.name)))
        except OSError as e:
            skipped.append(LoadFailure.of(shown_path(folder), f"cannot read the folder ({e.strerror or e})"))

    enter(top)
    while levels:
        entry = next(levels[-1], None)
        if entry is None:
            levels.pop()
            continue
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if entry.is_symlink():
                target = path.resolve()
                if not follow_symlinks and not target.is_relative_to(root):
                    skipped.append(LoadFailure.of(shown_path(path), f"skipped: a symbolic link to "
                                               f"{shown_path(target)}, outside {shown_path(top)}; {follow_hint}"))
                    continue
                if target.is_dir():
                    if follow_symlinks:  # inside the folder, its files are reached through the real path
                        enter(path)
                    continue
                if not target.exists():
                    skipped.append(LoadFailure.of(shown_path(path), "skipped: a broken symbolic link"))
                    continue
            if entry.is_dir():
                enter(path)
            elif entry.is_file() and not entry.name.endswith(SIDECAR_SUFFIX):
                yield path
        except OSError as e:
            skipped.append(LoadFailure.of(shown_path(path), f"cannot read ({e.strerror or e})"))


def iter_files(
    paths: Iterable[str | Path], follow_symlinks: bool = False, skipped: list[LoadFailure] | None = None
) -> Iterator[Path]:
    """Files named directly, plus every file below named directories (hidden ones and sidecars
    skipped; links out of a directory too, unless ``follow_symlinks``: see :func:`_walk`).
    What was skipped, and why, is appended to ``skipped``."""
    skipped = skipped if skipped is not None else []
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            yield from _walk(path, follow_symlinks, skipped)
        else:
            yield path


def load_windows(
    paths: Iterable[str | Path], files_per_window: int, max_bytes: int = 25_000_000, follow_symlinks: bool = False
) -> Iterator[LoadResult]:
    """Every file under ``paths``, loaded ``files_per_window`` files at a time: each window's
    articles, and its failures (the walk's among the files') and warnings in file order. The
    next window is read only when this one has been taken."""
    skipped: list[LoadFailure] = []
    files = iter_files(paths, follow_symlinks, skipped)
    while True:
        window = LoadResult()
        for path in islice(files, files_per_window):
            window.failures.extend(skipped)  # what the walk skipped before reaching this file
            skipped.clear()
            window.extend(load_file(path, max_bytes))
        window.failures.extend(skipped)
        skipped.clear()
        if not (window.articles or window.failures or window.warnings):
            return
        yield window


def load_paths(paths: Iterable[str | Path], max_bytes: int = 25_000_000, follow_symlinks: bool = False) -> LoadResult:
    """Load every file under ``paths``. Failures are collected per file, the rest still loads."""
    return next(load_windows(paths, sys.maxsize, max_bytes, follow_symlinks), LoadResult())


__all__ = [
    "SIDECAR_SUFFIX", "SUPPORTED_SUFFIXES", "LoadFailure", "LoadResult", "LoadWarning", "decode_text", "iter_files",
    "load_bytes", "load_file", "load_paths", "load_windows", "name_problem", "read_file", "shown_path", "sidecar_path",
]
