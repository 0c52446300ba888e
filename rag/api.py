"""The public facade. The CLI, the browser app and evaluation scripts all go through ``RAG``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Literal, Unpack

from rag.answer import retrieval
from rag.answer.dates import resolve_dates
from rag.answer.evidence import select_evidence
from rag.answer.followups import needs_history
from rag.answer.pipeline import AnswerGuards, History, Phase, Request, condense_question, stream_answer
from rag.answer.prompts import Prompts
from rag.conversations import ConversationStore
from rag.documents.articles import Article
from rag.documents.chunking import ChunkerSettings
from rag.errors import RagError
from rag.index.check import CheckReport, check_index, repair_index
from rag.index.locks import ingest_lock
from rag.index.store import Store
from rag.ingest.driver import OnFile, Progress, ingest, ingest_articles
from rag.ingest.engines import Engine
from rag.ingest.engines.local import LocalEngine
from rag.models.embedding import CachingEmbedder, Embedder, load_embedder
from rag.models.llama import Generator, LlamaCppGenerator
from rag.models.registry import installed_llms, resolve_llm
from rag.models.remote import REMOTE_LLM, OpenAICompatibleGenerator
from rag.options import AskFields, AskOptions, DateLike
from rag.results import Answer, ArticleInfo, Evidence, Hit, IndexInfo, IngestReport, final_answer
from rag.settings import Settings
from rag.stories import service as stories
from rag.stories.results import Briefing, Related, Timeline

log = logging.getLogger(__name__)
def _as_date(value: DateLike, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RagError(f"{name}={value!r} is not a date; use YYYY-MM-DD") from None


class RAG:
    """Question answering over an index of news articles.

    >>> rag = RAG.open("index/")                    # builds from seeds/ when new and empty
    >>> rag.add(["more-articles/"]).summary()
    >>> answer = rag.ask("What did Türkiye propose?")
    >>> answer.text, answer.citations[0].quote
    """

    def __init__(self, settings: Settings, store: Store, embedder: Embedder, generator: Generator | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._cached_embedder = CachingEmbedder(embedder)  # questions and evidence sentences
        self.prompts = Prompts(settings.prompts_dir)
        self._generators: dict[str, Generator] = {}
        if generator is not None:
            self._generators[settings.llm] = generator
        self._generator_lock = threading.Lock()
        self.conversations = ConversationStore(store.directory)  # saved chats, per user: rag.conversations

    # ------------------------------------------------------------ lifecycle

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        llm: Generator | str | None = None,
        seed: bool = True,
        progress: Progress | None = None,
    ) -> RAG:
        """Open (or create) the index at ``index_dir``.

        ``llm`` is a bundled model name, a .gguf path or a :class:`Generator`; it is loaded on first
        use. A new, empty index is filled from ``settings.seeds_dir`` unless ``seed=False``.
        """
        settings = settings or Settings()
        if index_dir is not None:
            settings = settings.model_copy(update={"index_dir": Path(index_dir)})
        if isinstance(llm, str):
            settings = settings.model_copy(update={"llm": llm})
        embedder = embedder or load_embedder(settings.embedder, settings.embed_batch_size, cache_dir=settings.cache_dir)
        store = Store.open(
            settings.resolved_index_dir(),
            embedder.name,
            embedder.dim,
            ChunkerSettings(settings.chunk_tokens, settings.chunk_overlap_tokens),
        )
        rag = cls(settings, store, embedder, llm if isinstance(llm, Generator) else None)
        # Only an index never written to is seeded: not one the user emptied, nor a read-only one.
        if seed and settings.seeds_dir and store.generation == 0 and not store.read_only and store.counts()[0] == 0:
            report = rag.add([settings.seeds_dir], progress=progress)
            log.info("indexed the seed articles: %s", report.summary())
        return rag

    # Settings an open index fixes: changing them needs another index, not another view.
    _INDEX_SETTINGS = frozenset({"index_dir", "embedder", "chunk_tokens", "chunk_overlap_tokens", "seeds_dir"})

    def with_settings(self, **changes: object) -> RAG:
        """This RAG with some per-question settings changed (ranking, evidence, budget, model...),
        sharing the open index, the embedder, its caches and the loaded models. For comparing
        variants side by side without reloading anything."""
        fixed = self._INDEX_SETTINGS & changes.keys()
        if fixed:
            raise RagError(f"{', '.join(sorted(fixed))} cannot change on an open index; open another index")
        view = RAG.__new__(RAG)
        view.__dict__.update(self.__dict__)
        view.settings = self.settings.model_copy(update=changes)
        view.prompts = Prompts(view.settings.prompts_dir)
        return view

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> RAG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generator(self) -> Generator:
        """The default answering model (``settings.llm``), loaded on first use, shared by every caller."""
        return self.generator_for(None)

    def generator_for(self, llm: str | None) -> Generator:
        """The generator for a bundled model name, a .gguf path, or ``openai-compatible`` (the
        server in ``settings.remote_llm_*``); one instance per model, shared."""
        name = llm or self.settings.llm
        with self._generator_lock:
            if name not in self._generators and name == REMOTE_LLM:
                self._generators[name] = OpenAICompatibleGenerator.from_settings(self.settings)
            elif name not in self._generators:
                path = resolve_llm(name, self.settings.cache_dir)
                self._generators[name] = LlamaCppGenerator(
                    name, path, n_ctx=self.settings.n_ctx, n_threads=self.settings.n_threads, seed=self.settings.seed
                )
            return self._generators[name]

    def clear_caches(self) -> None:
        """Forget cached question and sentence vectors (benchmarks measure cold latencies)."""
        self._cached_embedder.clear()

    def available_llms(self) -> list[str]:
        """Model names callers may pick: the default, the installed bundled LLMs, and the remote
        server when one is configured. Nothing else, so a request cannot load arbitrary files."""
        names = [self.settings.llm, *installed_llms()]
        if self.settings.remote_llm_base_url:
            names.append(REMOTE_LLM)
        return list(dict.fromkeys(names))

    def preload(self, llm: str | None = None) -> threading.Thread:
        """Load a model in a background thread (so a UI is usable while it loads)."""
        generator = self.generator_for(llm)
        thread = threading.Thread(target=getattr(generator, "load", lambda: None), daemon=True, name="rag-model-load")
        thread.start()
        return thread

    def model_ready(self, llm: str | None = None) -> bool:
        generator = self._generators.get(llm or self.settings.llm)
        return generator is not None and bool(getattr(generator, "loaded", True))

    # ------------------------------------------------------------ articles

    def add(
        self,
        paths: Iterable[str | Path] | str | Path,
        progress: Progress | None = None,
        wait: bool = True,
        on_wait: Callable[[str], None] | None = None,
        *,
        engine: Literal["local", "ray"] = "local",
        ray_address: str | None = None,
        workers: int | None = None,
        follow_symlinks: bool = False,
        on_file: OnFile | None = None,
    ) -> IngestReport:
        """Index files and directories (recursively). Bad files are reported, never fatal;
        content already indexed is skipped; a changed article replaces its old version.
        Symbolic links out of a named folder are skipped, with a reason, unless ``follow_symlinks``.

        One ingest at a time per index (any process): while another runs, this one waits
        (``on_wait`` gets a "waiting for another ingest (pid N …)" message) or, with
        ``wait=False``, raises :class:`IndexBusyError`. Questions are answered meanwhile.

        The report keeps exact counts and the first ``IngestReport.keep`` ids, failures and file
        results; ``on_file`` gets every file's result as soon as the file is done.

        ``engine="ray"`` parses, chunks and embeds on Ray actors (:mod:`rag.ingest.engines.ray`): on the
        cluster at ``ray_address`` (default ``settings.ray_address``; none starts a local Ray)
        with ``workers`` embedding actors (default ``settings.ray_workers``); this process
        still writes the index. Without Ray installed, the local engine runs and a warning
        says why (``report.engine`` tells which ran); ``progress`` then counts articles."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if engine not in ("local", "ray"):
            raise RagError(f"unknown ingest engine {engine!r}; choose 'local' or 'ray'")
        if engine == "ray":
            from rag.ingest.engines import ray as ray_engine

            if not ray_engine.ray_available():
                log.warning("%s; ingesting with the local engine", ray_engine.unavailable_message())
                engine = "local"
        with ingest_lock(self.store.directory, wait, on_wait or log.warning):
            chosen: Engine = LocalEngine(self.embedder)
            if engine == "ray":
                chosen = ray_engine.RayEngine(self.embedder, address=ray_address or self.settings.ray_address,
                                              workers=workers or self.settings.ray_workers)
            return ingest(paths, self.store, chosen, self.settings.max_file_bytes, progress, follow_symlinks, on_file)

    def remove(self, refs: str | Sequence[str]) -> list[str]:
        """Remove articles by id (or id prefix, URL, or the file path they came from).
        Returns the removed ids; raises when a reference matches nothing."""
        if isinstance(refs, str):
            refs = [refs]
        ids: list[str] = []
        for ref in refs:
            found = self.store.find_articles(ref)
            if not found:
                raise RagError(f"no indexed article matches '{ref}' (see `rag info --articles` for ids)")
            ids.extend(found)
        ids = list(dict.fromkeys(ids))
        self.store.commit(remove=ids)
        return ids

    def check(self, repair: bool = False) -> CheckReport:
        """Verify that SQLite, BM25 and FAISS agree (see :func:`rag.index.check.check_index`);
        ``repair`` fixes what can be fixed first (:func:`rag.index.check.repair_index`)."""
        if repair:  # damaged vectors are re-embedded with this index's embedder
            report = repair_index(self.store.directory, embedder=self.embedder)
            self.store.refresh()
            return report
        return check_index(self.store.directory)

    def articles(self, search: str | None = None) -> list[ArticleInfo]:
        """Indexed articles, newest first; ``search`` keeps those whose title, source, author, id
        or URL contains it (case-insensitive), or whose headline or text has all its words."""
        articles = self.store.articles()
        if search and search.strip():
            needle, in_text = search.strip().casefold(), self.store.articles_with_words(search)
            articles = [a for a in articles if a.id in in_text
                        or any(needle in (v or "").casefold() for v in (a.title, a.source, a.author, a.id, a.url))]
        return articles

    def article(self, article_id: str) -> Article | None:
        """The indexed article's full record (text and metadata, with its id), for :meth:`restore`."""
        return self.store.article_record(article_id)

    def restore(self, articles: Sequence[Article], progress: Progress | None = None) -> IngestReport:
        """Index again articles read with :meth:`article` before they were removed (an undo):
        same id, text and metadata, embedded again; content indexed meanwhile is a duplicate."""
        with ingest_lock(self.store.directory, True, log.warning):
            return ingest_articles(articles, self.store, LocalEngine(self.embedder), progress)

    def article_text(self, article_id: str) -> str | None:
        return self.store.article_text(article_id)

    def info(self) -> IndexInfo:
        n_articles, n_chunks = self.store.counts()
        m = self.store.manifest
        return IndexInfo(
            self.store.directory, n_articles, n_chunks, m.embedder, m.dim, m.chunk_tokens, m.chunk_overlap_tokens,
            self.settings.llm, self.model_ready(),
        )

    # ------------------------------------------------------------ questions

    def search(
        self,
        query: str,
        k: int | None = None,
        since: DateLike = None,
        until: DateLike = None,
        mode: retrieval.Mode | None = None,
        today: DateLike = None,
        article_ids: Sequence[str] = (),
    ) -> list[Hit]:
        """The ``k`` passages most relevant to ``query``, best first, with scores and metadata.

        ``mode`` is ``dense``, ``bm25`` or ``hybrid`` (default: ``settings.retrieval``). Without
        ``since``/``until``, a time named in the query ("last week", "on Thursday", "in October
        2023") limits the published dates, relative to ``today`` (default: the real today);
        when nothing was published then, the limit is dropped. ``article_ids``: only these articles."""
        return self._search(query, k, since, until, mode, today, article_ids=article_ids)[0]

    def _search(
        self, query: str, k: int | None, since: DateLike, until: DateLike, mode: retrieval.Mode | None, today: DateLike,
        for_answer: bool = False, article_ids: Sequence[str] = (),
    ) -> tuple[list[Hit], str | None]:
        if not query.strip():
            raise RagError("the query is empty")
        mode = mode or self.settings.retrieval
        if mode not in retrieval.MODES:
            raise RagError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(retrieval.MODES)}")
        k = k or self.settings.top_k
        start, end = _as_date(since, "since"), _as_date(until, "until")
        reference = _as_date(today, "today") or date.today()
        ranking = self._ranking(reference, for_answer)

        def run(since: date | None, until: date | None) -> list[Hit]:
            return retrieval.search(self.store, self._cached_embedder, query, k, since, until, mode, ranking, article_ids)

        if start or end:
            return run(start, end), None
        named = resolve_dates(query, reference)
        if named:
            window = named.widened()
            hits = run(window.since, window.until)
            if hits:
                return hits, f"'{named.phrase}': published {window.since} to {window.until}"
        return run(None, None), (f"'{named.phrase}' matched no published dates; searched all articles" if named else None)

    def _ranking(self, today: date, for_answer: bool = False) -> retrieval.Ranking:
        s = self.settings
        return retrieval.Ranking(
            pool=s.retrieval_pool, dense_weight=s.dense_weight, bm25_weight=s.bm25_weight, title_weight=s.title_weight,
            recency_half_life_days=s.recency_half_life_days, recency_weight=s.recency_weight,
            lede_boost=s.lede_boost, per_article=s.passages_per_article, today=today,
            evidence_per_article=s.evidence_passages_per_article if for_answer else 0,
        )

    def evidence(self, question: str, options: AskOptions | None = None, **changes: Unpack[AskFields]) -> Evidence:
        """What the model would read for a standalone ``question``: the passages retrieved for
        answering and the evidence cut from them within ``settings.context_tokens`` (no model call;
        evaluation uses it to tell a retrieval miss from an answering one)."""
        o = (options or AskOptions()).with_changes(**changes)
        choices = [c.strip() for c in o.choices if c.strip()]
        query = " ".join([question, *choices])  # the options' names are search terms too
        retrieved, date_note = self._search(query, o.k, o.since, o.until, o.mode, o.today, True, tuple(o.article_ids))
        if (o.evidence or self.settings.evidence) == "sentences":
            s = self.settings
            passages = select_evidence(
                query, retrieved, self._cached_embedder, s.context_tokens, s.evidence_passages, s.evidence_sentences_per_article,
                article_text=self.article_text,
            )
        else:
            passages = retrieval.fit_budget(retrieved, self.settings.context_tokens, self._cached_embedder.count_tokens)
        return Evidence(retrieved, passages, date_note)

    def _guards(self) -> AnswerGuards:
        return AnswerGuards(coverage=self.settings.guard_coverage, numbers=self.settings.guard_numbers)

    def stream(
        self,
        question: str,
        history: History | None = None,
        options: AskOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        **changes: Unpack[AskFields],
    ) -> Iterator[str | Answer]:
        """Answer ``question``: yields the reply's pieces as they are generated, then the final
        :class:`Answer` (checked, with citations) as the last item. ``history`` is a list of
        (user, assistant) turns; a follow-up is rewritten into a standalone question first.
        ``options`` (or the same fields as keywords: ``k=3, today="2024-05-01"``) are this
        question's :class:`AskOptions`: the model, date range, retrieval mode, ``today`` for
        relative dates, token and temperature overrides, and ``choices``, options the question
        comes with (a quiz; they join the search, the model reads them, and ``Answer.choice`` is
        the one the answer names). Setting ``cancel`` stops the generation at the next token
        (the final Answer then holds what was written); set before the answer's prompt runs,
        the model is not called for it at all."""
        events = self.stream_phases(question, history, options, cancel=cancel, **changes)
        try:
            for event in events:
                if not isinstance(event, Phase):
                    yield event
        finally:
            events.close()  # a consumer that stops early releases the model now

    def stream_phases(
        self,
        question: str,
        history: History | None = None,
        options: AskOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        **changes: Unpack[AskFields],
    ) -> Iterator[str | Answer | Phase]:
        """:meth:`stream`, with a :class:`~rag.answer.pipeline.Phase` before each step that comes
        before the first word (rewriting a follow-up, searching, the model reading N passages),
        for a progress line."""
        if not question.strip():
            raise RagError("the question is empty")
        o = (options or AskOptions()).with_changes(**changes)
        choices = [c.strip() for c in o.choices if c.strip()]
        started = time.perf_counter()
        generator = self.generator_for(o.llm)
        # Only a question that points back at the conversation is rewritten (a model call).
        needs = needs_history(question, history or [])
        if needs:
            yield Phase("rewriting")
        standalone = condense_question(generator, self.prompts, question, history or [], cancel) if needs else question
        yield Phase("searching")
        found = self.evidence(standalone, o, choices=choices)
        request = Request(question, standalone, choices, found.date_note, started, time.perf_counter() - started,
                          self._guards(), generator.name)
        yield Phase("reading", len(found.passages))
        # The pipeline builds the final Answer once, with everything it reports (see rag.answer.pipeline).
        yield from stream_answer(
            request, found.retrieved, found.passages, generator, self.prompts, self.article_text,
            o.max_tokens or self.settings.max_answer_tokens,
            self.settings.temperature if o.temperature is None else o.temperature, cancel,
        )

    def ask(
        self,
        question: str,
        history: History | None = None,
        options: AskOptions | None = None,
        *,
        on_token: Callable[[str], None] | None = None,
        **changes: Unpack[AskFields],
    ) -> Answer:
        """Answer ``question`` from the indexed articles, citing them as [n] (see :meth:`stream`);
        ``on_token`` gets each piece of the reply as it is written."""
        return final_answer(self.stream(question, history, options, **changes), on_token)

    def brief(self, since: DateLike | str = None, until: DateLike = None, topic: str | None = None,
              max_stories: int | None = None, *, llm: bool | str = False, today: DateLike = None) -> Briefing:
        """The period's stories (news views: rag.stories), best covered and most recent first, each in 2-3 cited
        sentences; ``since``: a date or "7d"/"2w" back from ``until`` (default: ``today``). With ``llm`` (True or a
        model name) a model writes each summary, shown only if every sentence passes the grounding check."""
        generator = self.generator_for(llm if isinstance(llm, str) else None) if llm else None
        return stories.brief(self.store, self._cached_embedder, self.settings, since, until, topic, max_stories,
                             generator, _as_date(today, "today"))

    def timeline(self, query: str, since: DateLike = None, until: DateLike = None) -> Timeline:
        """Dated, cited events about ``query`` in date order; copies of one event are one entry."""
        hits = self.search(query, k=self.settings.timeline_pool, since=since, until=until) if query.strip() else []
        return stories.timeline(self.store, self._cached_embedder, self.settings, query, hits,
                                _as_date(since, "since"), _as_date(until, "until"))

    def related(self, article_id: str) -> Related:
        """The article's own story's other coverage, and the earlier and later stories of its subject."""
        return stories.related(self.store, self.settings, article_id)
