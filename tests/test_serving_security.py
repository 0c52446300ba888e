"""Serving safety, against the real app on loopback (real MiniLM, the extractive fake LLM):
bind address, login, upload caps and names, gradio's file routes, and no pickle in the index.

File-route requests go over a raw socket: HTTP clients normalise `..` and `%2e%2e` away, and
the point is to send them to the server exactly as an attacker would."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from rag import RAG, Settings
from rag.errors import RagError
from rag.ingest.formats import SUPPORTED_SUFFIXES
from rag.serve.uploads import WebLimits, safe_upload_name, store_uploads
from rag.serve.web import launch
from rag.testing import ExtractiveFakeGenerator

from .conftest import ROOT, SEEDS

pytestmark = pytest.mark.real_models
USER, PASSWORD = "editor", "correct horse battery"
MAX_BYTES, MAX_FILES = 4000, 3
SECRETS = [b"root:x:0:0", b"SQLite format 3", b"schema_version", b"def build_app", b"import "]


@dataclass
class Server:
    url: str
    port: int
    rag: RAG
    app: Any

    @property
    def gradio_upload_dir(self) -> Path:
        return Path(self.app.server_app.uploaded_file_dir).resolve()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, minilm) -> Iterator[dict[str, Server]]:
    """An open app (small upload limits) and one behind a login, both with default host."""
    started: dict[str, Server] = {}
    with pytest.MonkeyPatch.context() as mp:
        for name, env in (
            ("open", {"RAG_MAX_UPLOAD_BYTES": str(MAX_BYTES), "RAG_MAX_UPLOAD_FILES": str(MAX_FILES)}),
            ("login", {"RAG_USERNAME": USER, "RAG_PASSWORD": PASSWORD}),
        ):
            for var in ("RAG_HOST", "RAG_USERNAME", "RAG_PASSWORD", "RAG_MAX_UPLOAD_BYTES", "RAG_MAX_UPLOAD_FILES"):
                mp.delenv(var, raising=False)
            for var, value in env.items():
                mp.setenv(var, value)
            index = tmp_path_factory.mktemp(f"sec-{name}")
            rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS), embedder=minilm, llm=ExtractiveFakeGenerator())
            port = _free_port()
            app = launch(rag=rag, port=port, block=False)
            started[name] = Server(f"http://127.0.0.1:{port}", port, rag, app)
    yield started
    for server in started.values():
        server.app.close()
        server.rag.close()


def raw_get(port: int, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET ``target`` byte for byte as given (no normalisation); returns (status, body)."""
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close", "Accept-Encoding: identity"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def call_api(client: httpx.Client, url: str, api_name: str, data: list[Any], session: str | None = None) -> tuple[str, Any]:
    """One call through gradio's HTTP API (/gradio_api/call/...): ("complete", outputs) or ("error", message)."""
    body: dict[str, Any] = {"data": data} if session is None else {"data": data, "session_hash": session}
    r = client.post(f"{url}/gradio_api/call/{api_name}", json=body)
    r.raise_for_status()
    event_id = r.json()["event_id"]
    event = ""
    with client.stream("GET", f"{url}/gradio_api/call/{api_name}/{event_id}", timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                return event, json.loads(line.split(":", 1)[1])
    raise AssertionError(f"no result from {api_name}")


def upload_raw(client: httpx.Client, url: str, name: str, content: bytes) -> httpx.Response:
    return client.post(f"{url}/gradio_api/upload", files={"files": (name, content, "text/plain")})


def _file_data(path: str) -> dict[str, Any]:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


# ------------------------------------------------------------------ bind address


def _listening(port: int) -> list[str]:
    proc = psutil.Process()
    return [c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


def test_binds_to_loopback_only_by_default(servers):
    for server in servers.values():
        assert _listening(server.port) == ["127.0.0.1"]
        assert httpx.get(f"{server.url}/gradio_api/info").status_code in (200, 401)  # it is really serving
        others = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
                  if a.family == socket.AF_INET and not a.address.startswith("127.")]
        for address in others:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, server.port)) != 0, f"reachable on {address}"


# ------------------------------------------------------------------ login


PROTECTED_GETS = ["/config", "/gradio_api/info", "/gradio_api/openapi.json", "/gradio_api/queue/data?session_hash=x",
                  "/gradio_api/upload_progress?upload_id=x", "/gradio_api/file=/etc/passwd"]


