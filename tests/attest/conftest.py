"""Fixtures of the signing and verification tests (mgattest.attest).

Their model directory is the root conftest's ``model`` fixture: each module declares its
``MODEL_FILES``. No other fixture is shared by several modules of this folder yet; add
here one that two modules would otherwise each define.
"""
