"""One sync: fetch every feed (conditionally), fetch the pages of its new and edited items,
ingest them through ``RAG.add``, then record what was seen.

Order is what makes it safe. Pages are downloaded and extracted first, each into a JSON record
under ``<index>/feeds/<feed>/`` (written whole, then renamed); then one ``RAG.add`` ingests them
(its usual dedup, chunking, checks and atomic commits); only then is the feed's state (ETag,
Last-Modified, items seen) written, in one transaction per feed. A crash or timeout anywhere
before that leaves the feed as it was: the next sync does the work again, and the ingest skips
what already went in. An item whose page fails is reported and left unseen, so it is retried."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from rag.documents.articles import terminal_safe
from rag.errors import FeedNotFoundError
from rag.feeds.extract import ExtractError, FeedItem, ParsedFeed, article_record, page_article, parse_feed
from rag.feeds.fetch import Fetched, Fetcher, FetchError, Limits
from rag.feeds.state import Feed, FeedState, ItemState, SeenItem
from rag.index.files import atomic_write
from rag.index.locks import file_lock
from rag.ingest.formats import load_bytes
from rag.results import IngestReport

if TYPE_CHECKING:
    from rag.api import RAG

SYNC_LOCK = "feeds.lock"
PAGES_DIR = "feeds"  # inside the index directory: the extracted records the articles came from
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ItemError:
    item: str  # the item's link, else its guid
    reason: str


@dataclass
class FeedResult:
    """What one sync did with one feed."""

    url: str
    title: str | None = None
    status: str = "unchanged"  # "updated", "unchanged" (304, or nothing new) or "failed"
    error: str | None = None  # why the feed itself could not be read
    added: list[str] = field(default_factory=list)  # article ids
    updated: list[str] = field(default_factory=list)
    skipped: int = 0  # items already seen, already indexed, or duplicates of indexed content
    errors: list[ItemError] = field(default_factory=list)

    def detail(self) -> str:
        if self.error:
            return self.error
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{self.skipped} already indexed"]
        return ", ".join(parts) + (f", {len(self.errors)} failed" if self.errors else "")


@dataclass
class SyncReport:
    feeds: list[FeedResult] = field(default_factory=list)
    ingest: IngestReport | None = None
    seconds: float = 0.0

    @property
    def added(self) -> list[str]:
        return [a for f in self.feeds for a in f.added]

    @property
    def updated(self) -> list[str]:
        return [a for f in self.feeds for a in f.updated]

    @property
    def errors(self) -> list[tuple[str, ItemError]]:
        """(feed URL, error) for every item and feed that failed."""
        out = [(f.url, ItemError(f.url, f.error)) for f in self.feeds if f.error]
        return out + [(f.url, e) for f in self.feeds for e in f.errors]

    def summary(self) -> str:
        failed = sum(1 for f in self.feeds if f.status == "failed")
        failed_items = sum(len(f.errors) for f in self.feeds)
        return (
            f"{len(self.feeds)} feed{'s' if len(self.feeds) != 1 else ''} synced ({failed} failed): "
            f"{len(self.added)} added, {len(self.updated)} updated, {sum(f.skipped for f in self.feeds)} already indexed, "
            f"{failed_items} item{'s' if failed_items != 1 else ''} failed in {self.seconds:.1f}s"
        )

    def rows(self) -> list[list[str]]:
        """[feed, result, detail] per feed, then [feed, "item failed", "link: reason"] per item error."""
        rows = [[f.title or f.url, f.status, f.detail()] for f in self.feeds]
        rows += [[f.title or f.url, "item failed", f"{e.item}: {e.reason}"] for f in self.feeds for e in f.errors]
        return [[terminal_safe(c) for c in row] for row in rows]


@dataclass
class _Pending:
    """An item whose page was fetched and extracted, written as ``path``, waiting for the ingest."""

    feed: Feed
    item: FeedItem
    path: Path
    article_id: str
    content_hash: str


def _read_feed(feed: Feed, fetcher: Fetcher, full: bool) -> Fetched:
    """The feed's bytes (or a 304); a local feed file is "not modified" while its size and mtime stay.
    ``full`` asks without validators (also when items failed last time: a 304 would hide them)."""
    if not feed.is_local:
        return fetcher.get(feed.url, None if full else feed.etag, None if full else feed.last_modified)
    path = Path(feed.url)
    try:
        info = path.stat()
        stamp = f"local:{info.st_mtime_ns}:{info.st_size}"
        if not full and feed.etag == stamp:
            return Fetched(feed.url, 304, b"", etag=stamp)
        if info.st_size > fetcher.limits.max_bytes:
            raise FetchError(f"too large: {info.st_size:,} bytes (RAG_FEED_MAX_BYTES={fetcher.limits.max_bytes:,})")
        return Fetched(feed.url, 200, path.read_bytes(), etag=stamp)
    except OSError as e:
        raise FetchError(f"cannot read {path} ({e.strerror or e})") from None


def _record_path(index_dir: Path, feed: Feed, item: FeedItem) -> Path:
    import hashlib

    name = hashlib.sha1(item.guid.encode("utf-8", "replace")).hexdigest()[:20]
    return index_dir / PAGES_DIR / str(feed.id) / f"{name}.json"


def _prepare(index_dir: Path, feed: Feed, parsed: ParsedFeed, item: FeedItem, fetcher: Fetcher) -> _Pending:
    """Fetch and extract one item's page, and write its record; raises FetchError / ExtractError."""
    page = None
    if item.fetchable:
        fetched = fetcher.get(item.link or "")
        page = page_article(fetched.content, fetched.content_type)
    record = article_record(item, parsed.title, page)
    path = _record_path(index_dir, feed, item)
    data = json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8")
    loaded = load_bytes(path, data)  # exactly what the ingest will read: its id and content hash
    if loaded.failures or not loaded.articles:
        raise ExtractError(loaded.failures[0].reason if loaded.failures else "no article in the record")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
    article = loaded.articles[0]
    return _Pending(feed, item, path, article.id, article.content_hash)


