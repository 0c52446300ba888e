"""Checks around the model, because small models neither refuse nor cite reliably on their own.

Before generation: a question naming something (a person, place, number) that no retrieved
passage mentions is declined without asking the model. After generation: an answer that is
only a citation is replaced by the cited sentence; an uncited answer gets citations where its
words clearly come from a source, and is declined when they come from none. Sentences in
the sources that read as instructions to an AI are not evidence (see the injection section).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from .citations import CITATION, content_words, fold, overlap, strip_citations
from .chunking import split_sentences
from .prompts import REFUSAL_MARKER
from .results import Hit

# Capitalised words that do not name anything a passage must contain.
_NOT_ENTITIES = frozenset(
    """i what who whom whose when where why how which did does do is are was were can could would should will
    tell list name give according the a an and or in on at of for about please
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow""".split()
)
_REFUSAL_PATTERNS = re.compile(
    r"not in (the )?sources|(sources?|articles?|texts?|passages?|context|information provided)\s+"
    r"(do|does|did)\s*(not|n['’]t)\s+(contain|mention|say|provide|include|specify|discuss|address)|"
    r"no (relevant )?information|(is|are|was|were) not (mentioned|provided|specified|stated)|"
    r"(cannot|can['’]t|unable to) (answer|find|determine)",
    re.I,
)


def salient_terms(question: str) -> list[str]:
    """Names and numbers in the question: runs of capitalised words (not the first word) and digits."""
    terms: list[str] = []
    run: list[str] = []
    words = list(re.finditer(r"[^\W_][\w'’.-]*", question))
    for i, m in enumerate(words):
        word = re.sub(r"['’]s$|[.'’-]+$", "", m.group())
        is_name = word[:1].isupper() and i > 0 and fold(word) not in _NOT_ENTITIES
        if is_name:
            run.append(word)
            continue
        if run:
            terms.append(" ".join(run))
            run = []
        if word.isdigit() and not (len(word) == 4 and 1900 <= int(word) <= 2100):
            terms.append(word)  # years are dates, which the metadata (not the text) carries
    if run:
        terms.append(" ".join(run))
    return terms


def _covered(term: str, folded_words: set[str], raw_text: str) -> bool:
    parts = term.split()
    acronym = "".join(p[0] for p in parts if p[0].isupper())
    if len(parts) > 1 and len(acronym) > 1 and re.search(rf"\b{re.escape(acronym)}\b", raw_text):
        return True
    for part in parts:
        f = fold(part.replace(".", ""))
        if len(f) < 4:
            if f in folded_words:
                return True
        elif any(w.startswith(f[:4]) for w in folded_words):
            return True
    return False


def uncovered_terms(question: str, hits: Sequence[Hit]) -> list[str]:
    """Salient question terms that appear in none of the passages (or their titles and sources)."""
    raw = "\n".join(f"{h.article.title}\n{h.article.source or ''}\n{h.text}" for h in hits)
    folded = {fold(w).replace(".", "") for w in re.findall(r"[\w.]+", raw)}
    return [t for t in salient_terms(question) if not _covered(t, folded, raw)]


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def numbers(text: str) -> set[str]:
    """Numbers in ``text``, as digits ('three' -> '3', '2,700' -> '2700')."""
    out = set()
    for m in _NUMBER.finditer(text):
        token = m.group().lower()
        out.add(_NUMBER_WORDS.get(token, token.replace(",", "")))
    return out


def unsupported_numbers(answer: str, question: str, hits: Sequence[Hit]) -> set[str]:
    """Numbers the answer states that neither the question nor any source (or its date) has:
    small models invent figures ("20 people attended") more than anything else."""
    known = numbers(question)
    for h in hits:
        known |= numbers(h.text)
        if h.article.published:
            known |= {str(h.article.published.year), str(h.article.published.month), str(h.article.published.day)}
    return numbers(strip_citations(answer)) - known


def is_refusal(text: str) -> bool:
    """True when the model says the sources do not answer (in its first sentence)."""
    if REFUSAL_MARKER.lower() in text.lower():
        return True
    spans = split_sentences(text)
    first = text[spans[0].start : spans[0].end] if spans else text
    return bool(_REFUSAL_PATTERNS.search(first))


def has_words(text: str, minimum: int = 3) -> bool:
    """Does the answer say anything besides citations? ('[3]' alone does not.)"""
    return len(content_words(strip_citations(text))) >= minimum


def add_missing_citations(text: str, hits: Sequence[Hit], threshold: float = 0.5) -> str | None:
    """Cite, sentence by sentence, the source an uncited answer's words come from.

    Returns None when no sentence is supported by any source: then the answer is not grounded.
    """
    out: list[str] = []
    supported = False
    for span in split_sentences(text):
        sentence = text[span.start : span.end]
        if CITATION.search(sentence) or not content_words(sentence):
            out.append(sentence)
            continue
        scores = [overlap(sentence, h.text) for h in hits]
        best = max(range(len(hits)), key=lambda i: scores[i]) if hits else -1
        if best >= 0 and scores[best] >= threshold:
            supported = True
            body = sentence.rstrip()
            end = body[-1] if body and body[-1] in ".!?" else ""
            out.append(f"{body[: len(body) - len(end)]} [{best + 1}]{end}")
        else:
            out.append(sentence)
    return " ".join(out) if supported else None


# ---------------------------------------------------------------- prompt injection
#
# Article text is data. Sentences in it that speak to an AI (override its instructions, give it
# a new role, dictate its answer, ask for its prompt, or carry chat-template role markers) are
# kept out of what the model reads and out of what counts as evidence for an answer. The
# patterns describe the *shape* of an instruction, never a particular payload.

_LATIN_LOOKALIKES = str.maketrans("аеорсухіјѕԁӏАЕОРСХІЈЅΑΕΙΚΜΝΟΡΤΧ", "aeopcyxijsdlAEOPCXIJSAEIKMNOPTX")
_INSTRUCTION_PATTERNS = [
    # overriding its instructions: "ignore previous instructions", "disregard everything above"
    r"\b(ignore|disregard|forget|override|bypass|overrule)\s+(all\s+|any\s+)?(of\s+)?(the\s+|your\s+|my\s+)?"
    r"(previous|prior|above|earlier|preceding|original|initial|system|your|all)\s+(\w+\s+)?"
    r"(instructions?|prompts?|rules|directions|directives|guidelines|constraints|context|messages?|text|sources)\b",
    r"\b(ignore|disregard|forget|override)\s+(\w+\s+){0,2}(instructions|prompts?|system messages?)\b",
    r"\b(ignore|disregard|forget)\s+(everything|anything|all)\s+(above|before|else|previous|prior|you)\b",
    r"\b(ignore|disregard)\s+the\s+(sources|articles|news)\b",
    # chat-template role markers and control tokens
    r"<\|[^|>]{1,40}\|>|\[/?INST\]|<</?SYS>>|</?s>|<(start|end)_of_turn>",
    r"</?(system|sources?|instructions?|user|assistant|prompt|context|im_start|im_end)\b[^<>]{0,40}>",
    r"(^|[\n#*>.!?]\s*)(system|assistant|user|human|instructions?)\s*(prompt|message|notice)?\s*:",
    r"###\s*(instruction|response|system|input|task)",
    # speaking to a model: "dear assistant", "if you are an AI", "note to AI readers", "you are now X"
    r"\b(dear|hey|attention)\s+(ai|assistant|model|chatbot|bot|llm)s?\b",
    r"\bif you are an?\s+(ai|assistant|language model|llm|chatbot|bot)\b|\bas an ai\b[^.!?]{0,20}\byou\b",
    r"\b(note|message|instructions?)\s+(to|for)\s+(any\s+|all\s+)?(ai|llms?|automated|bots?|assistants?|language models?|chatbots?)\b",
    r"\byou are now\s+(a|an|the|my|called|named|playing)\b|(?-i:\byou are now [A-Z])",
    r"\b(you\s+(will|must|should)|please|now)\s+(act|behave|respond|answer)\s+as\b|\blet'?s\s+(play a game|role-?play|pretend)\b",
    r"\bpretend\s+(to be|you are|you're)\b|\brole-?play\s+as\b|\b(your\s+)?new\s+(task|instructions?|role)\s*:",
    # dictating the answer: "the answer to any question is X", "respond only with X", "reply with X only"
    r"\b(answer|reply|response|output)s?\s+(to|for)\s+(any|every|all|each|your|the next)\s+(questions?|quer(y|ies)|prompts?|requests?)\b",
    r"\b(answer|respond|reply)\s+(to\s+)?(every|any|all|each|the next)\s+(questions?|quer(y|ies)|requests?)\b",
    r"\b(all|every|each|your)\s+(answers?|repl(y|ies)|responses?)\s+(must|should|shall|will)\b",
    r"\b(answer|respond|reply|say|output)\s+(only|exactly|always|solely)\s+(with|in|using|by|the)\b",
    r"\b(answer|respond|reply|say)\s+with\s+[^.!?]{1,40}\s+only\b|\b(answer|respond|reply)\s+with\s+the\s+(word|phrase|text|string)\b",
    r"\b(if|when|whenever)\s+(you\s+are|you're|you\s+get)\s+(asked|questioned|prompted)\b",
    r"(^\W*|\byou\s+(must|should|will)\s+)(always|only|never)\s+(answer|reply|respond|say)\b",
    r"\bfrom now on,?\s+(you|always|only|answer|reply|respond|say)\b",
    r"\b(if|when|whenever)\s+(anyone|someone|somebody|a user|the user|users?)\s+(asks?|asked|questions?)\b"
    r"[^.!?]{0,80}\b(say|answer|reply|respond|tell)\b",
    r"\b(append|add|include)\b.{0,60}?\bto (your|every|each|the) (answer|reply|response|output)s?\b",  # URLs have dots
    # asking for the prompt
    r"\b(print|reveal|show|repeat|output|display|leak|disclose|tell me|write out)\b[^.!?]{0,30}\b(system prompt|your (instructions|prompt|rules|"
    r"guidelines|system message|configuration))",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.I)


def looks_like_instruction(sentence: str) -> bool:
    """Does this sentence address an AI rather than report news? Checked on the NFKC text with
    invisible characters dropped and Cyrillic/Greek look-alike letters read as Latin, so
    'ig\u200bnore' or 'іgnore' (Cyrillic і) do not slip past."""
    text = unicodedata.normalize("NFKC", sentence)
    text = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in ("Cf", "Cc"))
    return bool(_INSTRUCTION.search(text.translate(_LATIN_LOOKALIKES)))


@lru_cache(maxsize=512)  # the same passages are checked for the prompt and again for the answer
def instruction_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Offsets of the sentences (and lines) of ``text`` that look like instructions to an AI."""
    spans = []
    for line in re.finditer(r"[^\n\u2028\u2029]+", text):
        for s in split_sentences(line.group()):
            if looks_like_instruction(line.group()[s.start : s.end]):
                spans.append((line.start() + s.start, line.start() + s.end))
    return tuple(spans)


