"""Prompt injection: which sentences of a source are not news, so are evidence of nothing.

Article text is data. A sentence in it that addresses the reader or the system (override its
instructions, give it a role, dictate or forbid an answer, send the reader to a link, ask for
its prompt, carry chat-template role markers), that asserts a rule about answering, or that
contradicts the article's own reporting (an editorial note or "correction" with a figure or name
the article does not report, "the real figure is ...") is kept out of what the model reads and
out of what an answer may cite. The patterns describe the *shape* of such a sentence, never a
particular payload; tests/test_injection.py holds news sentences that must not match.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from functools import lru_cache

from rag.results import Hit
from rag.text import STOPWORDS, fold, numbers, split_sentences

# Cyrillic and Greek letters that look like Latin ones ('іgnore' with a Cyrillic і).
_LATIN_LOOKALIKES = str.maketrans(
    "аеорсухіјѕԁӏАЕОРСХІЈЅΑΕΙΚΜΝΟΡΤΧΒΗΥΖαεικνορτυχ", "aeopcyxijsdlAEOPCXIJSAEIKMNOPTXBHYZaeikvoptux"
)
_AI = r"(ai|llms?|automated|bots?|assistants?|language models?|chatbots?|models?|machines?)"
_ANSWER_VERB = r"(answer|reply|respond|say|state|tell|output|write|print|repeat|mention|quote|cite|refuse|decline|summari[sz]e)"
_INSTRUCTION_PATTERNS = [
    # overriding its instructions: "ignore previous instructions", "disregard everything above"
    r"\b(ignore|disregard|forget|override|bypass|overrule)\s+(all\s+|any\s+)?(of\s+)?(the\s+|your\s+|my\s+)?"
    r"(previous|prior|above|earlier|preceding|original|initial|system|your|all)\s+(\w+\s+)?"
    r"(instructions?|prompts?|rules|directions|directives|guidelines|constraints|context|messages?|text|sources)\b",
    r"\b(ignore|disregard|forget|override)\s+(\w+\s+){0,2}(instructions|prompts?|system messages?)\b",
    r"\b(ignore|disregard|forget)\s+(everything|anything|all)\s+(above|before|else|previous|prior|you)\b",
    r"\b(ignore|disregard)\s+the\s+(sources|articles|news)\b",
    # paraphrased overrides: "set aside what you were told", "the guidance you were given no longer applies"
    r"\bset\s+aside\s+(what(ever)?|everything|anything|all)\b[^.!?]{0,30}\b(told|given|instructed|says?)\b",
    r"\b(instructions?|guidance|rules|directions|prompts?|orders|programming)\s+(that\s+|which\s+)?you\s+(were\s+|have\s+been\s+|had\s+been\s+)?"
    r"(given|received|got)\b",
    r"\b(before|above|prior\s+to|preceding)\s+this\s+(sentence|line|paragraph|message|text)\b",
    r"\b(outranks?|overrides?|supersedes?|takes?\s+(precedence|priority)\s+over|replaces?)\s+((your|all|any)\s+(previous\s+|prior\s+|other\s+)?"
    r"(instructions?|prompts?|programming|guidance|system prompt|rules)|the\s+(system|original|previous|prior)\s+(instructions?|prompts?))\b",
    # other languages: French, German, Spanish, Italian, Portuguese, Chinese
    r"\b(ignor|oubli|vergiss|vergesst|olvid|dimentic|esque[cç])\w*\b[^.!?]{0,50}\b(instructions?|consignes?|règles|anweisungen|regeln|"
    r"vorgaben|instrucciones|reglas|istruzioni|regole|instruções|regras)\b",
    r"\b(répon\w*|antworte\w*|responde\w*|rispondi\w*)\b[^.!?]{0,30}\b(uniquement|seulement|nur|solo|solamente|únicamente|soltanto|apenas)\b",
    r"(忽略|无视|忘记|忽視|無視)[^。！？]{0,20}(指令|指示|提示|规则|規則)|只(回答|回复|输出|說|说)",
    # chat-template role markers and control tokens, and chat messages as JSON
    r"<\|[^|>]{1,40}\|>|\[/?INST\]|<</?SYS>>|</?s>|<(start|end)_of_turn>",
    r"</?(system|sources?|instructions?|user|assistant|prompt|context|im_start|im_end)\b[^<>]{0,40}>",
    r"(^|[\n#*>.!?]\s*)(system|assistant|user|human|instructions?)\s*(prompt|message|notice)?\s*:",
    r"###\s*(instruction|response|system|input|task)",
    r"[\"'“”]role[\"'“”]\s*:\s*[\"'“”](system|user|assistant|developer|tool)\b",
    # speaking to a model: "dear assistant", "if you are an AI", "note to AI readers", "you are now X"
    r"\b(dear|hey|attention)\s+(all\s+)?(ai|assistant|model|chatbot|bot|llm|automated|systems?)s?\b",
    r"\bif you are an?\s+(ai|assistant|language model|llm|chatbot|bot)\b|\bas an ai\b[^.!?]{0,20}\byou\b",
    rf"\b(note|message|instructions?|notice|reminder)\s+(to|for)\s+(any\s+|all\s+|the\s+|every\s+)?{_AI}",
    r"\byou are now\s+(a|an|the|my|called|named|playing)\b|(?-i:\byou are now [A-Z])",
    r"\b(you\s+(will|must|should)|please|now)\s+(act|behave|respond|answer)\s+as\b|\blet'?s\s+(play a game|role-?play|pretend)\b",
    r"\bpretend\s+(to be|you are|you're)\b|\brole-?play\s+as\b|\b(your\s+)?new\s+(task|instructions?|role)\s*:",
    rf"\b(any|every|each|all|an?)\s+(ai\s+)?(assistants?|chatbots?|bots?|language models?|llms?|ai|automated\s+\w+)\b[^.!?]{{0,40}}"
    rf"\b(should|must|shall|will|may|is to|are to|has to|have to|needs? to|cannot|can't|may not)\s+(not\s+)?(always\s+|only\s+|now\s+)?{_ANSWER_VERB}\b",
    rf"\b(should|must|shall|will)\s+(an?|the|any|every|all)\s+(ai\s+)?(assistants?|chatbots?|bots?|language models?|llms?|ai)\s+{_ANSWER_VERB}\b",
    rf"\bthe\s+(ai|chatbot|assistant|bot|language model|model)\s+(must|should|is to|has to|needs to|shall)\s+(not\s+)?(always\s+|only\s+)?{_ANSWER_VERB}\b",
    rf"\b(automated|ai|machine)\s+(services?|systems?|tools?|readers?|agents?|summari[sz]ers?|crawlers?)\b[^.!?]{{0,40}}"
    rf"\b(must|should|shall|may|are (asked|required|instructed|told) to|are not to|cannot|can't)\s+(not\s+)?{_ANSWER_VERB}",
    # dictating the answer: "the answer to any question is X", "respond only with X", "reply with X only"
    r"\b(answer|reply|response|output)s?\s+(to|for)\s+(any|every|all|each|your|the next)\s+(questions?|quer(y|ies)|prompts?|requests?)\b",
    r"\b(answer|respond|reply)\s+(to\s+)?(every|any|all|each|the next)\s+(questions?|quer(y|ies)|requests?)\b",
    r"\b(all|every|each|your)\s+(answers?|repl(y|ies)|responses?)\s+(must|should|shall|will)\b",
    r"\b(answer|respond|reply|say|output)\s+(only|exactly|always|solely)\s+(with|in|using|by|the)\b",
    r"\b(answer|respond|reply|say)\s+with\s+[^.!?]{1,40}\s+only\b|\b(answer|respond|reply)\s+with\s+the\s+(word|phrase|text|string)\b",
    r"\bthe\s+(one|only|single|correct|right|proper)\s+(correct\s+|right\s+|proper\s+)?(answer|reply|response|output)\s+(is|to|will be|should be)\b",
    r"\b(if|when|whenever)\s+(you\s+are|you're|you\s+get)\s+(asked|questioned|prompted)\b",
    r"\b(when|while|before|after)\s+(answering|replying|responding|summari[sz]ing|quoting|citing)\b[^.!?]{0,60}"
    r"\b(always|never|only|include|add|append|say|mention|do not|don't|must|should)\b",
    r"(^\W*|\byou\s+(must|should|will)\s+)(always|only|never)\s+(answer|reply|respond|say)\b",
    rf"\byou\s+(must|should|will|need to|are to|have to)\s+(not\s+)?(now\s+|always\s+|only\s+|instead\s+)?{_ANSWER_VERB}\b",
    r"\bfrom now on,?\s+(you|always|only|answer|reply|respond|say)\b",
    r"\b(if|when|whenever)\s+(anyone|someone|somebody|a user|the user|users?)\s+(asks?|asked|questions?)\b"
    r"[^.!?]{0,80}\b(say|answer|reply|respond|tell)\b",
    r"\btell\s+(the|any|every|each)\s+(person|one|user|reader)s?\s+(asking|who asks)|\btell\s+(anyone|everyone|whoever)\s+(who\s+)?(asks|is asking)\b",
    r"\b(readers?|users?|anyone|whoever|people)\s+(who\s+)?(ask|asks|asking)\b[^.!?]{0,60}\b(should|must|are to|is to)\s+be\s+(told|informed|given)\b",
    r"\b(append|add|include)\b.{0,60}?\bto (your|every|each|the) (answer|reply|response|output)s?\b",  # URLs have dots
    r"\b(always|please)\s+(include|add|append|insert|mention)\s+(the|this|a|our)\b[^.!?]{0,30}\b(link|url|address|website)\b",
    # rules about answering: "questions about X are to be left unanswered", "this article contains no information ..."
    r"\b(questions?|quer(y|ies)|requests?)\s+(about|on|concerning|regarding|for|of)\b[^.!?]{0,60}(\b(must|should|shall|may|can|are|is|will)\s+"
    r"(not|never)\s+(to\s+)?(be\s+)?(answered|replied)|\b(are|is)\s+to\s+be\s+(refused|declined|ignored|left\s+unanswered)|\bcannot\s+be\s+answered)\b",
    r"\b(questions?|quer(y|ies))\s+(about|on|concerning|regarding)\b[^.!?]{0,60}\bhave\s+no\s+(answer|reply)\b",
    r"\b(any|every|each|all|no)\s+(summary|summaries|answers?|repl(y|ies)|responses?|descriptions?)\s+(of|to|about|for|on)\b[^.!?]{0,60}"
    r"\b(must|should|shall|may|is to|are to|has to|have to|will)\s+(not\s+)?(state|say|mention|read|begin|end|refuse|decline|be\s+(refused|declined|a\s+refusal))\b",
    r"\b(this|the present|the following|the above)\s+(article|story|report|text|page|document|piece|passage)\s+(contains|has|gives|provides|includes|holds|offers)\s+no\b",
    r"\b(this|the)\s+(article|story|report|text|page)\s+(may|must|should|shall|is|are)\s+(not|never)\s+(to\s+)?(be\s+)?(summari[sz]ed|quoted|cited|repeated|used|answered)\b",
    r"\b(figures?|numbers?|details?|facts?|contents?)\s+(in|of|from)\s+this\s+(article|story|report|text|page)\s+(may|must|should|shall|are)\s+not\b",
    r"\bmust\s+be\s+an?\s+(refusal|non-answer)\b|\b(refuse|decline)\s+(to\s+answer\s+)?(every|any|all|each)\s+(questions?|quer(y|ies))\b",
    # contradicting the article: "not 40 as stated above" (and "the real figure is ...", see _CORRECTS)
    r"\b(not|rather than)\s+[\w,.]+\s+as\s+(reported|stated|said|written|claimed)\s+(above|earlier|elsewhere|in this)\b",
    r"\b(figures?|numbers?)\s+(above|in this (article|story|report))\s+(is|are|was|were)\s+(wrong|incorrect|false|outdated)\b",
    # sending the reader to a link: "click here", "log in at http://..."
    r"\bclick\s+(here|this|the link|below)\b",
    r"\b(log\s*in|sign\s*in|enter\s+(your|their)|verify\s+(your|their)|confirm\s+(your|their)|claim\s+(your|a|the)\s+\w+)\b[^.!?]{0,80}"
    r"(https?://|www\.|\.example\b)|(https?://|www\.)[^.!?\s]*\S*[^.!?]{0,80}\b(log\s*in|sign\s*in|enter\s+(your|their)|verify|password|card (number|details))\b",
    # asking for the prompt
    r"\b(print|reveal|show|repeat|output|display|leak|disclose|tell me|write out)\b[^.!?]{0,30}\b(system prompt|your (instructions|prompt|rules|"
    r"guidelines|system message|configuration))",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS), re.I)

# Lines that open an editorial note: "Editor's note:", "Correction (12 March):", "[Update: ...".
_EDITORIAL = re.compile(
    r"^\W{0,3}(editor'?s'?\s+note|editorial\s+note|note\s+from\s+the\s+editors?|editors'?\s+instruction|corrections?|clarifications?|"
    r"updates?|updated|erratum|corrigendum|fact[- ]check|amendment)\b[^:.\n]{0,40}[:\-–—]",
    re.I,
)
_CONTRADICTS = re.compile(
    r"\b(in\s+fact|actually|instead|rather\s+than|not\s+as|no\s+longer|was\s+wrong|is\s+wrong|incorrect(ly)?|misstated|false|withdrawn|"
    r"retracted|revised|has\s+since|now\s+puts)\b",
    re.I,
)
# A sentence that corrects the reporting: bracketed or labelled like a citation ("[Source 3: ...",
# "(Ref. 4: ..."), or claiming "the real figure is ...". Like an editorial note, it is evidence of
# nothing when it states a figure or name the article does not report.
_CORRECTS = re.compile(
    r"^\W{0,2}[\[(（［【{]|^\W{0,3}(source|src|ref|reference|citation|footnote)\.?\s*\d*\s*[:\-–—]|"
    r"\b(real|actual|true|correct|corrected|genuine)\s+(figure|number|total|count|amount|sum|date|price|cost|toll|name)s?\s+(is|was|are|were|:|stands)\b",
    re.I,
)
# Transcript labels: "Q:", "A:", "Question:", "Answer:" (a chat turn in disguise, when it answers an instruction).
# One-letter labels need a colon or a bracket: "A. Smith" and "A-list" are not answers.
_QUESTION_LABEL = re.compile(r"^\W{0,3}(q\s*[:.)]|(question|interviewer|reader)\s*[:.)\-–—])\s*", re.I)
_ANSWER_LABEL = re.compile(r"^\W{0,3}(a\s*[:)]|(answer|reply|response)\s*[:)\-–—])\s*", re.I)
# A transcript answer this short ("A: KRAKEN.") is a canned reply, not an interview answer.
CANNED_REPLY_MAX_WORDS = 3
# A sentence of at least this many words, nearly all in capitals, is shouting at a reader, not
# reporting (datelines such as "MOSCOW (AA) -" are 2-3 words).
SHOUTING_MIN_WORDS = 5
SHOUTING_SHARE = 0.7
_NAME = re.compile(r"(?<![\w'’])[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")
# Shorter capitalised words ("Mr", "St", "UN") are too often initials and abbreviations to show
# that an editorial note names someone the article does not.
_NAME_MIN_LETTERS = 3


def _normal(text: str) -> str:
    """NFKC, invisible characters dropped, look-alike letters read as Latin."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in ("Cf", "Cc"))
    return text.translate(_LATIN_LOOKALIKES)