def test_without_login_nothing_is_served(servers):
    server = servers["login"]
    seed_title = server.rag.articles()[0].title
    page = httpx.get(server.url + "/")
    assert page.status_code in (200, 401)  # the login form, or a refusal
    assert seed_title not in page.text and "Ask the news" not in page.text
    for path in PROTECTED_GETS:
        status, body = raw_get(server.port, path)
        refused = (401, 403, 404) if "/file=" in path else (401, 403)  # file routes are gone for everyone
        assert status in refused, (path, status)
        assert not any(s in body for s in SECRETS), path
    question = "How many days of national mourning did Türkiye declare?"
    for route in ("/gradio_api/call/answer", "/gradio_api/run/answer", "/gradio_api/api/answer", "/gradio_api/call/ask"):
        r = httpx.post(server.url + route, json={"data": [question, [], 0, ""]})
        assert r.status_code in (401, 403), (route, r.status_code)
        assert "mourning" not in r.text
    r = httpx.post(server.url + "/gradio_api/queue/join", json={"data": [question], "fn_index": 0, "session_hash": "abc"})
    assert r.status_code in (401, 403)
    r = upload_raw(httpx.Client(), server.url, "story.txt", b"Title\nText.")
    assert r.status_code in (401, 403)


def test_gradio_client_needs_the_right_password(servers):
    from gradio_client import Client

    url = servers["login"].url
    for auth in (None, (USER, "wrong password"), ("someone", PASSWORD)):
        with pytest.raises(Exception):
            Client(url, auth=auth, verbose=False).predict("Where was Lavrov speaking?", api_name="/answer")
    client = Client(url, auth=(USER, PASSWORD), verbose=False)
    answer = client.predict("How many days of national mourning did Türkiye declare?", [], 0, "", api_name="/answer")
    assert "three days" in answer["answer"]


def test_login_form_accepts_only_the_right_password(servers):
    server = servers["login"]
    with httpx.Client() as bad:
        r = bad.post(server.url + "/login", data={"username": USER, "password": "nope"})
        assert r.status_code == 400 and not bad.cookies
        assert bad.get(server.url + "/config").status_code == 401
    with httpx.Client() as good:
        r = good.post(server.url + "/login", data={"username": USER, "password": PASSWORD})
        assert r.status_code == 200 and r.json() == {"success": True}
        assert good.get(server.url + "/config").status_code == 200
        assert "Ask the news" in good.get(server.url + "/").text
        event, outputs = call_api(good, server.url, "answer", ["Where was Lavrov speaking?", [], 0, ""])
        assert event == "complete" and "Pyongyang" in outputs[0]["answer"]


# ------------------------------------------------------------------ upload caps


def _index_state(server: Server) -> tuple[int, list[str]]:
    uploads = server.rag.store.directory / "uploads"
    return server.rag.info().articles, sorted(p.name for p in uploads.glob("*")) if uploads.exists() else []


def test_an_upload_over_the_size_cap_is_refused_and_indexes_nothing(servers, tmp_path: Path):
    from gradio_client import Client, handle_file

    server = servers["open"]
    before = _index_state(server)
    big = tmp_path / "big.txt"
    big.write_text("Oversized story\n" + "word " * MAX_BYTES)
    with pytest.raises(Exception) as refused:
        Client(server.url, verbose=False).predict([handle_file(str(big))], api_name="/add_articles")
    assert f"exceeds the maximum file size of {MAX_BYTES} bytes" in str(refused.value)  # the client checks first
    r = upload_raw(httpx.Client(), server.url, "big.txt", big.read_bytes())
    assert r.status_code == 413 and f"maximum allowed size of {MAX_BYTES} bytes" in r.text
    assert _index_state(server) == before


def test_too_many_files_at_once_are_refused_and_index_nothing(servers, tmp_path: Path):
    from gradio_client import Client, handle_file

    server = servers["open"]
    before = _index_state(server)
    paths = []
    for i in range(MAX_FILES + 1):
        path = tmp_path / f"story{i}.txt"
        path.write_text(f"Count cap story {i}\nThe Quorvane mill {i} reopened on Monday.\n")
        paths.append(handle_file(str(path)))
    rows = Client(server.url, verbose=False).predict(paths, api_name="/add_articles")[0]["data"]
    assert rows == [["(upload)", "rejected", f"{MAX_FILES + 1} files; at most {MAX_FILES} at once"]]
    assert _index_state(server) == before
    assert not server.rag.search("Quorvane mill", k=3) or all("Quorvane" not in h.text for h in server.rag.search("Quorvane mill", k=3))
    # At the cap it works, so the refusal above was the count and nothing else.
    rows = Client(server.url, verbose=False).predict(paths[:MAX_FILES], api_name="/add_articles")[0]["data"]
    assert [r[1] for r in rows] == ["added"] * MAX_FILES