def sync(
    rag: RAG, refs: Sequence[str] = (), *, full: bool = False, progress: Progress | None = None,
    ingest_progress: Progress | None = None,
) -> SyncReport:
    """Sync the feeds named in ``refs`` (numbers, URLs or paths; default: all of them).

    ``full`` ignores the stored ETag / Last-Modified and looks at every item again (what is
    indexed is still skipped). ``progress`` gets (items done, items to fetch); ``ingest_progress``
    is ``RAG.add``'s. One sync at a time per index: another one raises IndexBusyError."""
    started = time.perf_counter()
    directory = rag.store.directory
    report = SyncReport()
    with FeedState(directory, rag.store.read_only) as state, file_lock(directory / SYNC_LOCK, "feed sync", wait=False):
        feeds = list({f.id: f for f in ([_find(state, r) for r in refs] if refs else state.feeds())}.values())
        limits = Limits.of(rag.settings)
        with Fetcher(limits) as fetcher, ThreadPoolExecutor(rag.settings.feed_concurrency, "rag-feeds") as pool:
            results = {f.id: FeedResult(f.url, f.title) for f in feeds}
            report.feeds = list(results.values())
            retry = {f.id: full or any(i.last_error for i in state.items(f.id).values()) for f in feeds}
            fetched = dict(zip(results, pool.map(lambda f: _attempt(_read_feed, f, fetcher, retry[f.id]), feeds)))
            todo: list[tuple[Feed, ParsedFeed, FeedItem]] = []
            seen_now: dict[int, list[ItemState]] = {f.id: [] for f in feeds}
            parsed_of: dict[int, ParsedFeed] = {}
            for feed in feeds:
                planned = _plan(rag, state, feed, fetched[feed.id], results[feed.id], full, seen_now[feed.id])
                if planned is not None:
                    parsed_of[feed.id], items = planned
                    todo += [(feed, parsed_of[feed.id], item) for item in items]

            done = itertools.count(1)

            def prepare(job: tuple[Feed, ParsedFeed, FeedItem]) -> _Pending | Exception:
                outcome = _attempt(_prepare, directory, *job, fetcher)
                if progress:
                    progress(next(done), len(todo))  # count() steps atomically under the GIL
                return outcome

            prepared = list(pool.map(prepare, todo))
        pending: list[_Pending] = []
        for (feed, _, item), outcome in zip(todo, prepared):
            if isinstance(outcome, Exception):
                results[feed.id].errors.append(ItemError(item.link or item.guid, str(outcome)))
                seen_now[feed.id].append(ItemState(item.guid, item.link, None, None, str(outcome)))
            else:
                pending.append(outcome)
        if pending:
            report.ingest = rag.add([p.path for p in pending], progress=ingest_progress)
            _apply_ingest(rag, report.ingest, pending, results, seen_now)
        for feed in feeds:
            outcome = fetched[feed.id]
            if isinstance(outcome, Exception) or outcome.not_modified or feed.id not in parsed_of:
                continue
            result = results[feed.id]
            result.status = "updated" if result.added or result.updated else "unchanged"
            state.record_sync(feed, result.status, title=parsed_of[feed.id].title, etag=outcome.etag,
                              last_modified=outcome.last_modified, items=seen_now[feed.id])
    report.seconds = time.perf_counter() - started
    return report


