"""Related coverage of an article: the other articles of its own story, and the earlier and
later stories about the same subject — the articles whose passages are close to it, grouped
into stories the way a briefing groups a period (rag.stories.grouping)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rag.errors import RagError
from rag.index.periods import article_infos, article_texts, article_vectors
from rag.index.store import Store
from rag.stories.grouping import GroupingSettings, group_articles
from rag.stories.names import article_names
from rag.stories.results import Related, RelatedStory


@dataclass(frozen=True)
class RelatedSettings:
    grouping: GroupingSettings = field(default_factory=GroupingSettings)
    pool: int = 200  # passages searched for neighbours
    min_similarity: float = 0.5  # a neighbour's closest passage must be this close to the article
    min_article_similarity: float = 0.4  # ... and the whole articles this close (one passage can stray)
    max_stories: int = 5  # on each side


def build_related(store: Store, article_id: str, settings: RelatedSettings | None = None) -> Related:
    settings = settings or RelatedSettings()
    found = article_infos(store, [article_id])
    if article_id not in found:
        raise RagError(f"no indexed article has the id '{article_id}' (see `rag info --articles` for ids)")
    article = found[article_id]
    vector = article_vectors(store, [article_id])
    best: dict[str, float] = {article_id: 1.0}
    if np.linalg.norm(vector) > 0:
        for hit in store.hits(store.dense_search(vector, settings.pool)):
            if hit.score >= settings.min_similarity:
                best[hit.article.id] = max(best.get(hit.article.id, 0.0), hit.score)
    ids = sorted(best)
    infos = article_infos(store, ids)
    articles = [infos[i] for i in ids if i in infos]
    vectors = article_vectors(store, [a.id for a in articles])
    close = vectors @ vector[0] >= settings.min_article_similarity
    close[[i for i, a in enumerate(articles) if a.id == article_id]] = True
    articles, vectors = [a for a, keep in zip(articles, close) if keep], vectors[close]
    texts = article_texts(store, [a.id for a in articles])
    names = [article_names(a.title, texts.get(a.id, "")) for a in articles]
    own: list[int] = []
    earlier: list[RelatedStory] = []
    later: list[RelatedStory] = []
    for group in group_articles(articles, vectors, names, settings.grouping):
        members = [articles[i] for i in group]
        if any(a.id == article_id for a in members):
            own = group
            continue
        lead = max(members, key=lambda a: (best.get(a.id, 0.0), a.id))
        centroid = vectors[group].sum(axis=0)
        similarity = float(centroid @ vector[0] / (np.linalg.norm(centroid) or 1.0))
        story = RelatedStory(lead.title, sorted(members, key=lambda a: (a.published or article.published or a.id, a.id)), similarity)
        dates = story.dates
        if article.published and dates and dates[0] < article.published:
            earlier.append(story)
        else:
            later.append(story)
    # The closest in time first on each side; of a day, the closest in subject.
    earlier.sort(key=lambda s: (-s.dates[-1].toordinal(), -s.similarity))
    later.sort(key=lambda s: (s.dates[0].toordinal() if s.dates else 10**7, -s.similarity))
    same = sorted((articles[i] for i in own if articles[i].id != article_id), key=lambda a: (a.published or a.id, a.id))
    return Related(article, same, earlier[: settings.max_stories], later[: settings.max_stories])
