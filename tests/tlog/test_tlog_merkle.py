"""Merkle math: RFC 6962 known-answer tests, exhaustive and property tests, tampering,
and a cross-check with sigstore-python's own inclusion verifier."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgattest.tlog import merkle
from mgattest.tlog.errors import ConsistencyProofError, InclusionProofError

# The RFC 6962 test tree used by certificate-transparency and transparency-dev/merkle.
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
H = bytes.fromhex
# (leaf index (0-based), tree size, path)
INCLUSION_KATS = [
    (0, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (0, 1, []),
]
CONSISTENCY_KATS = [
    (1, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (1, 1, []),
]
LEAF_HASHES = [merkle.leaf_hash(x) for x in LEAVES]
KAT_SUBTREE = merkle.hashes_subtree(LEAF_HASHES)
OTHER = hashlib.sha256(b"some other hash").digest()


def test_hash_primitives() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(
        b"\x01" + b"a" * 32 + b"b" * 32).digest()
    assert merkle.root_hash([]) == hashlib.sha256(b"").digest()
    assert [merkle.split_point(n) for n in (2, 3, 4, 5, 8, 9)] == [1, 2, 2, 4, 4, 8]


@pytest.mark.parametrize("size", range(1, 9))
def test_known_roots(size: int) -> None:
    assert merkle.root_hash(LEAF_HASHES[:size]) == ROOTS[size - 1]
    assert KAT_SUBTREE(0, size) == ROOTS[size - 1]


@pytest.mark.parametrize("index,size,path", INCLUSION_KATS)
def test_known_inclusion_paths(index: int, size: int, path: list[bytes]) -> None:
    assert merkle.inclusion_path(index, size, KAT_SUBTREE) == path
    merkle.verify_inclusion(LEAF_HASHES[index], index, size, path, ROOTS[size - 1])
    assert merkle.root_from_inclusion(LEAF_HASHES[index], index, size, path) == ROOTS[size - 1]


@pytest.mark.parametrize("m,n,path", CONSISTENCY_KATS)
def test_known_consistency_paths(m: int, n: int, path: list[bytes]) -> None:
    assert merkle.consistency_path(m, n, KAT_SUBTREE) == path
    merkle.verify_consistency(m, n, path, ROOTS[m - 1], ROOTS[n - 1])


def _inclusion_probes(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """Corruptions of a valid inclusion proof that must all be rejected."""
    probes = [
        (index - 1, size, proof, root, leaf), (index + 1, size, proof, root, leaf),
        (index ^ 2, size, proof, root, leaf), (index, size * 2, proof, root, leaf),
        (index, size // 2, proof, root, leaf), (index, size, proof, root, OTHER),
        (index, size, proof, hashlib.sha256(b"").digest(), leaf),
        (index, size, proof, OTHER, leaf), (index, size, proof + [root], root, leaf),
        (index, size, [root] + proof, root, leaf), (index, size, proof + [b""], root, leaf),
    ]
    for i in range(len(proof)):
        for byte in (0, 31):
            bad = [bytearray(p) for p in proof]
            bad[i][byte] ^= 0x08
            probes.append((index, size, [bytes(b) for b in bad], root, leaf))
    if proof:
        probes.append((index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append((index, size, [proof[0], OTHER] + proof[1:], root, leaf))
    return [p for p in probes if (p[0], p[1]) != (index, size) or p[2:] != (proof, root, leaf)]


@pytest.mark.parametrize("index,size,path", INCLUSION_KATS[:4])
def test_corrupted_inclusion_proofs_rejected(index: int, size: int, path: list[bytes]) -> None:
    for probe in _inclusion_probes(index, size, path, ROOTS[size - 1], LEAF_HASHES[index]):
        with pytest.raises(InclusionProofError):
            merkle.verify_inclusion(probe[4], probe[0], probe[1], probe[2], probe[3])


@pytest.mark.parametrize("m,n,path", CONSISTENCY_KATS[:4])
def test_corrupted_consistency_proofs_rejected(m: int, n: int, path: list[bytes]) -> None:
    r1, r2 = ROOTS[m - 1], ROOTS[n - 1]
    probes = [
        (m - 1, n, r1, r2, path), (m + 1, n, r1, r2, path), (m ^ 2, n, r1, r2, path),
        (m, n * 2, r1, r2, path), (m, n // 2, r1, r2, path), (m, n, OTHER, r2, path),
        (m, n, r1, OTHER, path), (m, n, r2, r1, path), (m, n, r1, r2, []),
        (m, n, r1, r2, path + [r1]), (m, n, r1, r2, path + [r2]), (m, n, r1, r2, [r1] + path),
        (m, n, r1, r2, [path[0]] + path), (m, n, r1, r2, path[:-1]),
    ]
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 0x10]) + bad[i][1:]
        probes.append((m, n, r1, r2, bad))
    for a, b, x, y, p in probes:
        assert (a, b, x, y, p) != (m, n, r1, r2, path)
        with pytest.raises(ConsistencyProofError):
            merkle.verify_consistency(a, b, p, x, y)


def test_consistency_edge_cases() -> None:
    r = ROOTS[0]
    merkle.verify_consistency(0, 0, [], r, r)
    merkle.verify_consistency(0, 5, [], OTHER, ROOTS[4])
    merkle.verify_consistency(3, 3, [], ROOTS[2], ROOTS[2])
    for args in [(3, 3, [], ROOTS[2], OTHER), (0, 1, [OTHER], r, r), (3, 3, [OTHER], r, r),
                 (2, 1, [], r, r), (-1, 2, [], r, r), (1, 2, [], r, r)]:
        with pytest.raises(ConsistencyProofError):
            merkle.verify_consistency(*args)


@pytest.mark.parametrize("index,size", [(0, 0), (1, 1), (5, 3), (-1, 4), (True, 2)])
def test_inclusion_rejects_bad_ranges(index: int, size: int) -> None:
    with pytest.raises(InclusionProofError, match="index|integer"):
        merkle.verify_inclusion(LEAF_HASHES[0], index, size, [], ROOTS[0])


def test_inclusion_rejects_wrong_hash_sizes() -> None:
    with pytest.raises(InclusionProofError):
        merkle.verify_inclusion(b"short", 0, 1, [], ROOTS[0])
    with pytest.raises(InclusionProofError):
        merkle.verify_inclusion(LEAF_HASHES[0], 0, 1, [], b"short")
    with pytest.raises(InclusionProofError):
        merkle.verify_inclusion(LEAF_HASHES[0], 0, 2, [b"x" * 31], ROOTS[1])
    with pytest.raises(InclusionProofError, match="too long"):
        merkle.verify_inclusion(LEAF_HASHES[0], 0, 2, [OTHER] * 200, ROOTS[1])


def test_every_proof_exhaustively_small_trees() -> None:
    """Every (index, size) inclusion and every (m, n) consistency proof up to 40 leaves."""
    hashes = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(40)]
    sub = merkle.hashes_subtree(hashes)
    roots = [merkle.root_hash(hashes[:n]) for n in range(41)]
    for n in range(1, 41):
        for i in range(n):
            path = merkle.inclusion_path(i, n, sub)
            merkle.verify_inclusion(hashes[i], i, n, path, roots[n])
            if i + 1 < n:  # another leaf's hash must not verify at this index
                with pytest.raises(InclusionProofError):
                    merkle.verify_inclusion(hashes[i + 1], i, n, path, roots[n])
        for m in range(0, n + 1):
            merkle.verify_consistency(m, n, merkle.consistency_path(m, n, sub), roots[m], roots[n])


@st.composite
def tree_and_index(draw):
    size = draw(st.integers(1, 300))
    return size, draw(st.integers(0, size - 1))


_BIG = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
_BIG_SUB = merkle.hashes_subtree(_BIG)


@settings(max_examples=150, deadline=None)
@given(tree_and_index(), st.data())
def test_property_inclusion_and_single_byte_flips(ti, data) -> None:
    size, index = ti
    root = merkle.root_hash(_BIG[:size])
    path = merkle.inclusion_path(index, size, _BIG_SUB)
    merkle.verify_inclusion(_BIG[index], index, size, path, root)
    # flip one byte anywhere in proof, root or leaf
    target = data.draw(st.sampled_from(["proof", "root", "leaf"] if path else ["root", "leaf"]))
    pos = data.draw(st.integers(0, 31))
    bit = 1 << data.draw(st.integers(0, 7))
    leaf, bad_root, bad_path = _BIG[index], root, list(path)
    if target == "proof":
        k = data.draw(st.integers(0, len(path) - 1))
        b = bytearray(path[k]); b[pos] ^= bit; bad_path[k] = bytes(b)
    elif target == "root":
        b = bytearray(root); b[pos] ^= bit; bad_root = bytes(b)
    else:
        b = bytearray(leaf); b[pos] ^= bit; leaf = bytes(b)
    with pytest.raises(InclusionProofError):
        merkle.verify_inclusion(leaf, index, size, bad_path, bad_root)
    # a different index or size with the same proof must fail (unless it is the same tree
    # shape *and* position, which cannot happen for a different index)
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(InclusionProofError):
            merkle.verify_inclusion(_BIG[index], other, size, path, root)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
       st.data())
def test_property_consistency_and_flips(mn, data) -> None:
    m, n = mn
    r1, r2 = merkle.root_hash(_BIG[:m]), merkle.root_hash(_BIG[:n])
    proof = merkle.consistency_path(m, n, _BIG_SUB)
    merkle.verify_consistency(m, n, proof, r1, r2)
    if m == n:
        return
    target = data.draw(st.sampled_from(["proof", "root1", "root2"]))
    pos, bit = data.draw(st.integers(0, 31)), 1 << data.draw(st.integers(0, 7))
    bad = {"proof": list(proof), "root1": r1, "root2": r2}
    if target == "proof":
        k = data.draw(st.integers(0, len(proof) - 1))
        b = bytearray(proof[k]); b[pos] ^= bit; bad["proof"][k] = bytes(b)
    else:
        b = bytearray(bad[target]); b[pos] ^= bit; bad[target] = bytes(b)
    with pytest.raises(ConsistencyProofError):
        merkle.verify_consistency(m, n, bad["proof"], bad["root1"], bad["root2"])


@pytest.mark.interop
def test_sigstore_python_accepts_our_inclusion_proofs() -> None:
    """sigstore-python's verify_merkle_inclusion (4.5.1) accepts proofs we generate."""
    import base64

    from sigstore._internal.merkle import verify_merkle_inclusion
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import TransparencyLogEntry
    from sigstore_models.rekor.v1 import TransparencyLogEntry as _RawEntry

    bodies = [b'{"n":%d}' % i for i in range(13)]
    hashes = [merkle.leaf_hash(b) for b in bodies]
    sub = merkle.hashes_subtree(hashes)
    root = merkle.root_hash(hashes)

    def entry(index: int, path: list[bytes], root_hash: bytes):
        raw = _RawEntry.from_dict({
            "logIndex": str(index), "logId": {"keyId": base64.b64encode(b"\0" * 32).decode()},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
            "integratedTime": "1", "canonicalizedBody": base64.b64encode(bodies[index]).decode(),
            "inclusionProof": {
                "logIndex": str(index), "rootHash": base64.b64encode(root_hash).decode(),
                "treeSize": str(len(bodies)),
                "hashes": [base64.b64encode(h).decode() for h in path],
                "checkpoint": {"envelope": "x\n1\nAAAA\n\n— x AAAAAAAA\n"}},
        })
        return TransparencyLogEntry(raw)

    for index in range(len(bodies)):
        path = merkle.inclusion_path(index, len(bodies), sub)
        verify_merkle_inclusion(entry(index, path, root))
        tampered = bytes([root[0] ^ 1]) + root[1:]
        with pytest.raises(SigstoreVerificationError):
            verify_merkle_inclusion(entry(index, path, tampered))
