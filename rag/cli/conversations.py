"""``rag conversations list|export``: the chat's saved conversations (rag.conversations), read
from the index folder without loading a model or the embedder."""

from __future__ import annotations

import os
from pathlib import Path

import click

from rag.cli.common import echo
from rag.conversations import Conversations, ConversationStore, articles_jsonl, evaluation_jsonl, markdown
from rag.errors import RagError
from rag.index.store import MANIFEST, Store
from rag.settings import Settings

USER_HELP = "Whose conversations: the chat's login name (default: the local user of a chat without a login)."


def _chats(ctx: click.Context, user: str | None) -> Conversations:
    settings: Settings = ctx.obj["settings"]
    directory = settings.resolved_index_dir()
    if not directory.is_dir():
        raise RagError(f"no index at {directory} (see --index)")
    return ConversationStore(directory).of(user)


def _find(chats: Conversations, ref: str) -> str:
    """The id of the conversation whose id starts with ``ref`` (as `rag conversations list` shows it)."""
    found = [c.id for c in chats.list() if c.id.startswith(ref.strip().lower())] if ref.strip() else []
    if len(found) != 1:
        problem = "matches several conversations; give more of its id" if found else "matches no conversation"
        raise RagError(f"'{ref}' {problem} (see `rag conversations list`)")
    return found[0]


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output)  # a reader never sees half a file
    echo(f"wrote {output}", err=True)


@click.group("conversations")
def conversations_group() -> None:
    """The chat's saved conversations (conversations.sqlite in the index folder)."""


@conversations_group.command("list")
@click.option("--user", default=None, help=USER_HELP)
@click.pass_context
def list_cmd(ctx: click.Context, user: str | None) -> None:
    """The conversations, newest first: id, last change, questions, title."""
    listed = _chats(ctx, user).list()
    if not listed:
        echo("no saved conversations" + (f" for {user}" if user else ""))
    for c in listed:
        echo(f"{c.id[:12]}  {c.updated_at:%Y-%m-%d %H:%M}  {c.turns:>3} question{'s' if c.turns != 1 else ' '}  {c.title}")


@conversations_group.command("export")
@click.argument("ref", required=False)
@click.option("--eval", "as_eval", is_flag=True,
              help="Every rated answer (thumbs up or down) as a JSONL question set for `rag eval --questions`.")
@click.option("--user", default=None, help=USER_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (default: print).")
@click.option("--articles", type=click.Path(dir_okay=False, path_type=Path),
              help="With --eval: also write the articles the answers were given, for `rag eval ... --articles FILE`.")
@click.pass_context
def export_cmd(ctx: click.Context, ref: str | None, as_eval: bool, user: str | None, output: Path | None,
               articles: Path | None) -> None:
    """A conversation as Markdown with its sources (REF: its id, or the start of it), or with
    --eval the rated answers as an evaluation set."""
    chats = _chats(ctx, user)
    if as_eval:
        if ref:
            raise RagError("--eval exports every rated answer: give no conversation id with it")
        conversations = chats.all()
        text = evaluation_jsonl(conversations)
        if not text:
            raise RagError("no rated answers to export: rate answers with the chat's thumbs up or down first")
        if articles:  # the article texts, from the index opened as it was built (no model is loaded)
            directory: Path = ctx.obj["settings"].resolved_index_dir()
            manifest = Store._read_manifest(directory / MANIFEST)
            store = Store.open(directory, manifest.embedder, manifest.dim, manifest.chunker)
            try:
                _write(articles_jsonl(conversations, store.article_text), articles)
            finally:
                store.close()
        _write(text, output)
        return
    if articles:
        raise RagError("--articles goes with --eval")
    if not ref:
        raise RagError("name the conversation to export (see `rag conversations list`), or use --eval")
    _write(markdown(chats.get(_find(chats, ref))), output)


COMMANDS = [conversations_group]
