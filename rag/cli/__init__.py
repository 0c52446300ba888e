"""The ``rag`` command: a thin layer over :class:`rag.RAG`.

The group and the core commands live here; each feature family adds its commands from its own
module of this package (registered at the bottom), sharing the helpers in :mod:`rag.cli.common`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from rag.cli.common import Bar, echo, open_rag, settings_from
from rag.documents.articles import terminal_safe
from rag.errors import RagError
from rag.options import AskOptions
from rag.results import Answer, Hit, final_answer
from rag.settings import MODES, Settings


@click.group()
@click.option("--index", type=click.Path(path_type=Path), help="Index directory (default: ./index, or RAG_INDEX_DIR).")
@click.option("--llm", help="Bundled LLM name or .gguf path (default: RAG_LLM or qwen2.5-coder-1.5b-instruct).")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens.")
@click.pass_context
def cli(ctx: click.Context, index: Path | None, llm: str | None, verbose: bool) -> None:
    """Ask questions about news articles; answers cite the passages they come from."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"settings": settings_from(index, llm)}


@cli.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: parse, chunk and embed on Ray workers (pip install 'rag[ray]').")
@click.option("--address", help="Ray cluster address for --engine ray (default: RAG_RAY_ADDRESS; none: a local Ray).")
@click.option("--workers", type=click.IntRange(min=1), help="Embedding workers for --engine ray (default: RAG_RAY_WORKERS, 2).")
@click.option("--no-wait", is_flag=True, help="Fail at once if another ingest is writing to the index (default: wait for it).")
@click.option("--follow-symlinks", is_flag=True,
              help="Index what symbolic links in the folders point to, even outside them (default: skip those).")
@click.pass_context
def ingest_cmd(
    ctx: click.Context, paths: tuple[Path, ...], engine: str, address: str | None, workers: int | None, no_wait: bool,
    follow_symlinks: bool,
) -> None:
    """Index files and directories (.txt .md .html .json .jsonl .rss .atom .xml)."""
    if engine != "ray" and (address or workers):
        raise click.UsageError("--address and --workers only apply with --engine ray")
    if engine == "ray":
        from rag.ingest.engines.ray import ray_available, unavailable_message

        if not ray_available():
            echo(f"note: {unavailable_message()}; ingesting with the local engine instead", err=True)
            engine = "local"
    rag = open_rag(ctx, seed=False)
    bar = Bar("embedding") if engine == "local" else Bar("embedding on Ray", unit="article")
    try:
        report = rag.add(
            list(paths), progress=bar, engine=engine, ray_address=address, workers=workers,  # type: ignore[arg-type]
            wait=not no_wait, on_wait=lambda message: echo(message, err=True), follow_symlinks=follow_symlinks,
        )
    finally:
        bar.close()
    echo(report.summary())
    for failure in report.failed:
        echo(f"  failed: {failure.path}: {failure.reason}", err=True)
    if (unlisted := report.counts.failed - len(report.failed)) > 0:
        echo(f"  … and {unlisted:,} more failures (the first {len(report.failed):,} are listed)", err=True)
    if report.failed and not (report.added or report.updated or report.duplicates):
        sys.exit(1)


def _print_sources(hits: list[Hit], cited: set[int] | None = None) -> None:
    for n, hit in enumerate(hits, start=1):
        mark = "*" if cited and n in cited else " "
        echo(f"{mark}[{n}] {hit.article.label()}  (score {hit.score:.2f}, id {hit.article.id})")


@cli.command("ask")
@click.argument("question")
@click.option("-k", type=int, help="Number of passages to retrieve.")
@click.option("--since", help="Only articles published on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Only articles published on or before this date (YYYY-MM-DD).")
@click.option("--mode", type=click.Choice(MODES), help="Retrieval mode (default: RAG_RETRIEVAL).")
@click.option("--today", help="Read 'yesterday', 'last week'... against this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask_cmd(
    ctx: click.Context, question: str, k: int | None, since: str | None, until: str | None,
    mode: str | None, today: str | None, as_json: bool,
) -> None:
    """Answer a question, streaming, then list the sources."""
    rag = open_rag(ctx)
    streamed = False

    def show(piece: str) -> None:
        nonlocal streamed
        if not as_json:
            echo(piece, nl=False)
            streamed = True

    options = AskOptions(k=k, since=since, until=until, mode=mode, today=today)  # type: ignore[arg-type]
    answer = final_answer(rag.stream(question, options=options), show)
    if as_json:
        echo(_answer_json(answer))
        return
    if streamed:
        echo()
    if not streamed or answer.text.strip() != answer.raw_text.strip():
        echo(("" if not streamed else "\nChecked answer: ") + answer.text)
    echo("\nSources:")
    for c in answer.citations:
        echo(f"  [{c.n}] {c.article.label()}\n      “{c.quote}”")
    if not answer.citations:
        _print_sources(answer.sources)
    for note in answer.notes:
        echo(f"note: {note}", err=True)


def _answer_json(answer: Answer) -> str:
    import json

    return json.dumps(answer.to_dict(), ensure_ascii=False, indent=2)


