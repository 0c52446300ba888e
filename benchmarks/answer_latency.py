"""Answer latency on the dev set: time to first token and tokens/s of our generator against a
bare ``llama_cpp.Llama`` call on the same messages (the same loaded model), our end-to-end
answer (retrieval, evidence, generation, checks) against that bare call, and the LangChain
peer's end-to-end answer. Runs alternate and start from the same KV-cache state (the system
prompt cached, as in steady use); medians reported.

    .venv/bin/python benchmarks/answer_latency.py --llm smollm2-135m-instruct --questions 5 --repeats 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from common import DEVSET, Results, dev_questions, median


def consume(pieces: Iterable[Any], started: float) -> tuple[float, float, int]:
    """(seconds to the first text piece, total seconds, pieces) of a stream."""
    first, n = float("nan"), 0
    for piece in pieces:
        if piece and isinstance(piece, str):
            if n == 0:
                first = time.perf_counter() - started
            n += 1
    return first, time.perf_counter() - started, n


def bare_stream(llm: Any, messages: list[dict[str, str]], max_tokens: int, temperature: float, seed: int) -> Iterable[str]:
    for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=temperature,
                                            top_p=0.9, repeat_penalty=1.05, seed=seed, stream=True):
        yield chunk["choices"][0]["delta"].get("content") or ""


def run(results: Results, llm_name: str, n_questions: int, repeats: int, max_tokens: int, peer: bool = True) -> dict[str, Any]:
    from rag import Settings
    from rag.evaluation import open_eval_index
    from rag.models.embedding import load_embedder

    tmp = tempfile.TemporaryDirectory()
    settings = Settings(cache_dir=Settings().cache_dir, seeds_dir=None, max_answer_tokens=max_tokens, n_threads=2)
    embedder = load_embedder(settings.embedder)
    rag = open_eval_index(DEVSET / "articles.jsonl", settings=settings.model_copy(update={"llm": llm_name}), embedder=embedder)
    gen = rag.generator
    llm = gen.load()  # type: ignore[attr-defined]
    system = rag.prompts.fill("answer_system")
    prefix = [{"role": "system", "content": system}, {"role": "user", "content": ""}]
    temp, seed = settings.temperature, settings.seed

    lc_store = lc_llm = None
    if peer:
        import numpy as np
        from langchain_community.vectorstores import FAISS
        from langchain_peer import hf_embeddings, llamacpp

        rows = rag.store._db.execute("SELECT c.text, c.vector FROM chunks c").fetchall()  # the same passages
        lc_store = FAISS.from_embeddings([(r[0], list(np.frombuffer(r[1], dtype=np.float32))) for r in rows], hf_embeddings())
        lc_llm = llamacpp(gen.path, settings.n_ctx, 2, max_tokens, temp, seed)  # type: ignore[attr-defined]

    m: dict[str, list[float]] = {k: [] for k in ("bare_ttft", "bare_total", "bare_tps", "gen_ttft", "gen_total", "gen_tps",
                                                 "e2e_ttft", "e2e_total", "e2e_bare_total", "lc_ttft", "lc_total", "lc_pieces", "e2e_pieces")}
    questions = dev_questions()
    used = 0
    for question in questions:
        if used >= n_questions:
            break
        gen.warm(prefix)  # type: ignore[attr-defined]
        rag.clear_caches()  # cold: the question and its sentences embedded afresh
        started = time.perf_counter()
        events = list(rag.stream(question, k=settings.top_k))
        answer = events[-1]
        if "first_token_s" not in answer.timings:  # refused before generating: nothing to compare
            continue
        used += 1
        e2e_first, e2e_total, e2e_n = consume(events[:-1], started)
        e2e_first = started + answer.timings["retrieval_s"] + answer.timings["first_token_s"] - started
        e2e_total = answer.timings["total_s"]
        messages = rag.prompts.answer_messages(answer.standalone_question or question, answer.sources)
        for r in range(repeats):
            order = ("bare", "gen") if r % 2 == 0 else ("gen", "bare")
            for who in order:
                gen.warm(prefix)  # type: ignore[attr-defined]
                t0 = time.perf_counter()
                stream = bare_stream(llm, messages, max_tokens, temp, seed) if who == "bare" else \
                    gen.stream(messages, max_tokens=max_tokens, temperature=temp)
                first, total, n = consume(stream, t0)
                m[f"{who}_ttft"].append(first)
                m[f"{who}_total"].append(total)
                m[f"{who}_tps"].append((n - 1) / max(total - first, 1e-9))
        m["e2e_ttft"].append(e2e_first)
        m["e2e_total"].append(e2e_total)
        m["e2e_pieces"].append(e2e_n)
        m["e2e_bare_total"].append(median(m["bare_total"][-repeats:]))
        if lc_store is not None and lc_llm is not None:
            from langchain_peer import chat_prompt, stuff_messages

            lc_llm.client.create_chat_completion(messages=prefix, max_tokens=1, temperature=0.0)  # same cache state
            t0 = time.perf_counter()
            docs = lc_store.similarity_search(question, k=settings.top_k)
            prompt = chat_prompt(lc_llm, stuff_messages(system, question, docs))
            first, total, n = consume(lc_llm.stream(prompt), t0)
            m["lc_ttft"].append(first)
            m["lc_total"].append(total)
            m["lc_pieces"].append(n)

    label = f"{llm_name}, {used} questions"
    gen_over = median(m["gen_total"]) / median(m["bare_total"]) - 1
    ttft_over = median(m["gen_ttft"]) / median(m["bare_ttft"]) - 1
    e2e_over = median([a / b for a, b in zip(m["e2e_total"], m["e2e_bare_total"])]) - 1
    results.add("answer", f"{label}: TTFT ours generator / bare Llama", f"{median(m['gen_ttft']) * 1000:.0f} / {median(m['bare_ttft']) * 1000:.0f} ms",
                f"{ttft_over:+.1%}")
    results.add("answer", f"{label}: tokens/s ours generator / bare Llama", f"{median(m['gen_tps']):.1f} / {median(m['bare_tps']):.1f}",
                f"{median(m['gen_tps']) / median(m['bare_tps']):.3f}")
    results.add("answer", f"{label}: generation time overhead over bare Llama (same messages)",
                f"{median(m['gen_total']):.2f} / {median(m['bare_total']):.2f} s", f"{gen_over:+.1%}", "< 5%", gen_over < 0.05)
    results.add("answer", f"{label}: end-to-end (retrieval+evidence+generation+checks) over bare generation",
                f"{median(m['e2e_total']):.2f} / {median(m['e2e_bare_total']):.2f} s", f"{e2e_over:+.1%}", "< 5%", e2e_over < 0.05)
    out = {"gen_overhead": gen_over, "e2e_overhead": e2e_over, "e2e_total": median(m["e2e_total"])}
    if m["lc_total"]:
        ratio = median([a / b for a, b in zip(m["e2e_total"], m["lc_total"])])
        results.add("peer", f"{label}: end-to-end answer ours / LangChain (median of per-question ratios)",
                    f"{median(m['e2e_total']):.2f} / {median(m['lc_total']):.2f} s", f"{ratio:.2f}", "< 1", ratio < 1)
        results.add("peer", f"{label}: time to first token ours / LangChain",
                    f"{median(m['e2e_ttft']):.2f} / {median(m['lc_ttft']):.2f} s",
                    f"{median(m['e2e_ttft']) / median(m['lc_ttft']):.2f}")
        results.add("peer", f"{label}: pieces generated ours / LangChain (median)", f"{median(m['e2e_pieces']):.0f} / {median(m['lc_pieces']):.0f}")
        out["lc_total"] = median(m["lc_total"])
    rag.close()
    tmp.cleanup()
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--llm", default="smollm2-135m-instruct")
    p.add_argument("--questions", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=96)
    args = p.parse_args()
    r = Results()
    run(r, args.llm, args.questions, args.repeats, args.max_tokens)
    print(r.markdown())