def test_the_chat_cannot_ingest_files_it_was_not_sent(servers):
    """A hand-made API call naming a server path (not an upload) must not index that file."""
    server = servers["open"]
    before = _index_state(server)
    targets = ["/etc/passwd", str(ROOT / "README.md"), str(ROOT / "rag" / "serve" / "web.py"),
               str(server.rag.store.directory / "manifest.json"), str(servers["login"].rag.store.directory / "store.sqlite")]
    assert all(Path(t).is_file() for t in targets)  # real files, or the test would prove nothing
    with httpx.Client() as client:
        for target in targets:
            event, outputs = call_api(client, server.url, "add_articles", [[_file_data(target)]])
            assert event == "error" or outputs[0]["data"][0][1] == "rejected", (target, outputs)
    assert _index_state(server) == before


# ------------------------------------------------------------------ upload names


EVIL_NAMES = [
    "../../etc/passwd.txt", "/etc/evil-abs.txt", "..\\..\\evil-win.txt", "a/../../evil-mid.txt",
    "evil\x00.txt", "...", "..", ".", ".txt", "....txt", "x" * 300 + ".txt", "漢" * 150 + ".txt",
    "evil\u202etxt.md", "．．／．．／evil-wide.txt", "..\u2215..\u2215evil-slash.txt", "evil.txt\u200b",
    "~/.bashrc.txt", "%2e%2e%2fevil-enc.txt", "CON.txt", "-rf.txt", ".hidden.md",
]


def test_hostile_upload_names_stay_inside_the_upload_folders(servers):
    server = servers["open"]
    passwd_before = hashlib.sha256(Path("/etc/passwd").read_bytes()).digest()
    escapes = [Path("/etc/passwd.txt"), Path("/etc/evil-abs.txt"), Path("/evil-win.txt"), Path("/evil-mid.txt"),
               ROOT / "evil-win.txt", Path.cwd() / "evil-mid.txt", Path.home() / ".bashrc.txt"]
    assert not any(p.exists() for p in escapes)
    uploads = server.rag.store.directory / "uploads"
    results = []
    with httpx.Client() as client:
        for i, name in enumerate(EVIL_NAMES):
            content = f"Hostile name story {i}\nThe Brellow ferry number {1000 + i} sailed on time.\n".encode()
            try:
                r = upload_raw(client, server.url, name, content)
            except (ValueError, httpx.HTTPError):
                continue  # the client itself refuses to send the name (NUL bytes); the unit test covers it
            if r.status_code != 200:
                assert r.status_code in (400, 413, 422), (name, r.status_code)
                continue
            (stored,) = r.json()
            assert Path(stored).resolve().is_relative_to(server.gradio_upload_dir), (name, stored)
            event, outputs = call_api(client, server.url, "add_articles", [[_file_data(stored)]])
            if event == "error":  # gradio's File component refuses the type before our code runs
                assert "Invalid file type" in str(outputs), (name, outputs)
                outputs = [{"data": [[name, "rejected", str(outputs)]]}]
            results.append((name, content, outputs[0]["data"][0]))
    assert len(results) >= len(EVIL_NAMES) - 3
    assert {row[1] for _, _, row in results} <= {"added", "rejected"}
    assert sum(row[1] == "added" for _, _, row in results) >= 10
    for path in uploads.iterdir():
        assert path.parent == uploads and not path.is_symlink() and not path.name.startswith(".")
        assert len(path.name.encode()) <= 255 and path.suffix in SUPPORTED_SUFFIXES
    for _, content, row in results:
        if row[1] == "added":  # every accepted upload kept its own bytes
            assert any(p.read_bytes() == content for p in uploads.iterdir())
    assert not any(p.exists() for p in escapes)
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).digest() == passwd_before


def test_the_same_hostile_name_twice_never_overwrites(servers):
    server = servers["open"]
    uploads = server.rag.store.directory / "uploads"
    first, second = b"Overwrite test one\nThe Gastrel tower opened.\n", b"Overwrite test two\nThe Gastrel bridge closed.\n"
    with httpx.Client() as client:
        for content in (first, second):
            (stored,) = upload_raw(client, server.url, "../../same-name.txt", content).json()
            assert call_api(client, server.url, "add_articles", [[_file_data(stored)]])[1][0]["data"][0][1] == "added"
    copies = sorted(uploads.glob("same-name-*.txt"))
    assert {p.read_bytes() for p in copies} == {first, second}