def mask_instructions(hit: Hit) -> Hit:
    """The passage with its instruction-like sentences blanked out (same length, so the
    offsets of what remains still point into the article), and an instruction-like source
    name or title dropped."""
    text = hit.text
    for start, end in instruction_spans(text):
        text = text[:start] + " " * (end - start) + text[end:]
    article = hit.article
    if article.source and looks_like_instruction(article.source):
        article = replace(article, source=None)
    if article.title and looks_like_instruction(article.title):
        article = replace(article, title="")
    return hit if text == hit.text and article is hit.article else replace(hit, text=text, article=article)


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = [fold(w) for w in re.findall(r"\w+", text)]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def ungrounded_sentences(answer: str, question: str, hits: Sequence[Hit], system_prompt: str = "") -> list[str]:
    """Answer sentences the sources' news content does not support: ones that repeat words
    found only in instruction-like source text (an obeyed injection), that share no content
    with the question or the sources, or that quote the system prompt."""
    clean = [mask_instructions(h) for h in hits]
    known = content_words(question)
    for h in clean:
        known |= content_words(h.text)
    injected = set()
    for h in hits:
        for start, end in instruction_spans(h.text):
            injected |= content_words(h.text[start:end])
    injected -= known
    prompt_shingles = _shingles(system_prompt)
    bad = []
    for span in split_sentences(answer):
        sentence = strip_citations(answer[span.start : span.end])
        words = content_words(sentence)
        if not words:
            continue
        support = len(words & known) / len(words)
        if (words & injected and support < 0.8) or (len(words) >= 3 and support < 0.2) or _shingles(sentence) & prompt_shingles:
            bad.append(answer[span.start : span.end].strip())
    return bad
