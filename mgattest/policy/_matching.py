"""Anchored matching: string matchers (exact / regex / anyOf) and path globs.

Every pattern here matches the WHOLE value (``re.fullmatch``). cosign, Kyverno and
policy-controller have shipped unanchored identity regexes where
``https://github.com/acme/.*`` admitted ``https://evil.example/?u=https://github.com/acme/x``;
a glob or a list entry never matches by prefix alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mgattest._jsonutil import JSONObject

MAX_VALUE_LEN = 8192


@dataclass(frozen=True)
class Matcher:
    """Matches a string exactly, or against one of several anchored regexes/exact values."""

    exact: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]
    text: str  # human form, for explanations

    def matches(self, value: object) -> bool:
        """True when *value* is a string equal to an exact entry or fully matching a regex."""
        if not isinstance(value, str) or len(value) > MAX_VALUE_LEN:
            return False
        if value in self.exact:
            return True
        return any(p.fullmatch(value) for p in self.patterns)


MatcherSpec = str | JSONObject
"""A matcher as a policy writes it: ``"x"``, ``{exact: x}``, ``{regex: r}`` or
``{anyOf: [...]}`` (of the same)."""


def compile_matcher(spec: MatcherSpec) -> Matcher:
    """Build a Matcher from ``"x"``, ``{exact: x}``, ``{regex: r}`` or ``{anyOf: [...]}``.

    Raises ``ValueError`` (with the offending pattern) on a bad regex.
    """
    exact: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    texts: list[str] = []

    def add(item: Any) -> None:
        if isinstance(item, str):
            exact.add(item)
            texts.append(repr(item))
        elif "exact" in item:
            exact.add(item["exact"])
            texts.append(repr(item["exact"]))
        else:
            try:
                patterns.append(re.compile(item["regex"]))
            except re.error as exc:
                raise ValueError(f"invalid regex {item['regex']!r}: {exc}") from None
            texts.append(f"/{item['regex']}/ (whole value)")

    if isinstance(spec, dict) and "anyOf" in spec:
        for entry in spec["anyOf"]:
            add(entry)
    else:
        add(spec)
    text = texts[0] if len(texts) == 1 else "any of " + ", ".join(texts)
    return Matcher(frozenset(exact), tuple(patterns), text)


@lru_cache(maxsize=4096)
def glob_to_regex(glob: str) -> re.Pattern[str]:
    """Translate a path glob to an anchored regex.

    ``*`` and ``?`` never cross ``/``; ``**`` matches any number of path segments
    (``**/x`` also matches ``x``); ``[abc]`` is a character class. The whole path
    must match.
    """
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                i += 2
                if glob.startswith("/", i):
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 2)
            if j == -1:
                raise ValueError(f"unterminated character class in glob {glob!r}")
            body = glob[i + 1:j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def glob_match(glob: str, path: str) -> bool:
    """True when the whole POSIX *path* matches *glob*."""
    return glob_to_regex(glob).fullmatch(path) is not None


@lru_cache(maxsize=65536)
def any_glob(globs: tuple[str, ...], path: str) -> bool:
    """True when *path* matches at least one glob (memoised: rules share globs and a
    model's names repeat across evaluations)."""
    return any(glob_to_regex(g).fullmatch(path) is not None for g in globs)
