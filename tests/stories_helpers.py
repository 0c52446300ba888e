"""The labelled story fixture (eval/stories) as a real index, shared by the tests of the news views."""

from __future__ import annotations

import json
from pathlib import Path

from rag import RAG, Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "eval" / "stories"
# Weeks later, the Rotterdam dispute's next story, and one a month before: related coverage must
# show them as earlier and later stories, not as the strike's own.
FOLLOW_UPS = [
    {"id": "port-ratified", "title": "Rotterdam dockworkers ratify pay deal that ended strike",
     "body": "Members of the FNV Havens union at the Port of Rotterdam voted on Thursday to ratify the wage deal that ended "
     "March's week-long strike at the container terminals, the union said.\nAbout 78 percent of the 4,000 dockworkers backed "
     "the agreement, which gives a 6.5 percent pay rise over two years.\nUnion negotiator Niek Vermeulen said the vote closed "
     "\"a hard chapter\" for the Maasvlakte terminals, whose backlog of containers has now been cleared.",
     "source": "Harbour Post", "url": "https://news.example/port-ratified", "published_at": "2025-04-17"},
    {"id": "port-talks-open", "title": "Rotterdam port union warns of strike as wage talks open",
     "body": "The FNV Havens union warned on Monday that dockworkers at the Port of Rotterdam could strike if terminal operators "
     "did not offer a substantial pay rise, as wage talks opened for about 4,000 workers at the Maasvlakte container terminals.\n"
     "Union negotiator Niek Vermeulen said members wanted 9 percent over two years to keep up with rents and food prices.\n"
     "The employers' association said its members faced rising costs and falling volumes.",
     "source": "Northsea Wire", "url": "https://news.example/port-talks-open", "published_at": "2025-02-03"},
]


def fixture_rag(directory: Path, embedder: object, follow_ups: bool = False, llm: object = None) -> RAG:
    """A RAG over the fixture's 30 articles (and the follow-ups), indexed with ``embedder``."""
    rag = RAG.open(settings=Settings(index_dir=directory, seeds_dir=None), embedder=embedder, llm=llm, seed=False)  # type: ignore[arg-type]
    paths = [FIXTURE / "articles.jsonl"]
    if follow_ups:
        extra = directory.parent / f"{directory.name}-follow-ups.jsonl"
        extra.write_text("".join(json.dumps(a) + "\n" for a in FOLLOW_UPS), encoding="utf-8")
        paths.append(extra)
    report = rag.add(paths)
    assert not report.failed, report.failed
    return rag


def article_id(rag: RAG, key: str) -> str:
    """The indexed id of the fixture article whose URL ends in ``key``."""
    return next(a.id for a in rag.articles() if a.url and a.url.endswith("/" + key))


def labels() -> dict:
    return json.loads((FIXTURE / "labels.json").read_text(encoding="utf-8"))
