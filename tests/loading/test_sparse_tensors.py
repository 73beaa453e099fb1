"""Sparse tensors with out-of-range indices are refused before load() returns them
(issue #16 item 2): torch builds them unchecked and the first to_dense() writes out of
bounds."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

torch = pytest.importorskip("torch")

import mgattest  # noqa: E402
from mgattest.loading._loaders import UnsafeContentError, check_sparse_tensors, deserialize  # noqa: E402
from tests.helpers.signed_files import signed


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _patch_storage(blob: bytes, size: int, new: bytes) -> bytes:
    """Rewrite the first tensor storage of ``size`` bytes in a torch zip archive."""
    src = zipfile.ZipFile(io.BytesIO(blob))
    out = io.BytesIO()
    done = False
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if not done and "/data/" in info.filename and len(data) == size:
                data, done = new, True
            dst.writestr(info.filename, data)
    assert done
    return out.getvalue()


def bad_coo() -> bytes:
    indices = torch.tensor([[0, 1], [0, 1]])
    good = torch.sparse_coo_tensor(indices, torch.tensor([1.0, 2.0]), (2, 2))
    return _patch_storage(_saved({"s": good}), 32, struct.pack("<4q", 0, 10**6, 0, 10**6))


def bad_csr() -> bytes:
    good = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).to_sparse_csr()
    # the 32-byte int64 storage holds the column indices: point them past the size
    return _patch_storage(_saved({"s": good}), 32, struct.pack("<4q", 0, 999, 0, 999))


@pytest.mark.parametrize("make", [bad_coo, bad_csr], ids=["coo", "csr"])
def test_out_of_range_sparse_tensor_is_refused_by_the_loader(make):
    with pytest.raises(UnsafeContentError, match="sparse"):
        deserialize("m.pt", make(), "pytorch")


def test_out_of_range_sparse_tensor_is_not_returned_by_load(env):
    tmp, signer = env
    (tmp / "policy-restricted.yaml").write_text(
        (tmp / "policy.yaml").read_text().replace("pickle: deny", "pickle: restricted"))
    path, bundle = signed(tmp, signer, "m.pt", bad_coo())
    with pytest.raises(UnsafeContentError, match="sparse"):
        mgattest.load(path, policy=tmp / "policy-restricted.yaml", bundles=[bundle])


def test_valid_sparse_tensors_still_load():
    coo = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 0]]), torch.tensor([3.0, 4.0]),
                                  (2, 2))
    got = deserialize("m.pt", _saved({"coo": coo, "csr": coo.to_dense().to_sparse_csr()}),
                      "pytorch")
    assert torch.equal(got["coo"].to_dense(), coo.to_dense())
    assert torch.equal(got["csr"].to_dense(), coo.to_dense())


def test_any_loader_result_is_checked():
    """Whatever built it (a restricted unpickler, a nested container), it is refused."""
    bad = torch.sparse_coo_tensor(torch.tensor([[0], [5]]), torch.tensor([1.0]), (2, 2),
                                  check_invariants=False)
    with pytest.raises(UnsafeContentError, match="sparse"):
        check_sparse_tensors("x", {"a": [1, (2, {"deep": bad})]})
    assert check_sparse_tensors("x", {"a": torch.ones(2)})["a"].sum() == 2
