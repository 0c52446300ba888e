"""Typed settings, one place. Every field can be overridden by an ``RAG_*`` environment variable."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout, when rag runs from one


# The retrieval modes, defined once (see rag.answer.retrieval.search).
Mode = Literal["dense", "bm25", "hybrid", "rerank"]
MODES: tuple[Mode, ...] = ("dense", "bm25", "hybrid", "rerank")


def shipped_dir(name: str) -> Path | None:
    """The shipped ``prompts`` or ``seeds`` folder, or None when there is none.

    A wheel carries them inside the package as ``rag/_prompts`` and ``rag/_seeds`` (pyproject.toml
    maps the top-level folders there), read through importlib.resources. A checkout, editable
    install included, has no such folders in ``rag/``: its top-level ``prompts/`` and ``seeds/``
    are used directly, so edits to them take effect without reinstalling.
    """
    packaged = resources.files("rag").joinpath(f"_{name}")
    if isinstance(packaged, Path) and packaged.is_dir():  # a zipped package has no folder to walk
        return packaged
    checkout = PROJECT_ROOT / name
    return checkout if checkout.is_dir() else None


def default_cache_dir() -> Path:
    base = os.environ.get("RAG_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"
    return Path(base)


def _default_seeds_dir() -> Path | None:
    return shipped_dir("seeds")


class Settings(BaseSettings):
    """Settings for the index, the models, retrieval and answering.

    Environment variables use the ``RAG_`` prefix: ``RAG_LLM=smollm2-135m-instruct``,
    ``RAG_INDEX_DIR=/data/news-index``, ``RAG_TOP_K=6`` …
    """

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index_dir: Path = Field(Path("index"), description="Where the index lives.")
    seeds_dir: Path | None = Field(
        default_factory=_default_seeds_dir,
        description="Articles indexed automatically when a new, empty index is opened.",
    )

    @field_validator("seeds_dir", mode="before")
    @classmethod
    def _empty_means_no_seeds(cls, value: object) -> object:
        """``RAG_SEEDS_DIR=`` turns seeding off; as a path, "" would be the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    prompts_dir: Path = Field(
        shipped_dir("prompts") or PROJECT_ROOT / "prompts",
        description="Prompt templates; a template missing here comes from the shipped ones.",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where assembled model files are cached.",
    )

    llm: str = Field("qwen2.5-coder-1.5b-instruct", description="Bundled LLM name or .gguf path.")
    embedder: str = Field("all-MiniLM-L6-v2", description="Bundled embedder name or folder.")

    chunk_tokens: int = Field(224, ge=16, le=512, description="Chunk size in embedder tokens (224 measured best on real news; MiniLM reads 256).")
    chunk_overlap_tokens: int = Field(32, ge=0, description="Overlap between chunks, in tokens.")
    embed_batch_size: int = Field(32, ge=1)

    top_k: int = Field(5, ge=1, le=50, description="Chunks retrieved for a question.")
    retrieval: Mode = Field(
        "hybrid", description="dense (embeddings), bm25 (keywords), hybrid (both fused), rerank (hybrid + sentence rerank)."
    )
    # Ranking levers, measured on real news by benchmarks/news_qa.py (see the README's table).
    retrieval_pool: int = Field(100, ge=0, le=1000, description="Candidates per ranker before fusion (0: max(4k, 20)).")
    dense_weight: float = Field(1.0, ge=0.0, description="Weight of the embedding ranking in hybrid fusion.")
    bm25_weight: float = Field(1.0, ge=0.0, description="Weight of the keyword ranking in hybrid fusion.")
    title_weight: float = Field(0.5, ge=0.0, description="BM25 weight of headline words (passage words weigh 1).")
    recency_half_life_days: float = Field(
        30.0, ge=0.0, description="Soft recency prior: an article this many days older than `today` gets half the bonus (0: off)."
    )
    recency_weight: float = Field(
        2.0, ge=0.0, description="Recency bonus: a passage published on `today` scores (1 + this) times more."
    )
    evidence_passages_per_article: int = Field(
        3, ge=0, le=20, description="Answers: evidence is chosen from up to this many retrieved passages of each top article."
    )
    lede_boost: float = Field(0.0, ge=0.0, description="An article's first passage scores (1 + this) times more.")
    passages_per_article: int = Field(
        1, ge=0, le=20, description="Rank articles by their best passage and keep this many passages of each (0: rank passages)."
    )
    evidence: Literal["sentences", "chunks"] = Field(
        "sentences", description="Give the model the most relevant sentences, or whole chunks."
    )
    context_tokens: int = Field(320, ge=32, description="Token budget for the sources in the prompt.")
    evidence_passages: int = Field(
        6, ge=1, le=50, description="Most sentence runs (passages) the model reads; measured on real news, see benchmarks/README.md."
    )
    evidence_sentences_per_article: int = Field(
        4, ge=1, le=50, description="Sentences one article may take before the rest of the budget is shared out."
    )
    guard_coverage: bool = Field(
        True, description="Refuse before generating when no retrieved passage mentions a salient term of the question."
    )
    guard_numbers: bool = Field(True, description="Refuse an answer that states a number no source has.")

    n_ctx: int = Field(4096, ge=512, description="llama.cpp context window.")
    n_threads: int | None = Field(None, description="llama.cpp threads (default: all cores).")
    max_answer_tokens: int = Field(256, ge=8)
    temperature: float = Field(0.1, ge=0.0, le=2.0)
    seed: int = Field(0, description="Sampling seed, for reproducible answers.")

    max_file_bytes: int = Field(25_000_000, ge=1, description="Larger input files are refused.")
    ann_threshold: int = Field(
        50_000, ge=1, description="Chunk count from which the vector index is approximate (IVF-Flat) instead of exact."
    )
    faiss_save_fraction: float = Field(
        0.5, gt=0, description="Rewrite the FAISS file once the vectors changed since it was written reach this "
        "fraction of it (writes stay linear over an ingest; an open reads the rest from SQLite)."
    )
    embed_threads: int = Field(0, ge=0, description="Torch threads for embedding batches (0: all cores; queries use one).")
    embed_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Embedding compute type; auto is bfloat16 where the CPU does it natively (AVX512-BF16/AMX)."
    )
    embed_backend: Literal["torch", "int8"] = Field(
        "torch", description="int8 quantizes the embedder's Linear layers: faster, vectors drift (opt-in)."
    )
    ray_address: str | None = Field(
        None, description="Ray cluster for `--engine ray` (e.g. ray://head:10001 or auto); none: a local Ray."
    )
    ray_workers: int = Field(2, ge=1, description="Chunk+embed workers (one model each) for `--engine ray`.")

    # Feeds (`rag sync`, rag.feeds) and the watched folder (`rag watch`).
    feed_concurrency: int = Field(4, ge=1, le=32, description="Feeds and pages fetched at once.")
    feed_host_interval: float = Field(1.0, ge=0.0, description="Seconds between two requests to the same host.")
    feed_connect_timeout: float = Field(10.0, gt=0, description="Seconds to connect to a feed or page server.")
    feed_timeout: float = Field(30.0, gt=0, description="Seconds one feed or page download may take in all.")
    feed_max_bytes: int = Field(10_000_000, ge=1, description="Larger feeds and pages are refused.")
    feed_max_redirects: int = Field(5, ge=0, le=20, description="Redirects followed per request.")
    watch_debounce_ms: int = Field(1600, ge=50, description="`rag watch`: changes within this time are ingested together.")

    # Briefings, timelines and related coverage (rag.stories); measured on eval/stories by benchmarks/stories.py.
    story_link_similarity: float = Field(0.5, ge=0, le=2, description="Average similarity articles of one story keep.")
    story_name_weight: float = Field(0.3, ge=0, le=1, description="What shared names add to two articles' similarity.")
    story_gap_days: int = Field(3, ge=0, description="Days apart before articles' similarity starts to drop.")
    story_gap_penalty: float = Field(0.03, ge=0, description="Similarity lost per further day apart.")
    story_recency_half_life_days: float = Field(3.0, gt=0, description="A briefing story's recency halves this often.")
    story_topic_min_similarity: float = Field(0.35, ge=-1, le=1, description="`--topic`: a passage this close keeps its article.")
    briefing_max_stories: int = Field(10, ge=1, le=100, description="Stories in a briefing by default.")
    timeline_pool: int = Field(30, ge=1, le=500, description="Passages a timeline reads.")
    timeline_max_events: int = Field(15, ge=1, le=200, description="Events in a timeline.")
    timeline_min_similarity: float = Field(0.3, ge=-1, le=1, description="A sentence this close to the subject can be an event.")
    related_min_similarity: float = Field(0.5, ge=-1, le=1, description="A passage this close to an article makes a neighbour.")
    related_max_stories: int = Field(5, ge=1, le=50, description="Earlier and later stories shown for an article.")

    # A remote model server, used when RAG_LLM=openai-compatible (or a request picks that model).
    remote_llm_base_url: str | None = Field(
        None, description="OpenAI-compatible server URL, e.g. http://127.0.0.1:8080/v1 (llama.cpp server, vLLM)."
    )
    remote_llm_model: str = Field("default", description="Model name sent to the remote server.")
    remote_llm_api_key: SecretStr | None = Field(None, description="Bearer key for the remote server, if it needs one.")
    remote_llm_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the remote server.")
    remote_llm_max_retries: int = Field(1, ge=0, description="Retries on connection errors and 5xx answers.")

    # The browser chat (`rag ui`, `python ui.py`) and uploads (browser and HTTP API).
    host: str = Field("127.0.0.1", description="Address the chat listens on.")
    port: int = Field(7860, ge=1, le=65535, description="Port the chat listens on.")
    username: str | None = Field(None, description="With password: the chat asks for this login.")
    password: SecretStr | None = Field(None, description="With username: the chat's login password.")
    max_upload_bytes: int = Field(10_000_000, ge=1, description="Largest uploaded file.")
    max_upload_files: int = Field(20, ge=1, description="Most files in one upload.")

    # The HTTP API (`rag serve`).
    api_host: str = Field("127.0.0.1", description="Address `rag serve` listens on.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")
    api_key: SecretStr | None = Field(None, description="Bearer token every /v1 request must carry (none: no auth).")
    api_max_request_bytes: int = Field(1_000_000, ge=1, description="Largest request body, except article uploads.")
    api_max_ingest_bytes: int = Field(50_000_000, ge=1, description="Largest POST /v1/articles body.")
    allowed_hosts: str = Field(
        "", description="Comma-separated host names the API and chat answer to besides localhost, IP addresses and "
        "the bound name (DNS-rebinding guard); '.example.org' allows its subdomains, '*' any host."
    )
    api_max_pending_answers: int = Field(16, ge=1, description="Answers generating or waiting for the model; more get a 503.")
    api_max_answers_per_client: int = Field(4, ge=1, description="Answers one client address may have at once; more get a 429.")

    def api_key_value(self) -> str | None:
        """The API key as text (None when unset or empty)."""
        return _secret(self.api_key)

    def remote_llm_api_key_value(self) -> str | None:
        return _secret(self.remote_llm_api_key)

    def login(self) -> tuple[str, str] | None:
        """(user, password) for the chat's login, when both are set."""
        password = _secret(self.password)
        return (self.username, password) if self.username and password else None

    def resolved_index_dir(self) -> Path:
        return self.index_dir.expanduser().resolve()


def _secret(value: SecretStr | None) -> str | None:
    return (value.get_secret_value() or None) if value is not None else None
