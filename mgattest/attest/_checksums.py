"""Checksum files as ``sha256sum``/``sha512sum`` (GNU coreutils) and BSD tools write them.

The one parser of these files: ``mgattest migrate`` reads them as old claims and
``mgattest watch --manifest`` accepts them as its digest manifest. Forms understood:

- GNU: ``HEX  name`` (text mode), ``HEX *name`` (binary mode), ``HEX name`` (one space);
- GNU escaped names: a line starting with ``\\`` has ``\\\\``, ``\\n`` and ``\\r`` in its
  name for a backslash, newline and carriage return (what coreutils writes for such names);
- BSD/``--tag``: ``SHA256 (name) = HEX`` (also ``SHA512``, OpenSSL's ``SHA2-256(name)= HEX``);
- a bare ``HEX`` line, only where the caller names the file it is about
  (``model.pt.sha256`` holding just the digest).

The algorithm follows from the digest length (64 hex digits: SHA-256, 128: SHA-512) and
must agree with a BSD tag. Blank lines and ``#`` comments are skipped; a trailing
carriage return (a file written on Windows) is dropped. Lines that fit none of these are
returned as :class:`BadLine`s, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ChecksumAlgorithm = Literal["sha256", "sha512"]

_BY_LENGTH: dict[int, ChecksumAlgorithm] = {64: "sha256", 128: "sha512"}
_TAGS: dict[str, ChecksumAlgorithm] = {"SHA256": "sha256", "SHA2-256": "sha256",
                                       "SHA-256": "sha256", "SHA512": "sha512",
                                       "SHA2-512": "sha512", "SHA-512": "sha512"}
_HEX = re.compile(r"[0-9a-fA-F]+")
_GNU = re.compile(r"(?P<hex>[0-9a-fA-F]+) (?P<mode>[ *]?)(?P<name>.+)", re.DOTALL)
_BSD = re.compile(r"(?P<tag>[A-Z0-9-]+) ?\((?P<name>.+)\) ?= ?(?P<hex>[0-9a-fA-F]+)",
                  re.DOTALL)
_ESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


@dataclass(frozen=True)
class ChecksumLine:
    """One claim of a checksum file: ``name`` (as written, unescaped) has this digest."""

    name: str
    algorithm: ChecksumAlgorithm
    hex_digest: str  # lower case
    line: int  # 1-based line number in the file


@dataclass(frozen=True)
class BadLine:
    """A line of a checksum file that is not a checksum line, and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class ChecksumFile:
    """A parsed checksum file: its claims and the lines that could not be read."""

    entries: tuple[ChecksumLine, ...]
    bad_lines: tuple[BadLine, ...]


def _unescape(name: str) -> str | None:
    """A coreutils-escaped name, unescaped; None when an escape is not one it writes."""
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            replacement = _ESCAPES.get(name[i + 1:i + 2])
            if replacement is None:
                return None
            out.append(replacement)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _algorithm(hex_digest: str) -> ChecksumAlgorithm | None:
    return _BY_LENGTH.get(len(hex_digest))


def _parse_line(text: str, number: int,
                default_name: str | None) -> ChecksumLine | BadLine | None:
    """One line as a claim, a bad line, or None (blank or comment)."""
    if not text.strip() or text.startswith("#"):
        return None
    escaped = text.startswith("\\")
    body = text[1:] if escaped else text
    bsd = _BSD.fullmatch(body)
    if bsd is not None and bsd["tag"] not in _TAGS and not _HEX.fullmatch(bsd["tag"]):
        return BadLine(number, f"unsupported algorithm {bsd['tag']} (SHA256 or SHA512 only)")
    if bsd is not None and bsd["tag"] in _TAGS:
        tag, name, hex_digest = bsd["tag"], bsd["name"], bsd["hex"]
        algorithm = _TAGS[tag]
        if _algorithm(hex_digest) != algorithm:
            return BadLine(number, f"{tag} digest has {len(hex_digest)} hex digits")
    else:
        gnu = _GNU.fullmatch(body)
        if gnu is None:
            if default_name is not None and not escaped and _HEX.fullmatch(body.strip()):
                hex_digest, name = body.strip(), default_name
                escaped = False
            else:
                return BadLine(number, "not a sha256sum/sha512sum line")
        else:
            hex_digest, name = gnu["hex"], gnu["name"]
        algorithm_or_none = _algorithm(hex_digest)
        if algorithm_or_none is None:
            return BadLine(number, f"a {len(hex_digest)}-digit digest is neither SHA-256 "
                                   "(64) nor SHA-512 (128)")
        algorithm = algorithm_or_none
    if escaped:
        unescaped = _unescape(name)
        if unescaped is None:
            return BadLine(number, "invalid backslash escape in the file name")
        name = unescaped
    return ChecksumLine(name, algorithm, hex_digest.lower(), number)


def parse_checksum_text(text: str, *, default_name: str | None = None) -> ChecksumFile:
    """Parse the text of a ``sha256sum``/``sha512sum``/BSD-style checksum file.

    ``default_name``: the file a bare digest line is about (``x.sha256`` → ``x``); without
    it a bare digest is a bad line.
    """
    entries: list[ChecksumLine] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        parsed = _parse_line(line, number, default_name)
        if isinstance(parsed, ChecksumLine):
            entries.append(parsed)
        elif isinstance(parsed, BadLine):
            bad.append(parsed)
    return ChecksumFile(tuple(entries), tuple(bad))
