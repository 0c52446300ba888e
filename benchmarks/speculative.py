"""Faster generation without changing a word: prompt-lookup decoding and a small draft model,
against plain decoding, with the default Qwen2.5-Coder-1.5B on real RAG prompts.

    .venv/bin/python benchmarks/speculative.py [--questions 8] [--max-tokens 96]

The prompts are the pipeline's own (dev-set questions, evidence sentences selected by the
pipeline). Decoding is greedy (temperature 0), where speculation must give the same tokens;
each question runs once per configuration, configurations alternating, so machine load hits all
alike. Reports generated tokens/s (after the first token), time to first token, and how many
answers are identical to plain decoding's. The rule (issue #12): keep one only at >= 1.3x
tokens/s with identical output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def draft_model_class():  # type: ignore[no-untyped-def]
    """A llama-cpp-python draft model backed by a second, smaller GGUF with the same tokenizer:
    it follows the target's tokens (reusing its own KV cache prefix) and proposes its greedy
    continuation."""
    from llama_cpp.llama_speculative import LlamaDraftModel

    class SmallModelDraft(LlamaDraftModel):
        def __init__(self, llama: Any, num_pred_tokens: int = 4) -> None:
            self.llama = llama
            self.k = num_pred_tokens
            self.eos = llama.token_eos()

        def _logits(self) -> np.ndarray:
            d = self.llama
            return np.ctypeslib.as_array(d._ctx.get_logits(), shape=(d._n_vocab,))

        def __call__(self, input_ids: np.ndarray, /, **kwargs: Any) -> np.ndarray:
            d = self.llama
            limit = min(d.n_tokens, len(input_ids))
            same = d.input_ids[:limit] == input_ids[:limit]
            n = limit if bool(same.all()) else int(np.argmin(same))
            n = min(n, len(input_ids) - 1)  # re-evaluate at least the last token to get its logits
            d.n_tokens = n  # eval() drops the KV cache past n_tokens
            d.eval(input_ids[n:].tolist())
            out: list[int] = []
            for _ in range(self.k):
                token = int(np.argmax(self._logits()))
                out.append(token)
                if token == self.eos:
                    break
                d.eval([token])
            return np.array(out, dtype=np.intc)

    return SmallModelDraft


def rag_prompts(n: int) -> list[list[dict[str, str]]]:
    """The answer prompts the pipeline builds for ``n`` dev-set questions."""
    from rag import Settings
    from rag.evaluation import load_questions, open_eval_index

    class Recorder:
        name = "recorder"

        def __init__(self) -> None:
            self.calls: list[list[dict[str, str]]] = []

        def stream(self, messages, *, max_tokens, temperature, cancel=None):  # type: ignore[no-untyped-def]
            self.calls.append(list(messages))
            yield "NOT IN SOURCES"

    recorder = Recorder()
    devset = ROOT / "eval" / "devset"
    rag = open_eval_index(devset / "articles.jsonl", Settings(seeds_dir=None), llm=recorder)  # type: ignore[arg-type]
    questions, _ = load_questions(devset / "questions.jsonl")
    for q in questions:
        if len(recorder.calls) >= n:
            break
        if q.answers and not q.history:
            rag.ask(q.question, today=q.question_date)
    rag.close()
    return recorder.calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--draft-tokens", type=int, default=4)
    args = parser.parse_args(argv)

    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    from rag import Settings
    from rag.models.registry import resolve_llm

    cache = Settings().cache_dir
    target = str(resolve_llm("qwen2.5-coder-1.5b-instruct", cache))
    prompts = rag_prompts(args.questions)
    common = dict(model_path=target, n_ctx=4096, n_threads=args.threads, n_threads_batch=args.threads, n_batch=512,
                  seed=0, verbose=False)
    # llama-cpp-python 0.3.36 turns on logits for every token with a draft model but sizes its
    # score buffer from the logits_all argument, so it must be passed explicitly (else a ValueError).
    spec = {**common, "logits_all": True}
    configs: dict[str, Any] = {
        "plain": Llama(**common),
        "prompt lookup (10 tokens, 2-grams)": Llama(**spec, draft_model=LlamaPromptLookupDecoding(num_pred_tokens=10)),
        "prompt lookup (4 tokens, 3-grams)": Llama(**spec, draft_model=LlamaPromptLookupDecoding(max_ngram_size=3, num_pred_tokens=4)),
    }
    try:
        small = str(resolve_llm("qwen2.5-coder-0.5b-instruct", cache))
        draft = Llama(**{**common, "model_path": small})
        configs[f"draft qwen2.5-coder-0.5b ({args.draft_tokens} tokens)"] = Llama(
            **spec, draft_model=draft_model_class()(draft, args.draft_tokens))
    except Exception as e:  # the draft's packages are optional
        print(f"no draft model: {e}", file=sys.stderr)

    results: dict[str, dict[str, list[Any]]] = {name: {"tps": [], "ttft": [], "text": []} for name in configs}
    load = os.getloadavg()
    for messages in prompts:
        for name, llm in configs.items():
            started = time.perf_counter()
            first = None
            pieces = []
            for chunk in llm.create_chat_completion(messages=messages, max_tokens=args.max_tokens, temperature=0.0,
                                                    repeat_penalty=1.05, seed=0, stream=True):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    first = first or time.perf_counter()
                    pieces.append(piece)
            end = time.perf_counter()
            text = "".join(pieces)
            n = len(llm.tokenize(text.encode(), add_bos=False))
            results[name]["ttft"].append((first or end) - started)
            results[name]["tps"].append((n - 1) / (end - first) if first and n > 1 and end > first else float("nan"))
            results[name]["text"].append(text)

    plain = results["plain"]
    print(f"\n{len(prompts)} RAG prompts, greedy, max {args.max_tokens} tokens, {args.threads} threads; "
          f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n")
    print("| decoding | generated tokens/s p50 | vs plain | TTFT p50 s | identical to plain |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        tps = statistics.median([x for x in r["tps"] if x == x])
        ratio = tps / statistics.median([x for x in plain["tps"] if x == x])
        same = sum(a == b for a, b in zip(r["text"], plain["text"]))
        print(f"| {name} | {tps:.1f} | {ratio:.2f}x | {statistics.median(r['ttft']):.2f} | {same}/{len(prompts)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
