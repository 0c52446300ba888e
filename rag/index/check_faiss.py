"""`rag check` on the FAISS copy: the copy an open would use (the newest trusted one at or before
the database's generation, rag.index.faiss_copy) matches its checksum, and holds exactly the
stored vectors under their chunk ids.

A copy written at the database's own generation must hold every sound chunk and nothing else. A
copy from an earlier generation is *behind*, which is normal (it is rewritten on a geometric
schedule, and an open adds what it lacks from SQLite): it may hold ids removed since and lack
chunks added since, which are those above its highest id (ids are never reused), but every
vector it holds for a chunk SQLite still has must be that chunk's stored vector, bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from rag.index import vectors as vector_index
from rag.index.faiss_copy import copies
from rag.index.files import DIGEST_SUFFIX, copy_generation, digest_problem

if TYPE_CHECKING:
    from rag.index.check import CheckReport


def _short(items: list[int], n: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" … (+{len(items) - n} more)" if len(items) > n else "")


def _other_copies(directory: Path, report: CheckReport, generation: int, current: int | None, floor: int) -> None:
    for path in sorted(directory.glob("vectors.*")):
        g = copy_generation(path)
        if g is None or path.name.endswith(DIGEST_SUFFIX) or g == current:
            continue
        if g < floor:
            report.add("faiss-stale", f"{path.name} predates the last repair (generation {floor}) and is not used", "warning")
        elif g <= generation:
            report.add("faiss-stale", f"{path.name} is an old FAISS copy (a newer one is in use)", "warning")
        else:
            report.add("faiss-newer", f"{path.name} is newer than the database (generation {generation}): "
                       "was the database restored from a backup?", "warning")


def check_faiss(
    directory: Path, report: CheckReport, dim: int | None, all_ids: np.ndarray, ids: np.ndarray,
    vectors: np.ndarray | None, floor: int = 0,
) -> None:
    """``all_ids``: every chunk id; ``ids`` and ``vectors``: the sound stored vectors, by id."""
    generation = report.generation or 0
    found = copies(directory, generation, floor)
    current = found[0][0] if found else None
    _other_copies(directory, report, generation, current, floor)
    if current is None:
        if report.chunks or generation:
            report.add("faiss-missing", f"no FAISS copy for generation {generation} or before (a writer died before "
                       "writing one?); it is rebuilt from SQLite on the next open", "warning")
        return
    path = found[0][1]
    report.faiss_generation = current
    untrusted = digest_problem(path)
    if untrusted:
        report.add("faiss-untrusted", f"{path.name} is not trusted: {untrusted}; it is not used (rebuilt from SQLite on open)")
        return
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        report.add("faiss-unreadable", f"{path.name} is unreadable ({str(e).splitlines()[0]})")
        return
    report.faiss_vectors = int(index.ntotal)
    if dim is not None and index.d != dim:
        report.add("faiss-mismatch", f"{path.name} has dim {index.d}, the manifest says {dim}")
        return
    faiss_ids, faiss_vectors = vector_index.contents(index)
    behind = current < generation
    top = int(faiss_ids.max()) if len(faiss_ids) else -1
    missing = np.setdiff1d(ids, faiss_ids)
    added = missing[missing > top] if behind else missing[:0]  # chunks committed after the copy was written
    missing = np.setdiff1d(missing, added)
    extra = np.setdiff1d(faiss_ids, all_ids)
    removed, extra = (extra, extra[:0]) if behind else (extra[:0], extra)
    if len(missing) or len(extra) or len(np.unique(faiss_ids)) != len(faiss_ids):
        report.add("faiss-mismatch", f"{path.name} holds {len(faiss_ids)} vectors for {len(all_ids)} chunks "
                   f"({len(missing)} chunk ids missing, {len(extra)} unknown ids)")
        return
    if behind:
        report.notes.append(f"the FAISS copy {path.name} is {generation - current} commit(s) behind the database "
                            f"(normal: an open adds the {len(added)} newer vector(s) and drops the {len(removed)} "
                            "removed from SQLite)")
    if vectors is None or faiss_vectors is None:
        report.notes.append(f"the FAISS vectors were not compared with SQLite ({type(index).__name__} does not give "
                            "them back exactly)")
        return
    held = np.isin(ids, faiss_ids)
    order = np.argsort(faiss_ids, kind="stable")
    rows = order[np.searchsorted(faiss_ids[order], ids[held])]  # the FAISS row of each sound chunk it holds
    differing = np.flatnonzero(~np.all(faiss_vectors[rows] == vectors[held], axis=1))
    if len(differing):
        report.add("faiss-mismatch", f"{path.name}: {len(differing)} vector(s) differ from the stored ones "
                   f"(chunk ids {_short([int(i) for i in ids[held][differing]])})")
