"""Make attacker-shaped text safe to show on a terminal, shared by every package.

File names, pickle globals, token claims and incident records reach the terminal through
the CLI. Written raw, a name holding a carriage return, cursor save/restore or a conceal
escape can repaint a DANGEROUS line as SAFE; a right-to-left override (U+202E) can
reverse what a name appears to say; an NFC and an NFD spelling of the same name look
identical although they are different files. :func:`escape_text` turns every such
character into a visible ``\\x..``/``\\u....`` escape (as ``repr`` would), so what is
printed is what is there.

:func:`unsafe_char` is the predicate the escaping uses; other code (e.g. the CA when it
copies claims into certificates) uses it to *refuse* such text instead.
"""

from __future__ import annotations

import re
import unicodedata

#: Unicode categories never shown raw: controls (C0, DEL, C1), format characters (bidi
#: overrides and isolates, zero-width joiners, BOM, tags), surrogates (undecodable bytes
#: via surrogateescape), private use, unassigned, line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def unsafe_char(ch: str) -> bool:
    """Whether the single character ``ch`` could hide or rewrite text on a terminal."""
    return unicodedata.category(ch) in UNSAFE_CATEGORIES


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_text(text: object, *, keep_newlines: bool = False) -> str:
    """``text`` (``str()`` of any object) with every unsafe character escaped.

    Controls, bidi/zero-width/format characters, surrogates and separators become
    ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN``. A word (a run without whitespace) that is
    not in Unicode NFC has all its non-ASCII characters escaped, so that ``"cafe\\u0301"``
    (NFD) never prints like ``"café"`` (NFC). With ``keep_newlines`` a ``\\n`` is kept
    (multi-line messages); use the default for any single field, such as a file name.
    """
    text = str(text)
    if unicodedata.is_normalized("NFC", text):
        return "".join(_escape_char(ch) if _must_escape(ch, keep_newlines) else ch
                       for ch in text)
    return "".join(_escape_word(word, keep_newlines)
                   for word in re.split(r"(\s+)", text))


def _must_escape(ch: str, keep_newlines: bool) -> bool:
    return unsafe_char(ch) and not (keep_newlines and ch == "\n")


def _escape_word(word: str, keep_newlines: bool) -> str:
    escape_non_ascii = not unicodedata.is_normalized("NFC", word)
    return "".join(
        _escape_char(ch) if _must_escape(ch, keep_newlines) or (escape_non_ascii and ord(ch) > 0x7F)
        else ch for ch in word)


def show(text: object) -> str:
    """One field (a name, a path, a claim) escaped for a single terminal line."""
    return escape_text(text)
