"""What a policy clause allows is scoped to that clause (issues #9, #16).

Each test names the attack it stops: YAML constructs other loaders read differently,
permissions and attestations leaking from one rule into another, and records (VSA,
audit line) that state more or less than was verified.
"""

from __future__ import annotations

import pytest

from mgattest.policy.errors import PolicyError
from mgattest.policy.loader import lint_policy, policy_from_bytes
from test_policy_helpers import KEY_A, keys_block

HEAD = "apiVersion: mgattest/v1\nkind: Policy\n"
MIN = (HEAD + keys_block(("a", KEY_A)) + "signers:\n  a: {key: a}\nrules:\n"
       "  - id: r\n    signedBy: {anyOf: [a]}\n")


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


# --------------------------------------------------------------------------- YAML


@pytest.mark.parametrize("node", [
    "!!python/object/apply:os.system [echo pwned]",
    "!!python/object/new:collections.OrderedDict [[]]",
    "!!set {safetensors: null}",
    "!!omap [{a: 1}]",
    "!local {formats: [safetensors]}",
    "!!str [safetensors]",
])
def test_tagged_collections_are_lint_errors_with_their_line(tmp_path, node):
    text = MIN + f"    content: {node}\n"
    path = tmp_path / "p.yaml"
    path.write_text(text)
    issues = lint_policy(path)
    assert [i.kind for i in issues] == ["error"], issues
    assert "unsupported YAML tag" in issues[0].message
    assert issues[0].where == f"{path}:{_line_of(text, 'content:')}"
    with pytest.raises(PolicyError, match="unsupported YAML tag"):
        policy_from_bytes(text.encode())


@pytest.mark.parametrize("key", ["1", "true", "null", "2027-01-01", "[a, b]", "{a: 1}"])
def test_mapping_keys_must_be_strings(key):
    # Another YAML loader reads `1:` as an int and `true:` as a bool: not the same policy.
    text = MIN + ("    attestations:\n      - predicateType: https://slsa.dev/provenance/v1\n"
                  "        provenance:\n          externalParameters:\n            values:\n"
                  f"              ? {key}\n              : v\n")
    with pytest.raises(PolicyError, match="keys must be plain strings") as exc:
        policy_from_bytes(text.encode(), source="k.yaml")
    assert exc.value.where.startswith("k.yaml:")


def test_quoted_keys_and_standard_tags_still_load():
    text = MIN + "    content: !!map {pickle: !!str deny, formats: !!seq [safetensors]}\n"
    pol = policy_from_bytes(text.encode())
    assert pol.rules[0].pickle == "deny" and pol.rules[0].formats == {"safetensors"}


def test_alias_bomb_and_merge_keys_are_refused_quickly():
    import time
    bomb = "".join(f"x{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n"
                   for i in range(1, 30))
    text = "x0: &a0 [lol]\n" + bomb + MIN[len(""):]
    start = time.perf_counter()
    with pytest.raises(PolicyError, match="aliases"):
        policy_from_bytes(text.encode())
    assert time.perf_counter() - start < 2
    merge = MIN + "    content: {<<: {pickle: restricted}}\n"
    with pytest.raises(PolicyError, match="merge keys"):
        policy_from_bytes(merge.encode())
