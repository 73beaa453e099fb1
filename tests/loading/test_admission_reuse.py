"""mgattest.load walks a pickle once: the content scan's walk is the admission walk.

The restricted unpickler refuses, before unpickling, whatever the scanner's walk flags
(:func:`mgattest.inspect._admission.admit`). Inside ``mgattest.load`` the content scan
has just made that very walk over the same bytes, so it hands over an ``Admission``
token; admit uses it only when it covers exactly the bytes (SHA-256), the allow-list,
the limits and the walk parameters, and walks again otherwise.
"""

from __future__ import annotations

import collections
import pickle

import pytest

import mgattest
from mgattest.inspect import _admission as admission_mod
from mgattest.inspect import _pickle_scan as pickle_scan, scan_bytes
from mgattest.inspect import _scanner as scanner_mod
from mgattest.inspect._admission import Admission, admit
from mgattest.inspect.errors import RestrictedLoadError, UnsafeContentError
from mgattest.inspect._limits import DEFAULT_LIMITS, Limits
from mgattest.inspect._restricted import restricted_loads
from tests.helpers.signed_files import signed

OBJECTS = pickle.dumps([{"id": i, "name": f"n{i}", "xs": (i, i + 1.5)} for i in range(200)],
                       protocol=4)
EVIL = b"\x80\x04cos\nsystem\n\x8c\x04echo\x85R."  # never loaded: refused before


@pytest.fixture()
def walks(monkeypatch):
    """Count the walks that start at byte 0 of a blob, whoever makes them (a spy: the
    real walk still runs)."""
    counts: collections.Counter[bytes] = collections.Counter()
    real = pickle_scan.scan_pickle_blob

    def counting(data, ctx, **kwargs):
        if kwargs.get("start", 0) == 0:
            counts[bytes(data)] += 1
        return real(data, ctx, **kwargs)

    for module in (admission_mod, scanner_mod):
        monkeypatch.setattr(module, "scan_pickle_blob", counting)
    return counts


def test_load_walks_a_pickle_once(env, walks):
    tmp, signer = env
    path, bundle = signed(tmp, signer, "objects.pkl", OBJECTS)
    got = mgattest.load(path, policy=tmp / "policy-restricted.yaml", bundles=[bundle])
    assert got == pickle.loads(OBJECTS)
    assert walks[OBJECTS] == 1


def test_load_still_refuses_what_the_walk_flags(env):
    tmp, signer = env
    path, bundle = signed(tmp, signer, "evil.pkl", EVIL)
    with pytest.raises(mgattest.loading.PolicyDenied):
        mgattest.load(path, policy=tmp / "policy-restricted.yaml", bundles=[bundle])


def test_scan_token_refuses_exactly_as_a_fresh_walk():
    token = scan_bytes("evil.pkl", EVIL).admission
    assert token is not None and token.findings
    for given in (token, None):
        with pytest.raises(UnsafeContentError, match="os.system"):
            restricted_loads(EVIL, admission=given)


def test_token_is_used_only_for_the_same_bytes_and_settings(walks):
    token = scan_bytes("objects.pkl", OBJECTS).admission
    assert token is not None and walks[OBJECTS] == 1
    assert restricted_loads(OBJECTS, admission=token) == pickle.loads(OBJECTS)
    assert walks[OBJECTS] == 1  # reused
    restricted_loads(OBJECTS, [("collections", "OrderedDict")], admission=token)
    assert walks[OBJECTS] == 2  # another allow-list: walked again
    admit(OBJECTS, where="x", extra_allowed=frozenset(), admission=token,
          limits=Limits(max_pickle_streams=7))
    assert walks[OBJECTS] == 3  # other limits: walked again
    # A clean token presented with other bytes of the same length is not believed.
    other = OBJECTS[:-1] + b"\x00"
    with pytest.raises(RestrictedLoadError):
        restricted_loads(other, admission=token)
    assert walks[other] == 1


def test_a_forged_clean_token_cannot_admit_a_dangerous_pickle():
    forged = Admission(b"\x00" * 32, len(EVIL), frozenset(), DEFAULT_LIMITS, False, 1, (), 0)
    with pytest.raises(UnsafeContentError, match="os.system"):
        restricted_loads(EVIL, admission=forged)


def test_no_token_when_the_scan_walk_differs_from_a_plain_pickle_walk():
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    import io

    buf = io.BytesIO()
    joblib.dump({"w": np.arange(10.0)}, buf)
    assert scan_bytes("m.joblib", buf.getvalue()).admission is None  # array bytes skipped
    # joblib's wrapper imported without an array: allowed to joblib only
    wrapper_only = b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n."
    report = scan_bytes("w.pkl", wrapper_only)
    assert report.admission is None
    with pytest.raises(UnsafeContentError, match="NumpyArrayWrapper"):
        restricted_loads(wrapper_only)
