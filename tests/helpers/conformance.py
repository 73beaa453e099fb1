"""The ``mgattest verify`` command line for a sigstore-conformance bundle-verify case."""

from __future__ import annotations

from tests.helpers.paths import CONFORMANCE_DIR


def verify_args(case: dict) -> list[str]:
    """The ``mgattest verify`` arguments for ``case`` (a cases.json entry)."""
    base = CONFORMANCE_DIR
    args = ["verify", str(base / case["artifact"]), "--bundle", str(base / case["bundle"]),
            "--trusted-root", str(base / case["trusted_root"])]
    if case["verification_mode"] == "key":
        args += ["--key", str(base / case["key"])]
    else:
        args += ["--identity", case["expected_identity"], "--issuer", case["expected_issuer"]]
    return args
