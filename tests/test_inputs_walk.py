"""Inputs and the CLI (issue 13, part 4): folder ingest stays inside its folders, deep folders and
file names that are not UTF-8 or hold terminal escapes fail (or load) per file, `rag rm` takes
no SQL wildcards and confirms before removing many, and an empty RAG_SEEDS_DIR means no seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import RAG, Settings
from rag.index.check import check_index
from rag.testing import ExtractiveFakeGenerator, HashingEmbedder

from .conftest import DATA, ROOT
from .index_helpers import _env, write_articles

GOOD = "Harbour reopens after storm\nThe harbour of Valdora reopened on Monday after the storm.\n"
SECRET = "Secret key file\nThe private key is hunter2 and must never be indexed by anyone.\n"


def _open(index: Path, embedder=None) -> RAG:
    return RAG.open(settings=Settings(index_dir=index, seeds_dir=None), embedder=embedder or HashingEmbedder(),
                    llm=ExtractiveFakeGenerator(), seed=False)


@pytest.fixture
def rag(tmp_path: Path):
    r = _open(tmp_path / "index")
    yield r
    r.close()


def _folder_with_links(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "nested").mkdir()
    (outside / "nested" / "more-secret.txt").write_text(SECRET.replace("hunter2", "swordfish"))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD)
    (folder / "secret.txt").symlink_to(outside / "secret.txt")  # a file link out of the folder
    (folder / "elsewhere").symlink_to(outside / "nested")  # a directory link out of the folder
    (folder / "again.txt").symlink_to(folder / "good.txt")  # a link that stays inside is fine
    return folder, outside


def test_folder_ingest_skips_symlinks_out_of_the_folder_with_a_reason(rag: RAG, tmp_path: Path):
    folder, _ = _folder_with_links(tmp_path)
    report = rag.add([folder])
    titles = {a.title for a in rag.articles()}
    assert titles == {"Harbour reopens after storm"}
    skipped = {Path(f.path).name: f.reason for f in report.failed}
    assert set(skipped) == {"secret.txt", "elsewhere"}, report.failed
    assert all("outside" in r and "--follow-symlinks" in r for r in skipped.values())
    assert not rag.search("private key hunter2", k=3, mode="bm25")


def test_follow_symlinks_indexes_what_the_links_point_to(rag: RAG, tmp_path: Path):
    folder, _ = _folder_with_links(tmp_path)
    report = rag.add([folder], follow_symlinks=True)
    assert not report.failed, report.failed
    assert {a.title for a in rag.articles()} == {"Harbour reopens after storm", "Secret key file"}
    assert len(report.added) == 3  # good, secret, more-secret (again.txt is a duplicate)


def test_symlink_loops_are_walked_once_when_following(rag: RAG, tmp_path: Path):
    folder = tmp_path / "loop"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "good.txt").write_text(GOOD)
    (folder / "sub" / "back").symlink_to(folder)
    report = rag.add([folder], follow_symlinks=True)
    assert len(report.added) == 1 and not report.failed


def test_a_folder_1100_deep_is_walked_without_recursion_error(rag: RAG, tmp_path: Path):
    top = tmp_path / "deep"
    top.mkdir()
    (top / "top.txt").write_text(GOOD)
    path = top
    for _ in range(1100):  # one level at a time: Path.mkdir(parents=True) itself recurses
        path = path / "d"
        path.mkdir()
    (path / "bottom.txt").write_text(GOOD.replace("Valdora", "Nethermoor").replace("Harbour", "Deep harbour", 1))
    try:
        report = rag.add([top])
        assert not report.failed, report.failed
        assert {a.title for a in rag.articles()} == {"Harbour reopens after storm", "Deep harbour reopens after storm"}
    finally:  # bottom up: shutil.rmtree (pytest's clean-up) recurses and would fail on this tree
        (path / "bottom.txt").unlink()
        while path != top:
            path.rmdir()
            path = path.parent


def test_a_file_name_that_is_not_utf8_fails_alone(rag: RAG, tmp_path: Path):
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / "good.txt").write_text(GOOD)
    bad = os.path.join(os.fsencode(folder), b"caf\xe9-\xff.txt")
    with open(bad, "w") as f:
        f.write(SECRET)
    report = rag.add([folder])
    assert {a.title for a in rag.articles()} == {"Harbour reopens after storm"}
    [failure] = report.failed
    assert "not valid UTF-8" in failure.reason and "rename" in failure.reason
    failure.path.encode("utf-8")  # printable: no lone surrogates
    assert "\\xe9" in failure.path
    report = rag.add([os.fsdecode(bad)])  # named directly, too
    assert len(report.failed) == 1 and not report.added
    assert check_index(rag.store.directory).ok


def test_terminal_safe_neutralises_escapes_and_surrogates():
    from rag.documents.articles import terminal_safe

    assert terminal_safe("a\x1b]0;owned\x07b\x1b[31mc") == "a\\x1b]0;owned\\x07b\\x1b[31mc"
    assert terminal_safe("caf\udce9.txt") == "caf\\xe9.txt"
    assert terminal_safe("line one\nline two\ttab") == "line one\nline two\ttab"
    assert terminal_safe("\u202eevil\u2066") == "\\u202eevil\\u2066"  # bidi overrides reorder what is shown
    assert terminal_safe("Türkiye — 東京") == "Türkiye — 東京"


def test_empty_seeds_dir_means_no_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "stray.txt").write_text(GOOD)
    monkeypatch.chdir(tmp_path / "cwd")
    for value in ("", "  "):
        monkeypatch.setenv("RAG_SEEDS_DIR", value)
        settings = Settings(index_dir=tmp_path / f"index{len(value)}")
        assert settings.seeds_dir is None
        rag = RAG.open(settings=settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
        assert rag.articles() == []
        rag.close()


def test_seeds_are_not_added_again_to_an_index_emptied_by_the_user(tmp_path: Path):
    settings = Settings(index_dir=tmp_path / "index", seeds_dir=DATA)
    rag = RAG.open(settings=settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    ids = [a.id for a in rag.articles()]
    assert ids
    rag.remove(ids)
    rag.close()
    rag = RAG.open(settings=settings, embedder=HashingEmbedder(), llm=ExtractiveFakeGenerator())
    assert rag.articles() == []
    rag.close()


def test_remove_takes_no_sql_wildcards(rag: RAG, tmp_path: Path):
    rag.add([write_articles(tmp_path / "a.jsonl", 5, "rm")])
    for pattern in ("______", "%%%%%%", "______%", "%"):
        with pytest.raises(Exception, match="no indexed article matches"):
            rag.remove(pattern)
    assert len(rag.articles()) == 5
    article_id = rag.articles()[0].id
    assert rag.remove(article_id[:8]) == [article_id]


# ---------------------------------------------------------------- the CLI, as users run it


def _cli(index: Path, *args: str, stdin: str | None = None, tty: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `rag`; with ``tty`` its stdin is a terminal (a pty) that types ``stdin``."""
    command = [sys.executable, "-m", "rag.cli", "--index", str(index), *args]
    if not tty:
        return subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=600, input=stdin)
    import pty

    leader, follower = pty.openpty()
    os.write(leader, (stdin or "").encode())
    try:
        return subprocess.run(command, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=600, stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)


