"""mgattest._files.read_bounded: the one way user-supplied files are read."""

from __future__ import annotations

import pytest

from mgattest._files import read_bounded
from mgattest.errors import InputError, VerificationError


class TooLarge(VerificationError):
    pass


def test_reads_up_to_the_limit_and_refuses_one_byte_more(tmp_path):
    f = tmp_path / "f.json"
    f.write_bytes(b"x" * 64)
    assert read_bounded(f, 64, what="thing") == b"x" * 64
    with pytest.raises(InputError, match=r"thing .*f\.json is larger than 63 bytes") as info:
        read_bounded(f, 63, what="thing")
    assert info.value.where == str(f)
    with pytest.raises(TooLarge):
        read_bounded(f, 63, what="thing", too_large=TooLarge)


def test_directories_and_missing_files_are_typed_errors(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_bounded(tmp_path, 10, what="policy file")
    with pytest.raises(InputError, match="cannot read bundle .*missing"):
        read_bounded(tmp_path / "missing", 10, what="bundle")


def test_mib_limits_are_stated_both_ways(tmp_path):
    f = tmp_path / "big"
    f.write_bytes(b"\0" * ((1 << 20) + 1))
    with pytest.raises(InputError, match=r"larger than 1 MiB \(1048576 bytes\)"):
        read_bounded(f, 1 << 20, what="trusted root")