@cli.command("search")
@click.argument("query")
@click.option("-k", type=int, default=5, show_default=True)
@click.option("--since")
@click.option("--until")
@click.option("--mode", type=click.Choice(MODES), help="Retrieval mode (default: RAG_RETRIEVAL).")
@click.pass_context
def search_cmd(ctx: click.Context, query: str, k: int, since: str | None, until: str | None, mode: str | None) -> None:
    """Show the passages most relevant to a query."""
    rag = open_rag(ctx)
    hits = rag.search(query, k=k, since=since, until=until, mode=mode)  # type: ignore[arg-type]
    if not hits:
        echo("no passages found")
    for n, hit in enumerate(hits, start=1):
        echo(f"[{n}] {hit.score:.3f}  {hit.article.label()}  (article {hit.article.id}, chars {hit.start}-{hit.end})")
        echo("    " + hit.text.replace("\n", "\n    "))


@cli.command("eval")
@click.argument("questions", required=False, type=click.Path(path_type=Path))
@click.option("--articles", type=click.Path(path_type=Path), help="Articles JSONL the questions are about.")
@click.option("--beir", type=click.Path(path_type=Path), help="A BEIR folder (corpus, queries, qrels): retrieval only.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("eval-out"), show_default=True)
@click.option("--modes", default="dense,bm25,hybrid,rerank", show_default=True, help="Retrieval modes to compare.")
@click.option("--llms", default="", help="Comma-separated models to answer with (default: RAG_LLM).")
@click.option("--evidence", default="sentences", show_default=True, help="sentences, chunks, or both (comma-separated).")
@click.option("--no-answers", is_flag=True, help="Measure retrieval only.")
@click.option("--limit", type=int, help="Only the first N questions (after --seed shuffling).")
@click.option("--seed", type=int, help="Shuffle the questions with this seed.")
@click.pass_context
def eval_cmd(
    ctx: click.Context, questions: Path | None, articles: Path | None, beir: Path | None, out: Path, modes: str,
    llms: str, evidence: str, no_answers: bool, limit: int | None, seed: int | None,
) -> None:
    """Measure retrieval, answers, citations and latency on a question set."""
    from rag.evaluation import Evaluator, load_beir, load_questions, open_eval_index

    settings: Settings = ctx.obj["settings"]
    if beir:
        articles, qs, problems = load_beir(beir)
        no_answers = True
    elif questions and articles:
        qs, problems = load_questions(questions)
    else:
        raise click.UsageError("give QUESTIONS with --articles, or --beir DIR")
    for problem in problems:
        echo(f"skipped {problem}", err=True)
    if not qs:
        raise RagError("no usable questions")
    rag = open_eval_index(articles, settings)
    evaluator = Evaluator(
        rag, qs, modes=[m.strip() for m in modes.split(",") if m.strip()],  # type: ignore[misc]
        llms=[m.strip() for m in llms.split(",") if m.strip()], evidence=[e.strip() for e in evidence.split(",") if e.strip()],
        answer=not no_answers,
    )
    report = evaluator.run(limit=limit, seed=seed)
    report.config["questions_path"] = str(questions or beir)
    for path in report.save(out):
        echo(f"wrote {path}")
    echo(report.markdown())


@cli.command("info")
@click.option("--articles", "list_articles", is_flag=True, help="List every indexed article.")
@click.pass_context
def info_cmd(ctx: click.Context, list_articles: bool) -> None:
    """What is indexed, and with which models."""
    from rag.models.registry import installed_llms

    rag = open_rag(ctx, seed=False)
    info = rag.info()
    echo(f"index:     {info.directory}")
    echo(f"articles:  {info.articles}   chunks: {info.chunks}")
    echo(f"embedder:  {info.embedder} (dim {info.dim})")
    echo(f"chunking:  {info.chunk_tokens} tokens, {info.chunk_overlap_tokens} overlap")
    echo(f"llm:       {info.llm}")
    echo(f"installed: {', '.join(installed_llms()) or 'no bundled LLM'}")
    if list_articles:
        for a in rag.articles():
            echo(f"  {a.id}  {a.published or '----------'}  {a.chunk_count:3d} chunks  {a.title}  [{a.source or '-'}]")


@cli.command("check")
@click.option("--repair", is_flag=True, help="Fix what can be fixed (refused while an ingest runs), then check again.")
@click.pass_context
def check_cmd(ctx: click.Context, repair: bool) -> None:
    """Verify that the database, BM25 and FAISS agree; exit 1 when they do not."""
    from rag.index.check import check_index, repair_index

    settings: Settings = ctx.obj["settings"]
    directory = settings.resolved_index_dir()

    def load() -> object:  # only when a damaged vector must be re-embedded
        from rag.index.store import MANIFEST, Store
        from rag.models.embedding import load_embedder

        return load_embedder(Store._read_manifest(directory / MANIFEST).embedder, settings.embed_batch_size)

    report = repair_index(directory, load_embedder=load) if repair else check_index(directory)  # type: ignore[arg-type]
    echo(report.text())
    sys.exit(0 if report.ok else 1)


@cli.command("rm")
@click.argument("refs", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Remove every match without asking, when a reference matches several articles.")
@click.pass_context
def rm_cmd(ctx: click.Context, refs: tuple[str, ...], yes: bool) -> None:
    """Remove articles by id, id prefix, URL or source file path."""
    rag = open_rag(ctx, seed=False)
    titles = {a.id: a.title for a in rag.articles()}
    ids: list[str] = []
    for ref in refs:
        found = rag.store.find_articles(ref)
        if not found:
            raise RagError(f"no indexed article matches '{ref}' (see `rag info --articles` for ids)")
        if len(found) > 1 and not yes:
            many = f"'{ref}' matches {len(found)} articles"
            if not sys.stdin.isatty():
                raise RagError(f"{many}; nothing was removed. Run again with --yes to remove them all, "
                               "or name one article by its id")
            for article_id in found[:20]:
                echo(f"  {article_id}  {titles.get(article_id, '')}")
            if not click.confirm(terminal_safe(f"{many}. Remove them all?"), default=False):
                echo("nothing was removed", err=True)
                sys.exit(1)
        ids.extend(found)
    removed = rag.remove(list(dict.fromkeys(ids)))
    echo(f"removed {len(removed)} article(s): {', '.join(removed)}")


@cli.command("chat")
@click.pass_context
def chat_cmd(ctx: click.Context) -> None:
    """Chat in the terminal; follow-up questions use the conversation."""
    rag = open_rag(ctx)
    history: list[tuple[str, str]] = []
    while True:
        try:
            question = click.prompt("you", prompt_suffix="> ")
        except (EOFError, click.Abort):
            echo()
            return
        answer = final_answer(rag.stream(question, history=history))
        if answer.standalone_question:
            echo(f"(searching for: {answer.standalone_question})")
        echo(answer.text)
        for c in answer.citations:
            echo(f"  [{c.n}] {c.article.label()}")
        history.append((question, answer.text))


@cli.command("ui")
@click.option("--host", default=None, help="Address to listen on (default RAG_HOST or 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default RAG_PORT or 7860).")
@click.option("--index", type=click.Path(path_type=Path),
              help="Index directory (default: ./index, or RAG_INDEX_DIR); the same as `rag --index DIR ui`.")
@click.option("--api", is_flag=True, help="Also serve the HTTP API (/v1/...) from the same address.")
@click.pass_context
def ui_cmd(ctx: click.Context, host: str | None, port: int | None, index: Path | None, api: bool) -> None:
    """Open the browser chat (also `python ui.py`, with these options)."""
    from rag.serve.address import check_port

    # `python ui.py` runs this command on its own, without the group that reads the settings.
    settings: Settings = ctx.obj["settings"] if ctx.obj else settings_from(None, None)
    if index is not None:
        settings = settings.model_copy(update={"index_dir": index})
    check_port(host or settings.host, port or settings.port)  # before Gradio's import (~4 s) and the models

    from rag.serve.web import launch

    launch(settings, host=host, port=port, api=api)


@cli.command("serve")
@click.option("--host", default=None, help="Address to listen on (default RAG_API_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default RAG_API_PORT or 8000).")
@click.option("--no-preload", is_flag=True, help="Load the model on the first question instead of at start.")
@click.pass_context
def serve_cmd(ctx: click.Context, host: str | None, port: int | None, no_preload: bool) -> None:
    """Serve the OpenAI-compatible HTTP API (/v1/chat/completions, /v1/search, /v1/articles)."""
    from rag.serve.address import check_port
    from rag.serve.http import serve

    settings: Settings = ctx.obj["settings"]
    check_port(host or settings.api_host, port or settings.api_port, env="RAG_API_PORT")  # before the models load
    rag = open_rag(ctx)
    if not no_preload:
        rag.preload()
    serve(rag, host=host, port=port)


# Feature families add their commands from their own modules of this package, registered here:
# `from rag.cli import <module>` then `cli.add_command(<module>.<command>)`.
from rag.cli import feeds as _feeds  # noqa: E402  (rag feeds add|list|rm, rag sync, rag watch)

for _command in _feeds.COMMANDS:
    cli.add_command(_command)

from rag.cli import stories as _stories  # noqa: E402  (rag brief, rag timeline, rag related)

for _command in _stories.COMMANDS:
    cli.add_command(_command)

from rag.cli import conversations as _conversations  # noqa: E402  (rag conversations list|export)

for _command in _conversations.COMMANDS:
    cli.add_command(_command)


def main() -> None:
    run(cli)


def run(command: click.Command) -> None:
    """Run ``command`` (the ``rag`` group, or ``ui`` alone for ``python ui.py``) with rag's errors
    printed as one line and a non-zero exit."""
    try:
        command(standalone_mode=True)
    except RagError as e:
        echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # the disk or the file system refused (full, read-only, permissions)
        where = f" ({e.filename})" if e.filename else ""
        echo(f"error: {e.strerror or e}{where}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
