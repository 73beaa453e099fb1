"""What a content scan found: findings, per-file reports and verdicts.

Verdicts are ordered ``safe < suspicious < malformed < dangerous``: a file's verdict is
the worst severity among its findings. ``info`` findings never change the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NotRequired, TypedDict

from mgattest.inspect._detect import policy_format

if TYPE_CHECKING:
    from mgattest.inspect._admission import Admission

SAFE = "safe"
SUSPICIOUS = "suspicious"
MALFORMED = "malformed"
DANGEROUS = "dangerous"
INFO = "info"

VERDICTS = (SAFE, SUSPICIOUS, MALFORMED, DANGEROUS)
_RANK = {INFO: 0, SAFE: 0, SUSPICIOUS: 1, MALFORMED: 2, DANGEROUS: 3}


def worst(*verdicts: str) -> str:
    """The most severe of the given verdicts (``info`` counts as ``safe``)."""
    best = SAFE
    for v in verdicts:
        if _RANK[v] > _RANK[best]:
            best = v
    return best


class FindingJSON(TypedDict):
    """:meth:`Finding.to_dict`: the fields that are set."""

    severity: str
    kind: str
    detail: str
    module: NotRequired[str]
    name: NotRequired[str]
    offset: NotRequired[int]
    member: NotRequired[str]


class ImportRecordJSON(TypedDict):
    """:meth:`ImportRecord.to_dict`."""

    module: str
    name: str
    offset: int
    allowed: bool
    member: NotRequired[str]


class FileReportJSON(TypedDict):
    """:meth:`FileReport.to_dict` (what ``mgattest inspect --json`` prints per file)."""

    path: str
    format: str
    size: int
    compression: str | None
    policy_format: str
    pickled: bool
    verdict: str
    findings: list[FindingJSON]
    imports: list[ImportRecordJSON]


@dataclass(frozen=True)
class Finding:
    """One reason a file is not plainly safe.

    ``severity`` is ``info`` | ``suspicious`` | ``malformed`` | ``dangerous``; ``kind`` a
    short machine tag (``import``, ``call``, ``frame-mismatch``, ``truncated``...);
    ``offset`` the byte offset inside ``member`` (or the file when ``member`` is None).
    """

    severity: str
    kind: str
    detail: str
    module: str | None = None
    name: str | None = None
    offset: int | None = None
    member: str | None = None

    def where(self, path: str) -> str:
        """A human location string: ``path!member@offset``."""
        loc = path
        if self.member:
            loc += f"!{self.member}"
        if self.offset is not None:
            loc += f"@{self.offset}"
        return loc

    def to_dict(self) -> FindingJSON:
        """JSON-ready form; fields that are None are left out."""
        out: FindingJSON = {"severity": self.severity, "kind": self.kind, "detail": self.detail}
        if self.module is not None:
            out["module"] = self.module
        if self.name is not None:
            out["name"] = self.name
        if self.offset is not None:
            out["offset"] = self.offset
        if self.member is not None:
            out["member"] = self.member
        return out


@dataclass(frozen=True)
class ImportRecord:
    """A global a pickle would import (module, name) and whether the allow-list admits it."""

    module: str
    name: str
    offset: int
    allowed: bool
    member: str | None = None

    def to_dict(self) -> ImportRecordJSON:
        """JSON-ready form; ``member`` only when set."""
        out: ImportRecordJSON = {"module": self.module, "name": self.name, "offset": self.offset,
                                 "allowed": self.allowed}
        if self.member is not None:
            out["member"] = self.member
        return out


@dataclass
class FileReport:
    """The scan result of one file (or one in-memory blob)."""

    path: str
    format: str
    size: int
    findings: list[Finding] = field(default_factory=list)
    imports: list[ImportRecord] = field(default_factory=list)
    compression: str | None = None  # e.g. "gzip" for a compressed joblib file
    pickled: bool = False  # reading it runs an unpickler (pickle, joblib, torch, object arrays)
    # The restricted unpickler's admission walk, when this scan made exactly that walk
    # (an ``admission.Admission``; mgattest.load hands it to the loader). Not reported.
    admission: Admission | None = field(default=None, repr=False, compare=False)

    @property
    def policy_format(self) -> str:
        """The policy's name for :attr:`format` (``content.formats``)."""
        return policy_format(self.format)

    @property
    def name(self) -> str:
        """Alias of :attr:`path` (the display name given to :func:`scan_bytes`)."""
        return self.path

    @property
    def verdict(self) -> str:
        return worst(*(f.severity for f in self.findings))

    @property
    def safe(self) -> bool:
        return self.verdict == SAFE

    def reasons(self) -> list[str]:
        """One line per non-info finding, naming where it is."""
        return [f"{f.severity}: {f.detail} [{f.where(self.path)}]"
                for f in self.findings if f.severity != INFO]

    def to_dict(self) -> FileReportJSON:
        """JSON-ready form of the report (the admission walk is not reported)."""
        return {
            "path": self.path,
            "format": self.format,
            "size": self.size,
            "compression": self.compression,
            "policy_format": self.policy_format,
            "pickled": self.pickled,
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "imports": [i.to_dict() for i in self.imports],
        }
