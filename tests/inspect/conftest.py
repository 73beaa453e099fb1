"""Fixtures of the inspection tests: the benign and malicious model corpus."""

from __future__ import annotations

import pytest

from tests.helpers.corpus import build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus of tests/helpers/corpus.py, built once per test module."""
    return build_corpus(tmp_path_factory.mktemp("corpus"))
