"""What every ``rag`` subcommand shares: safe printing, settings from flags, opening the index."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from pydantic import ValidationError

from rag.api import RAG
from rag.documents.articles import terminal_safe
from rag.errors import RagError
from rag.settings import Settings


def echo(message: object = "", nl: bool = True, err: bool = False) -> None:
    """click.echo for anything that may hold a file name, a title or a model's words: controls
    (terminal escape sequences) and undecodable bytes are printed as visible escapes."""
    click.echo(terminal_safe(str(message)), nl=nl, err=err)


def settings_from(index: Path | None, llm: str | None) -> Settings:
    try:
        settings = Settings()
    except ValidationError as e:  # a bad RAG_* variable: name it, no traceback
        problems = "; ".join(f"RAG_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}" for err in e.errors())
        raise RagError(f"bad setting: {problems}") from None
    updates: dict[str, object] = {}
    if index is not None:
        updates["index_dir"] = index
    if llm is not None:
        updates["llm"] = llm
    return settings.model_copy(update=updates)


def open_rag(ctx: click.Context, seed: bool = True) -> RAG:
    settings: Settings = ctx.obj["settings"]
    bar = Bar("indexing seeds")
    try:
        return RAG.open(settings=settings, seed=seed, progress=bar)
    finally:
        bar.close()


class Bar:
    """tqdm bar driven by (done, total) callbacks."""

    def __init__(self, desc: str, unit: str = "chunk") -> None:
        self.desc = desc
        self.unit = unit
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self._bar is None:
            if total == 0:
                return
            self._bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr)
        if total != self._bar.total:  # the Ray engine learns the total as files are parsed
            self._bar.total = total
            self._bar.refresh()
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
