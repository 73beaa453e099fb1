"""The TypedDicts describing ``attestation_to_json`` output follow the dataclasses it
serialises: a field added to a result class must be added to its JSON shape too."""

import dataclasses

import pytest

from mgattest.attest import _results as results, _verify as verify

_PAIRS = [
    (results.VerifiedAttestation, verify.AttestationSummaryJSON, {"statement", "subjects"},
     ["subject_count"]),
    (results.SignerInfo, verify.SignerInfoJSON, set(), []),
    (results.LogProof, verify.LogProofJSON, set(), []),
    (results.VerifiedTime, verify.VerifiedTimeJSON, set(), []),
]


@pytest.mark.parametrize("cls, shape, dropped, added", _PAIRS,
                         ids=[p[0].__name__ for p in _PAIRS])
def test_summary_shape_matches_dataclass(cls: type, shape: type, dropped: set[str],
                                         added: list[str]) -> None:
    names = [f.name for f in dataclasses.fields(cls) if f.name not in dropped]
    assert list(shape.__annotations__) == names + added