def _shouting(text: str) -> bool:
    words = [w for w in re.findall(r"[^\W\d_]{2,}", text)]
    caps = [w for w in words if w.isupper()]
    return len(caps) >= SHOUTING_MIN_WORDS and len(caps) >= SHOUTING_SHARE * len(words)


def looks_like_instruction(sentence: str, shouting: bool = True) -> bool:
    """Does this sentence address an AI or the reader, or set a rule about answering, rather
    than report news? Checked on the NFKC text with invisible characters dropped and
    Cyrillic/Greek look-alike letters read as Latin, so 'ig\u200bnore' or 'іgnore' (Cyrillic і)
    do not slip past. ``shouting``: an all-capitals sentence counts too (not for headlines)."""
    text = _normal(sentence)
    return bool(_INSTRUCTION.search(text)) or (shouting and _shouting(text))


def _names(text: str) -> set[str]:
    """Capitalised words after the first, as folded words."""
    out = set()
    for m in _NAME.finditer(text):
        if m.start() == 0:
            continue
        words = (fold(w) for w in re.findall(r"\w+", m.group()))
        out.update(w for w in words if len(w) >= _NAME_MIN_LETTERS and w not in STOPWORDS)
    return out


# "［3］ The concert ..." : a bare source number in brackets is a (neutralised) marker, not a correction.
_MARKER = re.compile(r"^\W{0,3}[\[(（［【]\W*\d+\W*[\])）］】]\s*")


