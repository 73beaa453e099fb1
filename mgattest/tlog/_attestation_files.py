"""The attestation side files of an export: ``mgattest/attestation/<N>[.p/<W>]``.

A dsse entry's body names its payload (the in-toto Statement) only by ``payloadHash``;
the log keeps the Statement beside the entry (``attestations`` table) so that search
can index its subject digests. An export carries them in one file per entry bundle,
named like it: per entry of the bundle, one record —

* ``0x00``: the log keeps no attestation for this entry;
* ``0x01``, uint32 big-endian length, the attestation bytes.

The file exists for every bundle holding an entry that commits to a payload (kind
``dsse`` or ``intoto``, :data:`PAYLOAD_KINDS`), even when none of them has an
attestation, so that a missing file is told apart from "nothing to carry". Neither
the tree nor a SET covers these bytes: import keeps an attestation only when it hashes
to the ``payloadHash`` of the verified body at its index.
"""

from __future__ import annotations

import struct
from typing import Iterable

from mgattest.tlog import _tiles as tiles
from mgattest.tlog._entries import MAX_ATTESTATION_SIZE
from mgattest.tlog.errors import MirrorError

ATTESTATION_PREFIX = "mgattest/attestation"
PAYLOAD_KINDS = frozenset({"dsse", "intoto"})  # entry kinds whose body has a payloadHash
# The largest attestation file: a full bundle of the largest attestations.
MAX_ATTESTATION_FILE = tiles.TILE_WIDTH * (5 + MAX_ATTESTATION_SIZE)
_NONE, _PRESENT = 0, 1
_LENGTH = struct.Struct(">I")


def attestation_path(bundle: tiles.TileRef) -> str:
    """The attestation file of entry bundle ``bundle`` (``mgattest/attestation/001.p/7``)."""
    return ATTESTATION_PREFIX + bundle.path[len("tile/entries"):]


def needs_attestation_file(kinds: Iterable[str]) -> bool:
    """Whether a bundle of entries of ``kinds`` has an attestation file."""
    return any(kind in PAYLOAD_KINDS for kind in kinds)


def encode_attestations(attestations: Iterable[bytes | None]) -> bytes:
    """Attestation file bytes: one record per entry, in bundle order."""
    out = bytearray()
    for data in attestations:
        if data is None:
            out.append(_NONE)
        else:
            out.append(_PRESENT)
            out += _LENGTH.pack(len(data)) + data
    return bytes(out)


def decode_attestations(data: bytes, *, where: str) -> list[bytes | None]:
    """Parse an attestation file; MirrorError on a malformed or oversized record."""
    out: list[bytes | None] = []
    pos = 0
    while pos < len(data):
        if len(out) == tiles.TILE_WIDTH:
            raise MirrorError(f"{where} holds more than {tiles.TILE_WIDTH} records",
                              what="attestation file", where=where)
        flag = data[pos]
        if flag == _NONE:
            out.append(None)
            pos += 1
            continue
        if flag != _PRESENT or pos + 1 + _LENGTH.size > len(data):
            raise MirrorError(f"record {len(out)} of {where} is malformed at byte {pos}",
                              what="attestation file", where=where)
        (length,) = _LENGTH.unpack_from(data, pos + 1)
        start = pos + 1 + _LENGTH.size
        if length > MAX_ATTESTATION_SIZE or start + length > len(data):
            raise MirrorError(f"record {len(out)} of {where} claims a {length}-byte "
                              f"attestation but only {len(data) - start} bytes remain (at "
                              f"most {MAX_ATTESTATION_SIZE} are allowed)",
                              what="attestation file", where=where)
        out.append(data[start:start + length])
        pos = start + length
    return out
