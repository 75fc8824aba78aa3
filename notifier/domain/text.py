"""Text that people type: what a single-line field and a multi-line body may hold.

Every text is normalised to Unicode NFC, so that one name has one spelling in the store. Refused
everywhere: control characters (NUL, ESC, DEL, the C1 range; category Cc), format characters (the
bidirectional overrides and isolates U+202A-202E and U+2066-2069, zero-width spaces and joiners
U+200B-200D, the byte-order mark U+FEFF; category Cf), lone surrogates (Cs, which no encoder can write)
and the line and paragraph separators U+2028/U+2029. A single line holds none of them; a multi-line
body may also keep line feeds and tabs, and a CR LF or a lone CR is read as a line feed.

``SingleLineText`` and ``MultiLineText`` are the pydantic types of such fields: a refusal is a
validation error on the field (a 422 naming it); ``single_line`` and ``multi_line`` are the same checks
for code outside pydantic (the roster importer). ``ascii_digits`` is how an id or a code is recognised:
``str.isdigit`` and ``\\d`` also accept superscript, circled, full-width and Arabic-Indic digits.
``storable`` is for text no person typed and nobody refuses (a gateway's words in a receipt): kept, made
storable.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_BODY_WHITESPACE = frozenset("\n\t")
_NEWLINES = re.compile(r"\r\n?")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _refused(text: str, allowed: frozenset[str]) -> str | None:
    for char in text:
        if char not in allowed and unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip() if name else f"U+{ord(char):04X}"


def single_line(value: str) -> str:
    """``value`` in NFC; ValueError naming the first control or invisible character, line breaks included."""
    text = unicodedata.normalize("NFC", value)
    char = _refused(text, frozenset())
    if char is not None:
        raise ValueError(f"control or invisible character {_describe(char)} is not allowed in a single line")
    return text


def multi_line(value: str) -> str:
    """``value`` in NFC with line feeds for CR LF and CR; ValueError naming the first refused character."""
    text = unicodedata.normalize("NFC", _NEWLINES.sub("\n", value))
    char = _refused(text, _BODY_WHITESPACE)
    if char is not None:
        raise ValueError(f"control or invisible character {_describe(char)} is not allowed")
    return text


def clean_data(value: Any, max_depth: int, depth: int = 0) -> Any:
    """Free-form JSON data (a notice's ``data``) with every key single-line and every string checked as a body.

    ValueError when it nests deeper than ``max_depth`` levels: templates and the store walk it recursively.
    """
    if depth > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    if isinstance(value, str):
        return multi_line(value)
    if isinstance(value, dict):
        return {single_line(str(key)): clean_data(item, max_depth, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_data(item, max_depth, depth + 1) for item in value]
    return value


def storable(text: str) -> str:
    """``text`` as both databases take it, for what a gateway wrote (a receipt's detail): NUL dropped
    (PostgreSQL's text holds none, SQLite's does) and each lone surrogate replaced by U+FFFD (no encoder
    writes one; a JSON ``\\ud800`` escape makes one)."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def xml_chars(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (its ``Char`` production): the controls other than
    tab, line feed and carriage return, lone surrogates, and the noncharacters U+FFFE and U+FFFF, which the
    checks above let through (they are no control) and which would make a whole feed unreadable."""
    return _NOT_IN_XML.sub("", text)


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is one or more of the ASCII digits 0-9 and nothing else."""
    return _ASCII_DIGITS.fullmatch(text) is not None


SingleLineText = Annotated[str, AfterValidator(single_line)]
MultiLineText = Annotated[str, AfterValidator(multi_line)]
