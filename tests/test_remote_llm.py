"""The openai-compatible generator: answers through llama-cpp-python's own OpenAI-compatible
server (llama_cpp.server) with the tiny bundled model, and clear errors when no server answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from rag import RAG, Answer, Settings
from rag.errors import ModelNotFoundError, RemoteModelError
from rag.models.remote import REMOTE_LLM, OpenAICompatibleGenerator
from rag.testing import HashingEmbedder
from tests.processes import free_port, stop

SERVER_KEY = "llama-server-key"



def _remote_settings(index: Path, base_url: str, key: str | None = None) -> Settings:
    return Settings(
        index_dir=index, seeds_dir=None, llm=REMOTE_LLM, remote_llm_base_url=base_url,
        remote_llm_model="smollm2-135m-instruct", remote_llm_api_key=key, remote_llm_timeout=300,
        remote_llm_max_retries=0,
    )


# ------------------------------------------------------------------ fast: configuration and errors


def test_the_in_process_model_stays_the_default():
    assert Settings.model_fields["llm"].default == "qwen2.5-coder-1.5b-instruct"


def test_remote_model_without_a_url_says_what_to_set(tmp_path: Path):
    rag = RAG.open(settings=Settings(index_dir=tmp_path / "i", seeds_dir=None, llm=REMOTE_LLM), embedder=HashingEmbedder())
    with pytest.raises(ModelNotFoundError, match="RAG_REMOTE_LLM_BASE_URL"):
        rag.generator_for(None)
    rag.close()


def test_unreachable_server_is_a_clear_error_naming_the_url(tmp_path: Path):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    rag = RAG.open(settings=_remote_settings(tmp_path / "i", url), embedder=HashingEmbedder())
    rag.add([Path(__file__).resolve().parent.parent / "seeds"])
    assert isinstance(rag.generator, OpenAICompatibleGenerator)
    with pytest.raises(RemoteModelError, match="cannot reach the model server at " + url.replace(".", r"\.")):
        rag.ask("What has Ankara proposed for the Israel-Palestine conflict?")
    rag.close()


# ------------------------------------------------------------------ real: llama_cpp.server


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    from rag.models.registry import resolve_llm

    model = resolve_llm("smollm2-135m-instruct", Settings().cache_dir)
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"  # a file: its verbose log would fill a pipe
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "2", "--api_key", SERVER_KEY],
        stdout=out, stderr=subprocess.STDOUT, env={**os.environ},
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"llama_cpp.server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {SERVER_KEY}"}, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("llama_cpp.server did not come up")
            time.sleep(0.5)
        yield base_url
    finally:
        stop(proc, out)


@pytest.fixture
def remote_rag(llama_server: str, seed_index: Path, tmp_path: Path, minilm):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    rag = RAG.open(settings=_remote_settings(index, llama_server, SERVER_KEY), embedder=minilm)
    yield rag
    rag.close()


@pytest.mark.real_models
def test_answers_come_from_the_llama_cpp_server(remote_rag: RAG):
    tokens: list[str] = []
    answer = remote_rag.ask("In which city was Lavrov speaking at a news conference?", on_token=tokens.append, temperature=0.0)
    assert isinstance(answer, Answer)
    assert answer.model == "openai-compatible:smollm2-135m-instruct"
    assert tokens and answer.raw_text == "".join(tokens)  # the words came from the server, streamed
    assert not answer.refused, (answer.raw_text, answer.notes)
    assert answer.citations and all(f"[{c.n}]" in answer.text for c in answer.citations)
    assert all(c.article.title.startswith("Lavrov says") for c in answer.citations)
    assert answer.sources and "Pyongyang" in " ".join(h.text for h in answer.sources)


@pytest.mark.real_models
def test_cancel_and_close_stop_the_remote_stream(remote_rag: RAG):
    generator = remote_rag.generator
    messages = [{"role": "user", "content": "Count from one to one hundred in words."}]
    cancel = threading.Event()
    pieces = []
    for piece in generator.stream(messages, max_tokens=200, temperature=0.0, cancel=cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert len(pieces) == 3
    # Closing the generator early (a client that went away) releases the server for the next call.
    stream = generator.stream(messages, max_tokens=200, temperature=0.0)
    next(stream)
    stream.close()
    again = "".join(generator.stream([{"role": "user", "content": "Name a colour."}], max_tokens=8, temperature=0.0))
    assert again.strip()


@pytest.mark.real_models
def test_a_wrong_key_is_a_clear_error(llama_server: str, seed_index: Path, tmp_path: Path, minilm):
    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    rag = RAG.open(settings=_remote_settings(index, llama_server, "not-the-key"), embedder=minilm)
    with pytest.raises(RemoteModelError, match=r"refused the request \(401\)"):
        rag.ask("What has Ankara proposed?")
    rag.close()
