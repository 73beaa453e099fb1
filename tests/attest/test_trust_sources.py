"""attest.trustroot.combined_trusted_root: the trust `mgattest verify` builds from
--trusted-root, --trust-config and --instance."""

from __future__ import annotations

from pathlib import Path

from mgattest.attest._trustroot import (combined_trusted_root, embedded_trusted_root,
                                       write_trusted_root)


def test_nothing_given_is_no_root() -> None:
    assert combined_trusted_root([]) is None


def test_files_then_instance_are_merged_in_order(tmp_path: Path) -> None:
    staging = embedded_trusted_root("staging")
    path = tmp_path / "root.json"
    write_trusted_root(staging, path)
    merged = combined_trusted_root([path], "production")
    assert merged is not None
    production = embedded_trusted_root("production")
    assert merged.tlogs == staging.tlogs + production.tlogs
    # a root already in hand (one refreshed over TUF) is used as given
    again = combined_trusted_root([], production)
    assert again is production
