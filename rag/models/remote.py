"""A generator backed by any OpenAI-compatible chat server (llama.cpp server, vLLM, ...).

Selected with ``RAG_LLM=openai-compatible`` (or ``model="openai-compatible"`` in an API request);
``RAG_REMOTE_LLM_BASE_URL``, ``RAG_REMOTE_LLM_MODEL`` and ``RAG_REMOTE_LLM_API_KEY`` say where
and what to call. The prompts, retrieval and citation checks stay local: only generation moves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from rag.errors import ModelNotFoundError, RemoteModelError
from rag.models.llama import Message

if TYPE_CHECKING:
    from rag.settings import Settings

REMOTE_LLM = "openai-compatible"  # the model name that selects this backend


class OpenAICompatibleGenerator:
    """Streams chat completions from a remote server with the official ``openai`` client.

    The server does the sampling, so it also does the queueing: no local lock is held, and
    several questions can be generated at once when the server allows it."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 1,
        seed: int | None = 0,
    ) -> None:
        import openai  # imported here: the in-process default should not pay for it

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"{REMOTE_LLM}:{model}"
        self.seed = seed
        # Local servers usually need no key, but the client insists on one.
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "no-key", timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleGenerator:
        if not settings.remote_llm_base_url:
            raise ModelNotFoundError(
                f"the '{REMOTE_LLM}' model needs a server: set RAG_REMOTE_LLM_BASE_URL "
                "(e.g. http://127.0.0.1:8080/v1) and RAG_REMOTE_LLM_MODEL"
            )
        key = settings.remote_llm_api_key_value()
        return cls(
            settings.remote_llm_base_url, settings.remote_llm_model, key,
            settings.remote_llm_timeout, settings.remote_llm_max_retries, settings.seed,
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, cancel: threading.Event | None = None
    ) -> Iterator[str]:
        import openai

        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=list(messages), max_tokens=max_tokens,  # type: ignore[arg-type]
                temperature=temperature, top_p=0.9, seed=self.seed, stream=True,
            )
        except openai.APIError as e:
            raise self._error(e) from e
        # Closing the response drops the connection, which is how a server learns to stop
        # generating: on cancel, and when our consumer stops reading (GeneratorExit).
        try:
            for chunk in response:
                if cancel is not None and cancel.is_set():
                    break
                if chunk.choices and (piece := chunk.choices[0].delta.content):
                    yield piece
        except openai.APIError as e:
            raise self._error(e) from e
        finally:
            response.close()

    def _error(self, e: Exception) -> RemoteModelError:
        import openai

        if isinstance(e, openai.APITimeoutError):
            return RemoteModelError(f"the model server at {self.base_url} did not answer in time (RAG_REMOTE_LLM_TIMEOUT)")
        if isinstance(e, openai.APIConnectionError):
            return RemoteModelError(
                f"cannot reach the model server at {self.base_url}: is it running? (RAG_REMOTE_LLM_BASE_URL)"
            )
        if isinstance(e, openai.APIStatusError):
            return RemoteModelError(
                f"the model server at {self.base_url} refused the request ({e.status_code}): {e.message}"
            )
        return RemoteModelError(f"the model server at {self.base_url} failed: {e}")
