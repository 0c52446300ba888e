"""Question sets: our JSONL format (factoid, multiple-choice, unanswerable, follow-up, dated)
and BEIR folders, read with a line-numbered problem for every bad line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rag.errors import RagError


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # dataset article ids
    question_date: date | None = None
    choices: tuple[str, ...] = ()
    history: tuple[tuple[str, str], ...] = ()
    unanswerable: bool = False
    type: str = "factoid"
    group: str = ""  # a label to report separately (e.g. the tuned and the held-out half)


@dataclass(frozen=True)
class LineProblem:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _jsonl(path: Path, problems: list[LineProblem]) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise RagError(f"{path}: no such file")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(LineProblem(str(path), lineno, f"invalid JSON ({e.msg} at column {e.colno})"))
            continue
        if not isinstance(data, dict):
            problems.append(LineProblem(str(path), lineno, "not a JSON object"))
            continue
        rows.append((lineno, data))
    return rows


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value if str(v).strip())
    raise ValueError("must be a string or a list of strings")


def load_questions(path: str | Path) -> tuple[list[EvalQuestion], list[LineProblem]]:
    """Questions from JSONL (``id``, ``question``, ``answer``, optional ``evidence_article_ids``,
    ``question_date``, ``choices``, ``history``, ``unanswerable``, ``type``). Malformed lines are
    returned as problems with their line numbers; the good ones load."""
    path = Path(path)
    problems: list[LineProblem] = []
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for lineno, row in _jsonl(path, problems):
        try:
            qid = str(row.get("id") or f"line-{lineno}")
            question = row.get("question")
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            if qid in seen:
                raise ValueError(f"duplicate id {qid!r}")
            answers = _strings(row.get("answer", row.get("answers")))
            choices = _strings(row.get("choices"))
            if choices and (not answers or answers[0] not in choices):
                raise ValueError("'choices' must contain the answer")
            raw_date = row.get("question_date")
            history = tuple((str(a), str(b)) for a, b in (row.get("history") or []))
            questions.append(
                EvalQuestion(
                    id=qid, question=question.strip(), answers=answers,
                    evidence=_strings(row.get("evidence_article_ids")),
                    question_date=date.fromisoformat(raw_date) if raw_date else None,
                    choices=choices, history=history,
                    unanswerable=bool(row.get("unanswerable")) or (not answers and row.get("type") == "unanswerable"),
                    type=str(row.get("type") or ("multiple-choice" if choices else "factoid")),
                )
            )
            seen.add(qid)
        except (ValueError, TypeError) as e:
            problems.append(LineProblem(str(path), lineno, str(e)))
    return questions, sorted(problems, key=lambda p: p.line)


def load_beir(directory: str | Path) -> tuple[Path, list[EvalQuestion], list[LineProblem]]:
    """A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/*.tsv``) as an articles JSONL
    written beside it and retrieval-only questions."""
    directory = Path(directory)
    problems: list[LineProblem] = []
    articles = directory / ".rag-corpus.jsonl"
    with articles.open("w", encoding="utf-8") as out:
        for lineno, row in _jsonl(directory / "corpus.jsonl", problems):
            if "_id" not in row or not str(row.get("text", "")).strip():
                problems.append(LineProblem(str(directory / "corpus.jsonl"), lineno, "needs '_id' and 'text'"))
                continue
            out.write(json.dumps({"id": str(row["_id"]), "title": row.get("title") or "", "text": row["text"]}) + "\n")
    queries = {str(r["_id"]): str(r.get("text", "")) for _, r in _jsonl(directory / "queries.jsonl", problems) if "_id" in r}
    relevant: dict[str, list[str]] = {}
    for tsv in sorted((directory / "qrels").glob("*.tsv")):
        for lineno, line in enumerate(tsv.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split("\t")
            if lineno == 1 and not parts[-1].strip().lstrip("-").isdigit():
                continue  # header
            if len(parts) < 3:
                problems.append(LineProblem(str(tsv), lineno, "expected query-id, corpus-id, score"))
                continue
            if int(parts[2]) > 0:
                relevant.setdefault(parts[0], []).append(parts[1])
    questions = [EvalQuestion(id=q, question=queries[q], evidence=tuple(docs), type="retrieval")
                 for q, docs in relevant.items() if queries.get(q)]
    return articles, questions, problems


# The modules whose output is stored in an index (chunk boundaries, what is embedded, near-duplicate
# marks): an edit to any of them makes a cached evaluation index stale, so their source is in its key.
