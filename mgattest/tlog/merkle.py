"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashing, proofs and proof verification.

Pure functions over bytes. Trees hold leaves ``D[0:n]``; ``MTH`` of a range is the
root hash of that range. Proof *generation* takes a ``subtree_hash(start, end)``
callable returning ``MTH(D[start:end])`` so a store can answer from the hashes of
complete subtrees it keeps, instead of rehashing leaves.

Verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 and raise
:class:`~mgattest.tlog.errors.InclusionProofError` /
:class:`~mgattest.tlog.errors.ConsistencyProofError` naming the index and sizes.

The log hashes with SHA-256 (:data:`SHA256`, the defaults). :func:`tree_hasher` builds the
same tree shape over another hash function (``mgattest.attest._digests``' shard trees with
sha512, blake2b or blake3); :func:`root_hash` takes it as an optional argument.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from mgattest.tlog.errors import ConsistencyProofError, InclusionProofError

HASH_SIZE = 32
# A proof longer than this cannot belong to a tree of at most 2**64 leaves.
MAX_PROOF_LENGTH = 64 * 2

SubtreeHash = Callable[[int, int], bytes]

_EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 ‖ data)``: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class HashObject(Protocol):
    """What :func:`tree_hasher` needs of a hash object (``hashlib``'s, ``blake3``'s)."""

    def update(self, data: bytes, /) -> object:
        """Feed ``data`` to the hash."""

    def digest(self) -> bytes:
        """The hash of everything fed so far."""


@dataclass(frozen=True)
class TreeHasher:
    """The three hashes that define an RFC 6962 tree over one hash function ``H``."""

    leaf: Callable[[bytes], bytes]  # H(0x00 ‖ data)
    node: Callable[[bytes, bytes], bytes]  # H(0x01 ‖ left ‖ right)
    empty: bytes  # H(""), the root of the empty tree


SHA256 = TreeHasher(leaf=leaf_hash, node=node_hash, empty=_EMPTY_ROOT)


def tree_hasher(new: Callable[[], HashObject]) -> TreeHasher:
    """A :class:`TreeHasher` over the hash objects ``new()`` returns (e.g. ``hashlib.sha512``)."""

    def leaf(data: bytes) -> bytes:
        h = new()
        h.update(b"\x00" + data)
        return h.digest()

    def node(left: bytes, right: bytes) -> bytes:
        h = new()
        h.update(b"\x01" + left + right)
        return h.digest()

    return TreeHasher(leaf=leaf, node=node, empty=new().digest())


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes], hasher: TreeHasher = SHA256) -> bytes:
    """``MTH`` of a list of leaf hashes; the empty tree hashes to ``H("")``.

    ``hasher`` is SHA-256 (the log's) unless given; the leaves must be its leaf hashes.
    """
    if not leaf_hashes:
        return hasher.empty
    node_of = hasher.node
    # Bottom-up with a stack of perfect subtrees: O(n) time, O(log n) memory.
    stack: list[tuple[int, bytes]] = []  # (height, hash)
    for h in leaf_hashes:
        height, node = 0, h
        while stack and stack[-1][0] == height:
            node = node_of(stack.pop()[1], node)
            height += 1
        stack.append((height, node))
    node = stack.pop()[1]
    while stack:
        node = node_of(stack.pop()[1], node)
    return node


