"""Load test for the browser chat: N concurrent users, each in its own session, on loopback.

Every user asks about an article nobody else's question matches (a made-up town, permit number,
mayor and project), then follow-ups, through the same `/ask` endpoint the browser uses, so
per-session history is exercised. Anything of another user's showing up in a user's
conversation counts as *crossed* (the shared library's articles may appear among the sources). Bounded by ``--users`` (at most MAX_USERS) and ``--timeout``.

    .venv/bin/python benchmarks/chat_load.py --users 20 --questions 2 --llm fake
    .venv/bin/python benchmarks/chat_load.py --users 6 --llm smollm2-135m-instruct
    .venv/bin/python benchmarks/chat_load.py --url http://127.0.0.1:7860 --server-pid PID --llm qwen2.5-coder-1.5b-instruct
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_USERS = 64  # the app's queue holds 64 waiting events; more would be refused by design
MAX_TURNS = 3
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
_VOWELS = ["a", "e", "i", "o", "u"]
_ENDINGS = ["ria", "stad", "holm", "wick", "port", "ville", "burg"]
_PROJECTS = ["ferry terminal", "seawall", "fish market", "lighthouse museum", "tram depot", "boat ramp"]


def _word(i: int, salt: int) -> str:
    """A made-up, capitalised word unique to ``i`` (< 200): the syllables are scattered by a
    multiplicative hash so neighbouring users share no syllable, for dense retrieval too."""
    n = (i * 2654435761 + salt * 40503) % 2**32
    syllables = 2 + n % 2
    parts = []
    for _ in range(syllables):
        n //= 3
        parts.append(_ONSETS[n % len(_ONSETS)] + _VOWELS[(n // len(_ONSETS)) % len(_VOWELS)])
        n //= len(_ONSETS) * len(_VOWELS)
    return f"{''.join(parts)}{_ENDINGS[(i + salt) % len(_ENDINGS)]}{i}".capitalize()


@dataclass(frozen=True)
class User:
    """One simulated user: the article only they ask about, and their questions with expected answers."""

    n: int
    town: str
    permit: str
    mayor: str
    project: str

    @classmethod
    def make(cls, n: int) -> User:
        return cls(n, f"{_word(n, 1)}", f"QX{7000 + n * 37}", f"{_word(n, 2)}", _PROJECTS[n % len(_PROJECTS)])

    def article(self) -> str:
        return (
            f"# {self.town} harbour council approves permit\n\n"
            f"The harbour council of {self.town} approved permit number {self.permit} on Tuesday.\n"
            f"The {self.town} permit was signed by mayor {self.mayor} after a public hearing.\n"
            f"Under the {self.town} permit the town will build a new {self.project} next year.\n"
        )

    def turns(self) -> list[tuple[str, str]]:
        """(question, a string the correct answer contains); later ones are follow-ups."""
        return [
            (f"Which permit number did the harbour council of {self.town} approve?", self.permit),
            (f"And who signed the {self.town} permit?", self.mayor),
            (f"What will {self.town} build under the permit?", self.project),
        ]

    def marks(self) -> set[str]:
        """Strings that appear only in this user's article and questions."""
        return {self.town, self.permit, self.mayor}