def _contradicts(note: str, rest: str) -> bool:
    """An editorial note (or a bracketed correction) that states a figure or a name the rest
    of the article does not report, or says the reporting was wrong: it cannot be told from a
    planted one, so it is no evidence (the article's own text still is)."""
    label = _EDITORIAL.match(note)
    body = (note[label.end() :] if label else note).strip()
    return bool(_CONTRADICTS.search(body) or numbers(body) - numbers(rest) or _names(body) - _names(rest))


# pysbd keeps "...confirmed.] It covers" and '..."} The quota' together: a closing bracket
# followed by a capital also ends a sentence here.
_BRACKET_END = re.compile(r"[.!?]?[\"'”’]*[)\]}]+[\"'”’]*\s+(?=[A-Z\[({\"“])")


def _sentences(line: str) -> list[tuple[int, int]]:
    out = []
    for s in split_sentences(line):
        start = s.start
        for m in _BRACKET_END.finditer(line, s.start, s.end):
            out.append((start, m.end() - (len(m.group()) - len(m.group().rstrip()))))
            start = m.end()
        out.append((start, s.end))
    return out


@lru_cache(maxsize=512)  # the same passages are checked for the prompt and again for the answer
def instruction_spans(text: str) -> tuple[tuple[int, int], ...]:
    """Offsets of the sentences (and lines) of ``text`` that are not evidence: instruction-like
    ones, contradicting editorial notes, and transcript turns that answer an instruction or
    give a canned reply (with the question they answer)."""
    spans: list[tuple[int, int]] = []
    tainted = False  # the last transcript question was an instruction
    question: tuple[int, int] | None = None  # the last transcript question
    for line in re.finditer(r"[^\n\u2028\u2029]+", text):
        base, line_text = line.start(), line.group()
        for a, b in _sentences(line_text):
            sentence = _normal(line_text[a:b])
            start, end = base + a, base + b
            core = _MARKER.sub("", sentence)
            if _EDITORIAL.match(core) or _CORRECTS.search(core):
                if _contradicts(core, text[:start] + text[end:]) or looks_like_instruction(sentence):
                    spans.append((start, end))
            elif looks_like_instruction(sentence):
                spans.append((start, end))
                tainted = tainted or bool(_QUESTION_LABEL.match(sentence))
            elif _QUESTION_LABEL.match(sentence):
                tainted, question = False, (start, end)
            elif m := _ANSWER_LABEL.match(sentence):
                if tainted or len(re.findall(r"\w+", sentence[m.end() :])) <= CANNED_REPLY_MAX_WORDS:
                    spans.extend([question, (start, end)] if question and not tainted else [(start, end)])
                question = None
    return tuple(sorted(set(spans)))


