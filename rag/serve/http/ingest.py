"""Articles in: multipart uploads and JSON articles, stored and ingested with per-file results."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi import Request

from rag.api import RAG
from rag.index.periods import article_infos
from rag.results import IngestReport
from rag.serve.http.errors import ApiError
from rag.serve.http.shapes import ArticlesIn
from rag.serve.uploads import WebLimits, discard_unreferenced, safe_upload_name, store_uploads


def _ingest_files(rag: RAG, named: list[tuple[str, Path]], upload_dir: Path) -> dict[str, Any]:
    """Store accepted files under the index's uploads/ and index them; one result per file."""
    limits = WebLimits.of(rag.settings)
    results: list[dict[str, Any]] = []
    accepted: list[tuple[int, Path]] = []
    for name, path in named:
        stored, rejected = store_uploads([str(path)], upload_dir, limits)
        if rejected:
            results.append({"name": name, "status": "rejected", "detail": rejected[0][2], "article_ids": []})
        else:
            results.append({"name": name, "status": "", "detail": "", "article_ids": []})
            accepted.append((len(results) - 1, stored[0]))
    report = rag.add([p for _, p in accepted]) if accepted else IngestReport()
    ids = [*report.added, *report.updated]
    infos = article_infos(rag.store, ids)  # looked up by key, not by listing every article
    by_origin: dict[str, list[str]] = {}
    for article_id in ids:  # in the order they were read
        if info := infos.get(article_id):
            by_origin.setdefault(info.origin, []).append(article_id)
    # A duplicate or a failure indexed nothing: keep no copy of it.
    discard_unreferenced([str(p) for _, p in accepted], upload_dir, rag)
    for i, path in accepted:
        result = report.files.get(str(path))
        results[i].update(
            status=result.status if result else "failed",
            detail=result.detail() if result else "nothing was read from this file",
            article_ids=by_origin.get(str(path), []) if result and (result.added or result.updated) else [],
        )
    return {
        "object": "ingest.report", "summary": report.summary(), "added": report.added, "updated": report.updated,
        "duplicates": report.counts.duplicates, "failed": report.counts.failed + sum(r["status"] == "rejected" for r in results),
        "chunks": report.chunks, "results": results,
    }


async def _uploaded_files(request: Request, tmp: Path, limits: WebLimits) -> list[tuple[str, Path]]:
    form = await request.form(max_files=limits.max_upload_files, max_fields=limits.max_upload_files)
    try:
        uploads = [v for _, v in form.multi_items() if not isinstance(v, str)]
        if not uploads:
            raise ApiError(400, "no files in the upload (send them as multipart 'files')", param="files")
        named: list[tuple[str, Path]] = []
        for i, upload in enumerate(uploads):
            name = safe_upload_name(upload.filename or "upload")
            target = tmp / str(i) / name  # one folder each: two uploads may share a name
            target.parent.mkdir()
            with target.open("wb") as out:
                while chunk := await upload.read(1 << 20):
                    out.write(chunk)
            named.append((upload.filename or name, target))
        return named
    finally:
        await form.close()


def _articles_as_files(body: ArticlesIn, tmp: Path) -> list[tuple[str, Path]]:
    """Each JSON article becomes its own .json file (named by its content, so posting it again
    is a duplicate), which the JSON loader reads like any other: same fields, same checks."""
    named = []
    for i, article in enumerate(body.articles):
        record = article.model_dump(exclude_none=True)
        data = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")
        target = tmp / str(i) / f"api-{hashlib.sha256(data).hexdigest()[:16]}.json"
        target.parent.mkdir()
        target.write_bytes(data)
        named.append((record.get("title") or record.get("id") or record.get("url") or f"articles[{i}]", target))
    return named