@dataclass
class Turn:
    user: int
    turn: int
    seconds: float
    ok: bool
    correct: bool
    crossed: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class LoadReport:
    users: int
    questions: int
    answered: int
    failed: int
    crossed: int
    correct: int
    p50_s: float
    p95_s: float
    wall_s: float
    peak_rss_mb: float | None
    llm: str
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rss = f"{self.peak_rss_mb:.0f} MB" if self.peak_rss_mb is not None else "n/a"
        return (
            f"users {self.users}, questions {self.questions}, answered {self.answered}, failed {self.failed}, "
            f"crossed {self.crossed}, correct {self.correct}; latency p50 {self.p50_s:.2f}s p95 {self.p95_s:.2f}s; "
            f"wall {self.wall_s:.1f}s; server peak RSS {rss}; llm {self.llm}"
        )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _text(message: dict[str, Any]) -> str:
    """A chat message's text with the chat's Markdown escapes (``\\-``, ``\\*``) undone."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return re.sub(r"\\(.)", r"\1", str(content or ""))


class _RssSampler:
    """Peak resident memory of the server process, sampled in the background."""

    def __init__(self, pid: int | None) -> None:
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if pid is not None:
            import psutil

            self._proc = psutil.Process(pid)
            self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._proc.memory_info().rss
            self.peak = max(self.peak or 0, rss)
            self._stop.wait(0.1)

    def __enter__(self) -> _RssSampler:
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def upload_articles(url: str, users: list[User], folder: Path, auth: tuple[str, str] | None = None) -> None:
    """Index every user's article through the app's own upload endpoint (20 files per call)."""
    from gradio_client import Client, handle_file

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for user in users:
        path = folder / f"load-{user.n:03d}-{user.town.lower()}.md"
        path.write_text(user.article(), encoding="utf-8")
        paths.append(path)
    client = Client(url, auth=auth, verbose=False)
    for start in range(0, len(paths), 20):
        rows = client.predict([handle_file(str(p)) for p in paths[start:start + 20]], api_name="/add_articles")[0]
        bad = [r for r in rows["data"] if r[1] not in ("added", "duplicate")]
        if bad:
            raise RuntimeError(f"upload failed: {bad}")


def _chat_default_llm(url: str, auth: tuple[str, str] | None) -> str:
    """The model the chat's dropdown starts on: the value a browser would send."""
    from gradio_client import Client

    client = Client(url, auth=auth, verbose=False)
    info = client.view_api(print_info=False, return_format="dict")
    client.close()
    params = info["named_endpoints"]["/ask"]["parameters"]
    return str(next(p["parameter_default"] for p in params if p["parameter_name"] == "llm"))


def crossed_marks(user: User, everyone: list[User], asked: list[str], chat: list[dict[str, Any]], sources: str) -> list[str]:
    """What in this session belongs to someone else: other users' marks in the chat, and
    "history" when the chat's questions are not exactly the ones this user asked. The library is
    shared, so another user's similar article may rightly be retrieved into the Sources panel
    (article ranking puts k different stories there); it must never reach the conversation."""
    others = set().union(*(u.marks() for u in everyone if u.n != user.n))
    crossed = sorted(m for m in others if any(m in _text(msg) for msg in chat))
    if [_text(m) for m in chat if m.get("role") == "user"] != asked:
        crossed.append("history")
    return crossed


def _run_user(
    url: str, user: User, everyone: list[User], turns: int, llm: str, deadline: float,
    start: threading.Barrier, auth: tuple[str, str] | None,
) -> list[Turn]:
    from gradio_client import Client

    results: list[Turn] = []
    try:
        client = Client(url, auth=auth, verbose=False)  # one client = one session (its own session hash)
    except Exception as e:  # noqa: BLE001 - a user who cannot connect is a failed user, not a crashed run
        start.abort()
        return [Turn(user.n, t, 0.0, False, False, error=f"connect: {e}") for t in range(turns)]
    try:
        start.wait(timeout=max(1.0, deadline - time.monotonic()))
    except threading.BrokenBarrierError:
        pass
    chat: list[dict[str, Any]] = []
    asked: list[str] = []
    for t, (question, expected) in enumerate(user.turns()[:turns]):
        began = time.monotonic()
        remaining = deadline - began
        if remaining <= 0:
            results.append(Turn(user.n, t, 0.0, False, False, error="timeout before asking"))
            continue
        job = client.submit(question, chat, llm, 1, "", "", "hybrid", api_name="/ask")
        try:
            chat, sources, _ = job.result(timeout=remaining)
        except Exception as e:  # noqa: BLE001 - timeouts and server errors are counted, not raised
            job.cancel()
            results.append(Turn(user.n, t, time.monotonic() - began, False, False, error=f"{type(e).__name__}: {e}"))
            break  # the conversation is broken; later turns would be meaningless
        seconds = time.monotonic() - began
        asked.append(question)
        final = _text(chat[-1]) if chat else ""
        ok = bool(chat) and chat[-1].get("role") == "assistant" and not final.startswith("⚠️") and final != "…"
        crossed = crossed_marks(user, everyone, asked, chat, sources)
        error = "" if ok else f"no answer: {final[:200]!r}"
        results.append(Turn(user.n, t, seconds, ok, expected.lower() in final.lower(), crossed, error))
    client.close()
    return results