def test_safe_upload_names_without_a_server(tmp_path: Path):
    for name in EVIL_NAMES + ["a\x00/../../b.txt", "\x00", "é" * 400 + ".md", "\U0001f600" * 100 + ".txt"]:
        safe = safe_upload_name(name)
        assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe, name
        assert not safe.startswith(".") and safe not in (".", "..") and len(safe.encode()) <= 120, (name, safe)
    # Real files with hostile but legal Linux names go through the same copy as the app's uploads.
    src = tmp_path / "src"
    src.mkdir()
    made = []
    for i, name in enumerate(["..\\..\\win.txt", "漢" * 80 + ".txt", "evil\u202etxt.md", "...txt", "-rf .md"]):
        path = src / name
        path.write_text(f"Story {i}\nBody {i}.\n")
        made.append(str(path))
    dest = tmp_path / "uploads"
    accepted, rejected = store_uploads(made, dest, WebLimits(max_upload_bytes=1000, max_upload_files=10))
    assert len(accepted) + len(rejected) == len(made)
    assert all(p.parent == dest and len(p.name.encode()) <= 255 for p in accepted)
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in accepted)
    assert set(os.listdir(tmp_path)) == {"src", "uploads"}


# ------------------------------------------------------------------ file routes


def _targets(server: Server) -> dict[str, str]:
    index = server.rag.store.directory
    cache = next((p for p in sorted((Path.home() / ".cache").rglob("*")) if p.is_file()), None) if (Path.home() / ".cache").exists() else None
    upload = next((index / "uploads").glob("*"), None) if (index / "uploads").exists() else None
    found = {
        "passwd": "/etc/passwd",
        "sqlite": str(index / "store.sqlite"),
        "manifest": str(index / "manifest.json"),
        "source": str(ROOT / "rag" / "serve" / "web.py"),
        "readme": str(ROOT / "README.md"),
    }
    if cache:
        found["cache"] = str(cache)
    if upload:
        found["index-upload"] = str(upload)
    return found


def test_file_routes_serve_nothing_from_disk(servers):
    server = servers["open"]
    up = server.gradio_upload_dir
    depth = "../" * (len(up.parts) + 2)
    requests = []
    for name, path in _targets(server).items():
        rel = os.path.relpath(path, Path.cwd())
        for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
            requests += [prefix + path, prefix + rel, prefix + path.replace("/", "%2F")]
        enc = "%2e%2e/" * (len(up.parts) + 2)
        requests += [
            f"/gradio_api/file={up}/{depth}{path.lstrip('/')}",  # climbing out of gradio's own upload folder
            f"/gradio_api/file={up}/{enc}{path.lstrip('/')}",
            f"/gradio_api/file={up}/{'%252e%252e/' * (len(up.parts) + 2)}{path.lstrip('/')}",
            f"/gradio_api/file=file://{path}",
            f"/static/{depth}{path.lstrip('/')}", f"/assets/{enc}{path.lstrip('/')}",
            f"/gradio_api/file=~/{os.path.relpath(path, Path.home())}",
        ]
    requests += [f"/gradio_api/file=http://127.0.0.1:{server.port}/config", f"/gradio_api/proxy=http://127.0.0.1:{server.port}/config",
                 f"/gradio_api/file={up}", f"/gradio_api/file={server.rag.store.directory}"]
    served = []
    for target in requests:
        status, body = raw_get(server.port, target)
        leaked = [s for s in SECRETS if s in body]
        if status not in (400, 403, 404, 405) or leaked:
            served.append((target, status, leaked))
    assert not served, served[:10]


def test_file_route_does_not_serve_even_its_own_uploads(servers):
    """An upload must not be fetchable back by path (issue 13): whoever learns the path of a file
    someone uploaded, or uploads one to use the server as a file host, gets nothing."""
    server = servers["open"]
    (stored,) = upload_raw(httpx.Client(), server.url, "mine.txt", b"my own upload").json()
    assert Path(stored).read_bytes() == b"my own upload"  # the control: it is there to be served
    for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/file/"):
        status, body = raw_get(server.port, f"{prefix}{stored}")
        assert status == 404 and b"my own upload" not in body, prefix
    status, body = raw_get(server.port, f"/gradio_api/file={stored}/../../../../etc/passwd")
    assert status in (403, 404) and b"root:" not in body


# ------------------------------------------------------------------ no pickle


