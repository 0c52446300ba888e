"""Upload rules shared by the browser app and the HTTP API: limits, safe names, copying."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag.ingest.formats import SUPPORTED_SUFFIXES
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.api import RAG


@dataclass(frozen=True)
class WebLimits:
    """Upload limits (Settings.max_upload_bytes / max_upload_files: RAG_MAX_UPLOAD_BYTES, RAG_MAX_UPLOAD_FILES)."""

    max_upload_bytes: int = field(default_factory=lambda: Settings().max_upload_bytes)
    max_upload_files: int = field(default_factory=lambda: Settings().max_upload_files)

    @classmethod
    def of(cls, settings: Settings) -> WebLimits:
        return cls(settings.max_upload_bytes, settings.max_upload_files)


def safe_upload_name(name: str) -> str:
    """A file name with no directories, no leading dots and only harmless characters."""
    base = re.sub(r"[^\w.-]+", "_", Path(name.replace("\\", "/")).name)
    while len(base.encode()) > 120:  # bytes, not characters: file systems cap names at 255 bytes
        base = base[1:]
    return base.lstrip("._") or "upload"


def store_uploads(paths: list[str], upload_dir: Path, limits: WebLimits) -> tuple[list[Path], list[list[str]]]:
    """Copy accepted uploads into ``upload_dir``; rows of (file, 'rejected', reason) for the rest."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    accepted: list[Path] = []
    rejected: list[list[str]] = []
    if len(paths) > limits.max_upload_files:
        return [], [["(upload)", "rejected", f"{len(paths)} files; at most {limits.max_upload_files} at once"]]
    for raw in paths:
        src = Path(raw)
        name = safe_upload_name(src.name)
        suffix = Path(name).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            rejected.append([name, "rejected", f"unsupported file type '{suffix or '(none)'}'"])
            continue
        size = src.stat().st_size
        if size > limits.max_upload_bytes:
            rejected.append([name, "rejected", f"{size:,} bytes; the limit is {limits.max_upload_bytes:,}"])
            continue
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:10]
        target = upload_dir / f"{Path(name).stem}-{digest}{suffix}"
        if not target.exists():  # same name and digest means same bytes: never overwrite
            shutil.copyfile(src, target)
        accepted.append(target)
    return accepted, rejected


def upload_display_name(path: str | Path) -> str:
    """The name the user uploaded, for the results table: ``store_uploads`` keeps each copy as
    ``<stem>-<10 hex digits of its digest><suffix>`` (never overwriting), a name nobody chose."""
    name = Path(path).name
    return re.sub(r"-[0-9a-f]{10}(?=\.[^.]+$)", "", name)


def discard_unreferenced(paths: Iterable[str | Path], upload_dir: Path, rag: RAG) -> list[Path]:
    """Delete the stored uploads among ``paths`` that no indexed article comes from any more
    (its articles were removed, or it added none): a kept copy would hold text the index no
    longer has. Paths outside ``upload_dir`` (a folder the user ingested) are never touched."""
    root = upload_dir.resolve()
    candidates = {raw: Path(raw).resolve() for raw in dict.fromkeys(str(p) for p in paths)}
    ours = {raw: path for raw, path in candidates.items() if path.parent == root and path.is_file()}
    # An article's origin is the path as it was given: ask for both spellings.
    in_use = rag.store.origins_in_use([*ours, *(str(p) for p in ours.values())])
    deleted = []
    for raw, path in ours.items():
        if raw not in in_use and str(path) not in in_use:
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


def discard_gradio_uploads(paths: Iterable[str], gradio_upload_dir: str | Path) -> None:
    """Delete Gradio's temporary copies of uploaded files (and their one-file folders) once they
    have been copied into the index: nothing uploaded stays on disk to be served back."""
    root = Path(gradio_upload_dir).resolve()
    for raw in paths:
        path = Path(raw).resolve()
        if path.is_relative_to(root) and path != root and path.is_file():
            path.unlink(missing_ok=True)
            try:
                if path.parent != root and not any(path.parent.iterdir()):
                    path.parent.rmdir()
            except OSError:  # another upload landed in it meanwhile
                pass