@pytest.mark.real_models
def test_cli_rm_escapes_wildcards_and_confirms_removing_many(tmp_path: Path, minilm):
    index = tmp_path / "index"
    feed = write_articles(tmp_path / "feed.jsonl", 3, "wire")
    rag = _open(index, minilm)
    rag.add([feed, DATA])
    rag.close()
    wild = _cli(index, "rm", "______")
    assert wild.returncode == 2 and "no indexed article matches '______'" in wild.stderr, wild.stderr
    refused = _cli(index, "rm", str(feed), stdin="")  # 3 articles came from that file; no terminal to ask
    assert refused.returncode != 0 and "matches 3 articles" in refused.stderr and "--yes" in refused.stderr
    no = _cli(index, "rm", str(feed), stdin="n\n", tty=True)
    assert no.returncode != 0 and "matches 3 articles" in no.stdout + no.stderr
    rag = _open(index, minilm)
    assert len(rag.articles()) == 10
    rag.close()
    yes = _cli(index, "rm", "--yes", str(feed))
    assert yes.returncode == 0 and "removed 3 article(s)" in yes.stdout, yes.stderr
    one = _cli(index, "rm", str(DATA / "briefing.md"), tty=True)  # one match: no question asked
    assert one.returncode == 0 and "removed 1 article(s)" in one.stdout, one.stderr


@pytest.mark.real_models
def test_cli_never_prints_terminal_escapes_from_file_names(tmp_path: Path, minilm):
    index = tmp_path / "index"
    _open(index, minilm).close()
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "ok\x1b]0;owned\x07.txt").write_text(GOOD)
    (folder / "bad\x1b[2J\x1b[31m.json").write_text("{not json")
    with open(os.path.join(os.fsencode(folder), b"latin\xe9.txt"), "w") as f:
        f.write(SECRET)
    result = _cli(index, "ingest", str(folder))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "\x1b" not in out and "\x07" not in out and "1 added" in result.stdout
    assert "bad\\x1b[2J\\x1b[31m.json" in result.stderr and "latin\\xe9.txt" in result.stderr
    check = _cli(index, "check")
    assert "\x1b" not in check.stdout + check.stderr


def test_the_walk_yields_sorted_paths_as_it_reaches_them(tmp_path: Path):
    """Folders are walked lazily, in the order ``sorted()`` gives the paths (names that sort
    differently as strings and as path parts included), so an archive's paths are never all held:
    a file created in a later folder after the first one was yielded is still found."""
    from rag.ingest.formats import iter_files

    top = tmp_path / "archive"
    names = ["a/b/1.txt", "a/2.txt", "a-b/3.txt", "a.b", "b/c/d/4.txt", "b/5.txt", "c.txt", "z/6.txt", "z/.hidden/7.txt"]
    for name in names:
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        (top / name).write_text(GOOD)
    (top / "b" / "5.meta.json").write_text("{}")  # a sidecar is not a file of its own
    walk = iter_files([top])
    first = next(walk)
    (top / "z" / "5b.txt").write_text(GOOD)  # appears after the walk started, in a folder not yet listed
    found = [first, *walk]
    expected = sorted(p for p in top.rglob("*") if p.is_file() and ".hidden" not in p.parts and not p.name.endswith(".meta.json"))
    assert found == expected and top / "z" / "5b.txt" in found
    assert first == top / "a" / "2.txt"  # "a/2.txt" before "a/b/1.txt" and before "a-b/3.txt", as sorted() has it
