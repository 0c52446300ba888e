"""Stop frees the shared llama.cpp model at any moment, before the first word too: a Stop while
the model reads its prompt aborts that read (llama.cpp's abort callback) instead of leaving it
to finish for nobody while the next question waits. Real SmolLM2; no timing, only what the
model computed."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.real_models

PROMPT = [{"role": "user", "content": "The harbour reopened after the storm. " * 120 + "\nWhat reopened?"}]
SHORT = [{"role": "user", "content": "Name a colour."}]


def _reply(generator, messages) -> str:
    return "".join(generator.stream(messages, max_tokens=12, temperature=0.0))


def test_stop_while_the_prompt_is_read_aborts_it_and_leaves_the_model_sound(smollm):
    llm = smollm.load()
    expected = _reply(smollm, SHORT)  # what an undisturbed model says
    prompt_tokens = len(llm.tokenize(PROMPT[0]["content"].encode(), add_bos=False))
    cancel = threading.Event()
    evaluated: list[int] = []
    real_eval = llm.eval

    def eval_and_stop(tokens):  # Stop pressed the moment the prompt starts being read
        cancel.set()
        try:
            return real_eval(tokens)
        finally:
            evaluated.append(llm.n_tokens)

    llm.eval = eval_and_stop
    try:
        pieces = list(smollm.stream(PROMPT, max_tokens=64, temperature=0.0, cancel=cancel))
    finally:
        del llm.eval
    assert pieces == []
    # The read was cut short: far fewer tokens in the cache than the prompt has.
    assert evaluated and evaluated[0] < prompt_tokens // 2, (evaluated, prompt_tokens)
    assert smollm._lock.acquire(blocking=False)  # the model is free now, not after the prompt
    smollm._lock.release()
    # The next answer is the undisturbed one: nothing half-read is left in the KV cache.
    assert _reply(smollm, SHORT) == expected


def test_a_set_cancel_means_no_prompt_is_read_at_all(smollm):
    llm = smollm.load()
    cancel = threading.Event()
    cancel.set()
    calls: list[int] = []
    real_eval = llm.eval
    llm.eval = lambda tokens: calls.append(len(tokens)) or real_eval(tokens)
    try:
        assert list(smollm.stream(PROMPT, max_tokens=64, temperature=0.0, cancel=cancel)) == []
    finally:
        del llm.eval
    assert calls == []


def test_an_uncancelled_stream_is_unaffected_by_the_abort_check(smollm):
    cancel = threading.Event()
    text = "".join(smollm.stream(SHORT, max_tokens=12, temperature=0.0, cancel=cancel))
    assert text.strip() and text == _reply(smollm, SHORT)


def test_stop_while_waiting_for_another_callers_answer_does_not_wait_for_it(smollm):
    smollm.load()
    cancel = threading.Event()
    cancel.set()
    assert smollm._lock.acquire()  # another session is generating
    try:
        assert list(smollm.stream(PROMPT, max_tokens=64, temperature=0.0, cancel=cancel)) == []
    finally:
        smollm._lock.release()