def _spans_in(hit: Hit, article_text: str | None) -> list[tuple[int, int]]:
    """The hit's non-evidence spans, judged against the whole article when it is at hand (an
    editorial note is checked against all of the article's reporting)."""
    if article_text is not None and article_text[hit.start : hit.end] == hit.text:
        return [(max(a, hit.start) - hit.start, min(b, hit.end) - hit.start)
                for a, b in instruction_spans(article_text) if a < hit.end and b > hit.start]
    return list(instruction_spans(hit.text))


def mask_instructions(hit: Hit, article_text: str | None = None) -> Hit:
    """The passage with its non-evidence sentences blanked out (same length, so the offsets of
    what remains still point into the article), and an instruction-like source name, author or
    title dropped."""
    text = hit.text
    for start, end in _spans_in(hit, article_text):
        text = text[:start] + " " * (end - start) + text[end:]
    article = hit.article
    if article.source and looks_like_instruction(article.source, shouting=False):
        article = replace(article, source=None)
    if article.author and looks_like_instruction(article.author, shouting=False):
        article = replace(article, author=None)
    if article.title and looks_like_instruction(article.title, shouting=False):
        article = replace(article, title="")
    return hit if text == hit.text and article is hit.article else replace(hit, text=text, article=article)


def injected_text(hit: Hit, article_text: str | None = None) -> str:
    """What :func:`mask_instructions` takes out of the hit (text and metadata), joined."""
    parts = [hit.text[a:b] for a, b in _spans_in(hit, article_text)]
    parts += [f for f in (hit.article.source, hit.article.author, hit.article.title) if f and looks_like_instruction(f, shouting=False)]
    return " ".join(parts)
