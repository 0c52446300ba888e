"""A watched folder (watchfiles): files that appear or change are ingested, the articles of
files that go are removed, so the index follows the folder.

Every change goes through ``RAG.add`` / ``RAG.remove``, with the same per-file results and
errors as ``rag ingest``. Bursts (a copy of many files, an editor's save-rename dance) are
gathered for ``debounce_ms`` and ingested together. Paths are made absolute first, so the
articles' origins are the paths the watcher reports."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import RagError
from rag.ingest.formats import SIDECAR_SUFFIX, SUPPORTED_SUFFIXES, load_file
from rag.results import IngestReport

if TYPE_CHECKING:
    from rag.api import RAG

log = logging.getLogger(__name__)


class StopEvent(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class WatchBatch:
    """What one gathered burst of changes did."""

    ingest: IngestReport | None = None  # for the files that appeared or changed
    removed: list[str] = field(default_factory=list)  # article ids of files that went (or records a file lost)
    gone: list[str] = field(default_factory=list)  # the paths that went

    def summary(self) -> str:
        parts = [self.ingest.summary()] if self.ingest else []
        if self.gone or self.removed:
            parts.append(f"{len(self.removed)} article(s) removed with {len(self.gone)} file(s) gone")
        return "; ".join(parts) or "nothing to do"


def _belongs(origin: str, path: str) -> bool:
    """Whether an article with ``origin`` came from ``path`` (a file, a record in it, or a folder's file)."""
    return origin == path or origin.startswith((path + ":", path + "[", path + "/"))


def _articles_of(rag: RAG, paths: Iterable[str]) -> dict[str, list[str]]:
    """Article ids by the watched path they came from."""
    wanted = list(paths)
    out: dict[str, list[str]] = {p: [] for p in wanted}
    for a in rag.articles():
        for p in wanted:
            if _belongs(a.origin, p):
                out[p].append(a.id)
    return out


def _targets(changed: Iterable[Path]) -> list[Path]:
    """The files to ingest for changed paths: a sidecar stands for its article file."""
    out: set[Path] = set()
    for path in changed:
        if path.name.endswith(SIDECAR_SUFFIX):
            stem = path.name[: -len(SIDECAR_SUFFIX)]
            out.update(p for p in path.parent.glob(f"{stem}.*") if p.suffix.lower() in SUPPORTED_SUFFIXES and p != path)
        elif path.is_file() or path.is_dir():  # a folder moved in may come as one event: RAG.add walks it
            out.add(path)
    return sorted(out)


def apply_changes(rag: RAG, changed: Iterable[Path], gone: Iterable[Path]) -> WatchBatch:
    """Ingest ``changed`` files and remove the articles of ``gone`` paths (files or folders)."""
    batch = WatchBatch()
    gone_paths = sorted({str(p) for p in gone if not p.exists()})
    files = _targets(changed)
    stale: list[str] = []
    if gone_paths:
        batch.gone = gone_paths
        stale += [i for ids in _articles_of(rag, gone_paths).values() for i in ids]
    if files:
        batch.ingest = rag.add(files)
        # A changed file of records may have lost some: their articles go too.
        before = _articles_of(rag, [str(f) for f in files])
        for f in files:
            current = {a.id for a in load_file(f, rag.settings.max_file_bytes).articles}
            stale += [i for i in before[str(f)] if i not in current]
    stale = list(dict.fromkeys(stale))
    if stale:
        batch.removed = rag.remove(stale)
    return batch


def initial_changes(rag: RAG, directory: Path) -> WatchBatch:
    """Bring the index up to the folder as it is now: ingest it (what is indexed is skipped) and
    remove the articles of its files that went while nobody watched."""
    indexed = {a.origin for a in rag.articles() if _belongs(a.origin, str(directory))}  # a record's origin is its file
    missing = [Path(p) for p in sorted(indexed) if not Path(p).exists()]
    batch = apply_changes(rag, [], missing)
    batch.ingest = rag.add([directory])
    return batch


def watch(
    rag: RAG, directory: str | Path, on_batch: Callable[[WatchBatch], None], *, stop: StopEvent | None = None,
    debounce_ms: int | None = None, initial: bool = True, on_ready: Callable[[], None] | None = None,
) -> None:
    """Watch ``directory`` until ``stop`` is set or Ctrl-C (which ends it cleanly: a commit in
    progress is rolled back whole). ``on_batch`` gets each :class:`WatchBatch`; ``initial`` first
    brings the index up to the folder as it is; ``on_ready`` is called once the watch is set up."""
    import watchfiles

    folder = Path(directory).expanduser().resolve()
    if not folder.is_dir():
        raise RagError(f"{folder} is not a folder: `rag watch` watches a folder")
    index = rag.store.directory.resolve()

    def wanted(change: watchfiles.Change, path: str) -> bool:
        p = Path(path)
        if p == index or index in p.parents:  # the index inside the watched folder: its own writes
            return False
        return not any(part.startswith(".") for part in p.relative_to(folder).parts)  # hidden, as `rag ingest` skips them

    debounce = debounce_ms or rag.settings.watch_debounce_ms
    started = False
    # yield_on_timeout: the first (empty) yield says the watch is set up; only then is the folder
    # scanned, so a file that arrives during the scan is not missed (it comes in the next batch).
    for changes in watchfiles.watch(folder, watch_filter=wanted, debounce=debounce, stop_event=stop, raise_interrupt=False,
                                    rust_timeout=500, yield_on_timeout=True):
        if not started:
            started = True
            if initial:
                on_batch(initial_changes(rag, folder))
            if on_ready:
                on_ready()
        if not changes:
            continue
        changed = [Path(p) for kind, p in changes if kind != watchfiles.Change.deleted]
        gone = [Path(p) for kind, p in changes if kind == watchfiles.Change.deleted]
        try:
            batch = apply_changes(rag, changed, gone)
        except RagError as e:  # e.g. the index is busy or read-only: say so, keep watching
            log.error("%s", e)
            continue
        if batch.ingest or batch.removed or batch.gone:
            on_batch(batch)