def _plan(
    rag: RAG, state: FeedState, feed: Feed, outcome: Fetched | Exception, result: FeedResult, full: bool,
    seen_now: list[ItemState],
) -> tuple[ParsedFeed, list[FeedItem]] | None:
    """The parsed feed and the items whose pages to fetch, or None when there is nothing to do
    (the feed failed, and that is recorded now, or it was not modified)."""
    if isinstance(outcome, Exception):
        result.status, result.error = "failed", str(outcome)
        state.record_sync(feed, "failed", result.error)
        return None
    if outcome.not_modified:
        state.record_sync(feed, "unchanged", etag=outcome.etag or feed.etag,
                          last_modified=outcome.last_modified or feed.last_modified)
        return None
    try:
        parsed = parse_feed(outcome.content)
    except ExtractError as e:
        result.status, result.error = "failed", str(e)
        state.record_sync(feed, "failed", result.error)
        return None
    result.title = parsed.title or feed.title
    seen = state.items(feed.id)
    fresh = _new_or_edited(parsed, seen, full)
    result.skipped += len(parsed.items) - len(fresh)
    items = []
    for item in fresh:
        # A link indexed already (from another feed, or a file) is not fetched for a new item;
        # an edited one is, to replace its article.
        known = rag.store.find_articles(item.link or "") if item.fetchable and item.guid not in seen else []
        if known:
            result.skipped += 1
            seen_now.append(ItemState(item.guid, item.link, item.fingerprint, known[0]))
        else:
            items.append(item)
    return parsed, items


def _find(state: FeedState, ref: str) -> Feed:
    feed = state.find(ref)
    if feed is None:
        raise FeedNotFoundError(f"no feed matches {ref!r} (see `rag feeds list`)")
    return feed


P = ParamSpec("P")
T = TypeVar("T")


def _attempt(step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | Exception:
    """``step(*args)``, or the FetchError / ExtractError it raised (one item never stops the sync)."""
    try:
        return step(*args, **kwargs)
    except (FetchError, ExtractError) as e:
        return e


def _new_or_edited(parsed: ParsedFeed, seen: dict[str, SeenItem], full: bool) -> list[FeedItem]:
    """Items never seen, edited since (another fingerprint), or that failed last time."""
    out = []
    for item in parsed.items:
        before = seen.get(item.guid)
        if full or before is None or before.fingerprint != item.fingerprint:
            out.append(item)
    return out


def _apply_ingest(
    rag: RAG, ingest: IngestReport, pending: list[_Pending], results: dict[int, FeedResult],
    seen_now: dict[int, list[ItemState]],
) -> None:
    """Turn the ingest's per-file results back into per-item ones."""
    for p in pending:
        result = results[p.feed.id]
        file = ingest.files.get(str(p.path))
        if file is None or file.failures:
            reason = "; ".join(file.failures) if file else "the ingest did not read it"
            result.errors.append(ItemError(p.item.link or p.item.guid, reason))
            seen_now[p.feed.id].append(ItemState(p.item.guid, p.item.link, None, None, reason))
            continue
        article = p.article_id
        if file.added:
            result.added.append(article)
        elif file.updated:
            result.updated.append(article)
        else:  # the same text is indexed already, maybe under another id
            result.skipped += 1
            article = rag.store.article_by_hash(p.content_hash) or article
        seen_now[p.feed.id].append(ItemState(p.item.guid, p.item.link, p.item.fingerprint, article))
