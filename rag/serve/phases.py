"""The progress line shown in the answer bubble while an answer is on its way: what the
pipeline is doing (from the :class:`~rag.answer.pipeline.Phase` events of ``RAG.stream_phases``)
and for how long. The page's script keeps the seconds ticking between events."""

from __future__ import annotations

import html

from rag.answer.pipeline import Phase

STARTING = "Starting…"


def phase_text(phase: Phase | None) -> str:
    if phase is None:
        return STARTING
    if phase.name == "rewriting":
        return "Reading the conversation…"
    if phase.name == "searching":
        return "Searching the articles…"
    n = phase.passages
    return f"Reading {n} passage{'s' if n != 1 else ''}…" if n else "Checking what was found…"


def progress_html(phase: Phase | None, elapsed: float) -> str:
    """The bubble's content before the first word: the phase and the seconds so far."""
    seconds = int(elapsed)
    return (
        f'<span class="phase" role="status" data-elapsed="{elapsed:.1f}">{html.escape(phase_text(phase))} '
        f'<span class="elapsed">{seconds} s</span></span>'
    )


def writing_html(partial: str, elapsed: float) -> str:
    """The words so far (already escaped for the chat), with the progress line after them."""
    return f'{partial}\n\n<span class="phase writing" data-elapsed="{elapsed:.1f}">Writing… <span class="elapsed">{int(elapsed)} s</span></span>'
