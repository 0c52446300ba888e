"""Bytes to text: bounded reads, byte-order marks and encodings, binary detection; and the
load results (articles, failures, warnings) every format returns."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from rag.documents.articles import Article, clean_text
from rag.errors import LoadError
from rag.results import Location

_DATELINE = re.compile(r"^([A-Z][A-Za-z .,'’-]{1,40}?)\s*\(([^()\n]{1,40})\)\s*[-–—]+\s*")


@dataclass
class LoadFailure:
    """One file or record that could not be loaded, and why."""

    location: Location
    reason: str

    @classmethod
    def of(cls, file: str | Path, reason: str) -> Self:
        """A problem with the whole file."""
        return cls(Location(str(file)), reason)

    @property
    def path(self) -> str:
        return str(self.location)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadWarning(LoadFailure):
    """Something fixed or dropped while loading (a guessed encoding, an unreadable date, a
    repeated id); the article itself was loaded."""


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        """Append ``other``'s articles, failures and warnings (file order is kept by the caller)."""
        self.articles.extend(other.articles)
        self.failures.extend(other.failures)
        self.warnings.extend(other.warnings)


Warn = Callable[[str], None]


def _ignore(message: str) -> None:
    pass


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing files over ``max_bytes`` before reading them; the read itself
    also stops at the limit, in case the file grows in between."""
    size = path.stat().st_size
    if size <= max_bytes:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) <= max_bytes:
            return data
        size = len(data)
    raise LoadError(
        str(path),
        f"file is {size:,} bytes; the limit is {max_bytes:,} (RAG_MAX_FILE_BYTES): split the file or raise the limit",
    )


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    if not path.exists():
        raise LoadError(str(path), "no such file")
    if not path.is_file():
        raise LoadError(str(path), "not a regular file")
    data = _read_bounded(path, max_bytes)
    if not data.strip():
        raise LoadError(str(path), "empty file")
    return data


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0b\x0c\r\x1b") + b"\x7f"
_ASCII = bytes(range(128))
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _bom_encoding(data: bytes) -> str | None:
    return next((encoding for bom, encoding in _BOMS if data.startswith(bom)), None)


def _check_not_binary(path: Path, data: bytes) -> None:
    """A few stray control bytes are cleaned out of text later; many mean it is not text."""
    if _bom_encoding(data) in ("utf-16", "utf-32"):
        return  # their NUL bytes are text
    sample = data[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if controls > max(2, len(sample) // 20):
        raise LoadError(
            str(path),
            f"binary file ({controls:,} control bytes in the first {len(sample):,}), not text; "
            "if it is UTF-16 text without a byte-order mark, save it as UTF-8",
        )


_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")


def _cp1252_fallback(e: UnicodeError) -> tuple[str, int]:
    assert isinstance(e, UnicodeDecodeError)
    bad = e.object[e.start : e.end]
    # Windows-1252 leaves five bytes undefined; Latin-1 makes those C1 controls, which clean_text drops.
    return "".join(bytes([b]).decode("cp1252" if b not in _CP1252_UNDEFINED else "latin-1") for b in bad), e.end


codecs.register_error("rag-cp1252-fallback", _cp1252_fallback)


def decode_text(path: Path, data: bytes, warn: Warn = _ignore) -> str:
    """The text of a file: UTF-8 (the norm), the encoding its byte-order mark names, UTF-8 with
    stray Windows-1252 bytes (pasted from old files), or else the encoding charset_normalizer
    detects. Every guess is reported through ``warn``; undecodable bytes are a LoadError."""
    if encoding := _bom_encoding(data):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            name = encoding.upper().replace("-SIG", "")
            raise LoadError(
                str(path), f"starts with a {name} byte-order mark but is not valid {name} (byte offset {e.start:,}); save it as UTF-8"
            ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        first_bad = e.start
    non_ascii = len(data.translate(None, _ASCII))
    utf8 = sum(len(m) for m in _UTF8_MULTIBYTE.findall(data))
    if utf8 and utf8 >= non_ascii - utf8:  # mostly UTF-8: read the strays as Windows-1252
        warn(
            f"not valid UTF-8 throughout: {non_ascii - utf8:,} stray byte(s), the first at offset {first_bad:,}, "
            "were read as Windows-1252; save the file as UTF-8 to be sure"
        )
        return data.decode("utf-8", errors="rag-cp1252-fallback")
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise LoadError(
            str(path),
            f"not UTF-8 text (byte 0x{data[first_bad]:02x} at offset {first_bad}) and no other encoding fits; convert it to UTF-8",
        )
    # Among equally good single-byte guesses, Western European (Windows-1252) is the likeliest.
    if best.encoding != "cp1252" and (
        "cp1252" in best.could_be_from_charset
        or any(m.encoding == "cp1252" and m.chaos <= best.chaos and m.coherence >= best.coherence for m in matches)
    ):
        warn("not UTF-8; read as cp1252 (detected): check the text, or save the file as UTF-8")
        return data.decode("cp1252", errors="rag-cp1252-fallback")
    warn(f"not UTF-8; read as {best.encoding} (detected): check the text, or save the file as UTF-8")
    return str(best)


def _first_sentence_title(text: str) -> str:
    body = _DATELINE.sub("", text, count=1).strip()
    first = re.split(r"(?<=[.!?])\s", body, maxsplit=1)[0]
    if len(first) > 110:
        first = first[:110].rsplit(" ", 1)[0] + "…"
    return first


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (feed summaries, JSON bodies), one line per block."""
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return fragment
    for el in root.iter("script", "style"):
        el.drop_tree()
    for el in root.iter("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote"):
        el.tail = "\n" + (el.tail or "")
    return clean_text(root.text_content())
