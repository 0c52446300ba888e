"""Plain-language names for the chat's choices: what each retrieval mode and model is good for,
in one line a reader without the jargon can use to pick."""

from __future__ import annotations

from rag.models.remote import REMOTE_LLM

MODE_HELP = {
    "hybrid": "Words and meaning: best all-round",
    "dense": "Meaning: finds paraphrases, may miss names",
    "bm25": "Exact words: good for names and figures",
    "rerank": "Hybrid, re-checked by sentence: most precise, slower",
}

# Speed and quality on a laptop CPU (benchmarks/README: answer latency and news QA).
MODEL_HELP = {
    "qwen2.5-coder-1.5b-instruct": "Qwen 1.5B: best answers, 10–30 s each",
    "qwen2.5-coder-0.5b-instruct": "Qwen 0.5B: faster, weaker answers",
    "smollm2-135m-instruct": "SmolLM2: instant, for trying the app only",
    REMOTE_LLM: "Your model server: speed and quality depend on it",
}


def mode_choices(modes: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    return [(f"{MODE_HELP.get(m, m)} ({m})", m) for m in modes]


def model_choices(names: list[str]) -> list[tuple[str, str]]:
    return [(MODEL_HELP.get(n, f"{n} (a local model file)"), n) for n in names]