def hashes_subtree(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A ``subtree_hash`` callable over an in-memory list of leaf hashes."""

    def subtree(start: int, end: int) -> bytes:
        return root_hash(leaf_hashes[start:end])

    return subtree


def _check_range(index: int, size: int) -> None:
    if not isinstance(index, int) or not isinstance(size, int) or isinstance(index, bool) \
            or isinstance(size, bool):
        raise InclusionProofError("inclusion proof index and tree size must be integers",
                                  what="inclusion proof")
    if index < 0 or size <= 0 or index >= size:
        raise InclusionProofError(
            f"leaf index {index} is not inside a tree of size {size}",
            what="inclusion proof", where=f"log index {index}, tree size {size}")


def inclusion_path(index: int, size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The audit path ``PATH(index, D[0:size])``, leaf-side first (RFC 9162 §2.1.3.1)."""
    _check_range(index, size)
    path: list[bytes] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = split_point(end - start)
        if m < k:
            path.append(subtree_hash(start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(start, start + k))
            start, m = start + k, m - k
    path.reverse()
    return path


def consistency_path(m: int, n: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The consistency proof ``PROOF(m, D[0:n])`` (RFC 9162 §2.1.4.1).

    Empty when ``m == n`` or ``m == 0`` (nothing to prove).
    """
    if not isinstance(m, int) or not isinstance(n, int) or m < 0 or n < 0 or m > n:
        raise ConsistencyProofError(f"no consistency proof from size {m} to size {n}",
                                    what="consistency proof", where=f"sizes {m} -> {n}")
    if m == 0 or m == n:
        return []
    proof: list[bytes] = []
    start, end, mm, complete = 0, n, m, True
    while True:
        size = end - start
        if mm == size:
            if not complete:
                proof.append(subtree_hash(start, end))
            break
        k = split_point(size)
        if mm <= k:
            proof.append(subtree_hash(start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(start, start + k))
            start, mm, complete = start + k, mm - k, False
    proof.reverse()
    return proof


def _check_hashes(items: Sequence[bytes], error: type, label: str, where: str) -> None:
    for pos, h in enumerate(items):
        if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
            raise error(f"{label} hash {pos} is not {HASH_SIZE} bytes", what=label, where=where)


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by ``leaf`` at ``index`` in a tree of ``size`` with ``proof``."""
    _check_range(index, size)
    where = f"log index {index}, tree size {size}"
    if len(proof) > MAX_PROOF_LENGTH:
        raise InclusionProofError("inclusion proof is too long", what="inclusion proof",
                                  where=where)
    _check_hashes([leaf], InclusionProofError, "leaf", where)
    _check_hashes(proof, InclusionProofError, "inclusion proof", where)
    # RFC 9162 §2.1.3.2
    fn, sn = index, size - 1
    r = bytes(leaf)
    for p in proof:
        if sn == 0:
            raise InclusionProofError(
                f"inclusion proof has {len(proof)} hashes, too many for index {index} in a "
                f"tree of size {size}", what="inclusion proof", where=where)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionProofError(
            f"inclusion proof has {len(proof)} hashes, too few for index {index} in a tree "
            f"of size {size}", what="inclusion proof", where=where)
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Check that ``leaf`` is at ``index`` of the tree of ``size`` with ``root``."""
    computed = root_from_inclusion(leaf, index, size, proof)
    if not isinstance(root, (bytes, bytearray)) or len(root) != HASH_SIZE:
        raise InclusionProofError("root hash is not 32 bytes", what="inclusion proof",
                                  where=f"log index {index}, tree size {size}")
    if not hmac.compare_digest(computed, bytes(root)):
        raise InclusionProofError(
            f"inclusion proof for log index {index} does not lead to the root hash of tree "
            f"size {size} (computed {computed.hex()}, expected {bytes(root).hex()})",
            what="inclusion proof", where=f"log index {index}, tree size {size}")


def verify_consistency(m: int, n: int, proof: Sequence[bytes], root_m: bytes,
                       root_n: bytes) -> None:
    """Check that the tree of size ``m`` with ``root_m`` is a prefix of ``n``/``root_n``."""
    where = f"sizes {m} -> {n}"

    def fail(msg: str) -> ConsistencyProofError:
        return ConsistencyProofError(msg, what="consistency proof", where=where)

    for v in (m, n):
        if not isinstance(v, int) or isinstance(v, bool):
            raise fail("tree sizes must be integers")
    if m < 0 or n < 0 or m > n:
        raise fail(f"no consistency proof from size {m} to size {n}")
    if len(proof) > MAX_PROOF_LENGTH:
        raise fail("consistency proof is too long")
    _check_hashes([root_m, root_n], ConsistencyProofError, "root", where)
    _check_hashes(proof, ConsistencyProofError, "consistency proof", where)
    root_m, root_n = bytes(root_m), bytes(root_n)
    if m == n:
        if proof:
            raise fail("a consistency proof between equal sizes must be empty")
        if not hmac.compare_digest(root_m, root_n):
            raise fail(f"roots of the same size {m} differ")
        return
    if m == 0:
        if proof:
            raise fail("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise fail(f"empty consistency proof from size {m} to size {n}")
    fr, sr = consistency_roots(m, n, proof, root_m)
    if not hmac.compare_digest(fr, root_m):
        raise fail(f"consistency proof does not reproduce the root of size {m}")
    if not hmac.compare_digest(sr, root_n):
        raise fail(f"consistency proof does not reproduce the root of size {n}")


def consistency_roots(m: int, n: int, proof: Sequence[bytes], seed: bytes) -> tuple[bytes, bytes]:
    """The roots of sizes ``m`` and ``n`` a consistency proof implies (RFC 9162 §2.1.4.2).

    ``seed`` is the hash of ``D[0:m]`` the verifier starts from when ``m`` is a power of two
    (the proof omits it); otherwise it is unused. Comparing the first root with a signed
    old root and the second with a signed new root verifies the proof; a proof whose second
    root matches but whose first does not proves that the new tree does not extend the old.
    Needs ``0 < m < n`` and a non-empty proof.
    """
    where = f"sizes {m} -> {n}"

    def fail(msg: str) -> ConsistencyProofError:
        return ConsistencyProofError(msg, what="consistency proof", where=where)

    if not 0 < m < n:
        raise fail(f"no consistency proof to check from size {m} to size {n}")
    if not proof:
        raise fail(f"empty consistency proof from size {m} to size {n}")
    if len(proof) > MAX_PROOF_LENGTH:
        raise fail("consistency proof is too long")
    _check_hashes([seed], ConsistencyProofError, "root", where)
    _check_hashes(proof, ConsistencyProofError, "consistency proof", where)
    path = [bytes(p) for p in proof]
    if m & (m - 1) == 0:  # m is a power of two: the old root is the first node
        path.insert(0, bytes(seed))
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise fail(f"consistency proof has too many hashes ({len(proof)})")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise fail(f"consistency proof has too few hashes ({len(proof)})")
    return fr, sr