_UNSAFE_MODULES = {"pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}
_UNPICKLING_CALLS = {("torch", "load"), ("jit", "load"), ("pd", "read_pickle")}  # torch itself is fine; its loader unpickles
_UNSAFE_CALLS = {"eval", "exec", "__import__"}


def _unsafe_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNSAFE_MODULES:
            found.append(node.module or "")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _UNSAFE_CALLS:
                found.append(func.id)
            if isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if (owner in _UNSAFE_MODULES or (owner, func.attr) in _UNPICKLING_CALLS
                        or func.attr in ("read_pickle", "unsafe_load") or (owner == "yaml" and func.attr == "load")):
                    found.append(f"{owner}.{func.attr}")
                if owner in ("np", "numpy") and func.attr == "load":
                    if any(k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords):
                        found.append("np.load(allow_pickle=...)")
    return found


def _safe_yaml(source: str) -> bool:
    """yaml.load is only allowed with a loader built on yaml.SafeLoader, and no unsafe loader in sight."""
    return "(yaml.SafeLoader)" in source and not any(w in source for w in ("yaml.Loader", "UnsafeLoader", "FullLoader", "unsafe_load"))


def test_nothing_in_the_package_loads_pickle_or_evaluates_code():
    planted = ast.parse("import pickle\nfrom joblib import load\nnp.load(p, allow_pickle=True)\neval(s)\ntorch.load(f)\nyaml.load(s)\n")
    assert len(_unsafe_uses(planted)) == 6  # the checker finds what it looks for
    offenders = {}
    for path in sorted((ROOT / "rag").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        uses = _unsafe_uses(ast.parse(source))
        if _safe_yaml(source):
            uses = [u for u in uses if u != "yaml.load"]
        if uses:
            offenders[path.name] = uses
    assert offenders == {}


def test_the_index_holds_only_sqlite_json_and_faiss(servers):
    import faiss

    for server in servers.values():
        index = server.rag.store.directory
        for path in index.rglob("*"):
            if path.is_dir():
                assert path == index / "uploads", path
                continue
            data = path.read_bytes()
            assert not data.startswith(b"\x80"), f"{path} starts like a pickle"
            rel = path.relative_to(index)
            if rel.parts[0] == "uploads":
                assert path.suffix in SUPPORTED_SUFFIXES  # the articles users gave, never loaded as code
            elif path.name.startswith("store.sqlite"):
                assert path.name == "store.sqlite" and data.startswith(b"SQLite format 3\x00") or path.name in ("store.sqlite-wal", "store.sqlite-shm")
            elif path.suffix == ".json":
                json.loads(data)
            elif path.suffix == ".faiss":
                # A real FAISS index of this index's vectors (it may be some commits behind SQLite).
                assert faiss.read_index(str(path)).d == server.rag.store.manifest.dim
            elif path.name.endswith(".faiss.sha256"):  # the FAISS file's checksum, plain hex text
                assert re.fullmatch(rb"[0-9a-f]{64}\s*", data), path
            else:
                # Lock files (flock targets): empty or a line of text such as a pid.
                assert path.name.endswith(".lock") and len(data) < 200 and data.decode().isprintable(), path


class _Payload:
    """Unpickling this creates ``marker``: the proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def test_a_pickle_in_place_of_index_files_is_never_executed(tmp_path: Path, minilm):
    control = tmp_path / "control-marker"
    subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
                   input=pickle.dumps(_Payload(control)), check=True)
    assert control.exists()  # the payload is live: unpickling it does create its marker

    index = tmp_path / "index"
    rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS), embedder=minilm, llm=ExtractiveFakeGenerator())
    chunks = rag.info().chunks
    rag.close()
    marker = tmp_path / "pwned"
    (faiss_file,) = index.glob("*.faiss")
    faiss_file.write_bytes(pickle.dumps(_Payload(marker)))
    rag = RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS), embedder=minilm, llm=ExtractiveFakeGenerator())
    assert rag.info().chunks == chunks
    assert "Pyongyang" in rag.search("Where was Lavrov speaking?", k=1)[0].text  # rebuilt from SQLite
    rag.close()
    assert not marker.exists()
    assert not next(index.glob("*.faiss")).read_bytes().startswith(b"\x80")

    for name in ("manifest.json", "store.sqlite"):
        victim = index / name
        saved = victim.read_bytes()
        victim.write_bytes(pickle.dumps(_Payload(marker)))
        for extra in index.glob("store.sqlite-*"):
            extra.unlink()
        with pytest.raises(RagError) as refused:
            RAG.open(settings=Settings(index_dir=index, seeds_dir=SEEDS), embedder=minilm, llm=ExtractiveFakeGenerator())
        assert name in str(refused.value)
        assert not marker.exists()
        victim.write_bytes(saved)
    with sqlite3.connect(index / "store.sqlite") as db:
        assert db.execute("SELECT count(*) FROM chunks").fetchone()[0] == chunks