def run_load(
    url: str, users: int, questions: int = 2, timeout: float = 300, llm: str = "", server_pid: int | None = None,
    auth: tuple[str, str] | None = None, upload: bool = True, workdir: Path | None = None,
) -> LoadReport:
    """Drive ``users`` concurrent sessions of ``questions`` turns each against the app at ``url``."""
    if not 1 <= users <= MAX_USERS:
        raise ValueError(f"users must be 1..{MAX_USERS}")
    if not 1 <= questions <= MAX_TURNS:
        raise ValueError(f"questions must be 1..{MAX_TURNS}")
    people = [User.make(n) for n in range(users)]
    llm = llm or _chat_default_llm(url, auth)
    if upload:
        upload_articles(url, people, workdir or Path(tempfile.mkdtemp(prefix="chat-load-")), auth)
    deadline = time.monotonic() + timeout
    barrier = threading.Barrier(users)
    outcomes: dict[int, list[Turn]] = {}

    def work(user: User) -> None:
        outcomes[user.n] = _run_user(url, user, people, questions, llm, deadline, barrier, auth)

    threads = [threading.Thread(target=work, args=(u,), daemon=True, name=f"load-user-{u.n}") for u in people]
    began = time.monotonic()
    with _RssSampler(server_pid) as rss:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 30)  # the client's own timeout ends each user first
    wall = time.monotonic() - began
    turns = [t for n in range(users) for t in outcomes.get(n, [])]
    latencies = [t.seconds for t in turns if t.ok]
    answered = sum(t.ok for t in turns)
    return LoadReport(
        users=users, questions=users * questions, answered=answered, failed=users * questions - answered,
        crossed=sum(bool(t.crossed) for t in turns), correct=sum(t.correct for t in turns),
        p50_s=_percentile(latencies, 50), p95_s=_percentile(latencies, 95), wall_s=wall,
        peak_rss_mb=rss.peak / 1e6 if rss.peak else None, llm=llm,
        errors=[f"user {t.user} turn {t.turn}: {t.error or 'crossed ' + ','.join(t.crossed)}"
                for t in turns if t.error or t.crossed][:20],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(llm: str = "fake", index_dir: Path | None = None, embedder: Any = None, generator: Any = None) -> Iterator[str]:
    """Run the real app on a free loopback port in this process (no seed articles); yields its URL.

    ``llm`` "fake" is the extractive test generator; any other value is a bundled model name or
    .gguf path. Pass ``embedder``/``generator`` to reuse loaded models (tests)."""
    from rag import RAG, Settings
    from rag.models.embedding import load_embedder
    from rag.serve.web import launch
    from rag.testing import ExtractiveFakeGenerator

    with tempfile.TemporaryDirectory(prefix="chat-load-index-") as tmp:
        settings = Settings(index_dir=index_dir or Path(tmp), seeds_dir=None)
        if llm != "fake":
            settings = settings.model_copy(update={"llm": llm})
        if generator is None and llm == "fake":
            generator = ExtractiveFakeGenerator()
        rag = RAG.open(settings=settings, embedder=embedder or load_embedder(settings.embedder), llm=generator)
        port = free_port()
        app = launch(rag=rag, port=port, block=False)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            app.close()
            rag.close()


def wait_for_model(url: str, llm: str, timeout: float = 300) -> None:
    """Ask once (outside the measurement) so the model is loaded before the clock starts."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    client.predict("warm-up question", [], 1, "" if llm == "fake" else llm, api_name="/answer")
    client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20, help=f"concurrent users (1..{MAX_USERS})")
    parser.add_argument("--questions", type=int, default=2, help=f"turns per user, the first then follow-ups (1..{MAX_TURNS})")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole run")
    parser.add_argument("--llm", default="fake", help="'fake' (extractive, no model) or a bundled model name / .gguf path")
    parser.add_argument("--url", help="an already running app instead of starting one here")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its peak RSS")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    def run(url: str, pid: int | None) -> LoadReport:
        wait_for_model(url, args.llm)
        return run_load(url, args.users, args.questions, args.timeout, "" if args.llm == "fake" else args.llm, pid)

    if args.url:
        report = run(args.url, args.server_pid)
    else:
        with serve(args.llm) as url:
            report = run(url, os.getpid())  # in-process: the RSS includes the (small) client threads
    report.llm = args.llm
    print(json.dumps(asdict(report), indent=2) if args.json else report.summary())
    for error in report.errors:
        print("  ", error, file=sys.stderr)
    return 0 if report.failed == 0 and report.crossed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
