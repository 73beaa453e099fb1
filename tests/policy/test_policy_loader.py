"""Policy files: schema and semantic errors name file:line; YAML traps are refused;
matchers and globs are anchored (hypothesis)."""

from __future__ import annotations

import re
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgattest.policy.errors import PolicyError
from mgattest.policy._loader import lint_policy, load_policy, policy_from_bytes
from mgattest.policy._matching import compile_matcher, glob_match
from tests.helpers.policy_facts import KEY_A, keys_block
from tests.helpers.paths import PROJECT_ROOT

HEAD = "apiVersion: mgattest/v1\nkind: Policy\n"
MIN = HEAD + keys_block(("a", KEY_A)) + "signers:\n  a: {key: a}\nrules:\n  - id: r\n    signedBy: {anyOf: [a]}\n"


def write(tmp_path, text, name="p.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_minimal_policy_loads_with_digest(tmp_path):
    p = write(tmp_path, MIN)
    pol = load_policy(p)
    import hashlib
    assert pol.digest == "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
    assert pol.mode == "enforce" and pol.rules[0].match == ("**",)


def test_unknown_key_error_names_file_and_line(tmp_path):
    text = MIN + "    sigendBy: {anyOf: [a]}\n"
    p = write(tmp_path, text)
    with pytest.raises(PolicyError) as exc:
        load_policy(p)
    assert exc.value.where == f"{p}:{line_of(text, 'sigendBy')}"
    assert "sigendBy" in exc.value.message


@pytest.mark.parametrize("bad,needle,msg", [
    ("apiVersion: mgattest/v2\n", "apiVersion", "mgattest/v1"),
    ("mode: audit\n", "mode", "enforce"),
    ("expires: tomorrow\n", "expires", "does not match"),
])
def test_schema_value_errors(tmp_path, bad, needle, msg):
    text = MIN.replace("apiVersion: mgattest/v1\n", "") if bad.startswith("apiVersion") else MIN
    text = bad + text
    issues = lint_policy(write(tmp_path, text))
    assert issues and issues[0].where.endswith(f":{line_of(text, needle)}")
    assert msg in issues[0].message


def test_semantic_errors_listed_with_lines(tmp_path):
    text = HEAD + keys_block(("a", KEY_A)) + textwrap.dedent("""\
        signers:
          a: {key: a}
          b: {key: nokey}
          c:
            keyless:
              issuer: https://issuer
              subject: {regex: '(unclosed'}
        rules:
          - id: r
            signedBy: {threshold: 3, of: [a, ghost]}
            transparencyLog: {logs: [nolog]}
            cel:
              - {id: x, expr: '1 +', message: m}
          - id: r
            attestations:
              - predicateType: https://example/other
                provenance: {builderId: x}
        """)
    issues = lint_policy(write(tmp_path, text))
    got = {(i.where.rsplit(":", 1)[1], i.message.split(" ")[0]) for i in issues}
    messages = " | ".join(i.message for i in issues)
    for needle in ("unknown key 'nokey'", "invalid regex", "unknown signer 'ghost'",
                   "threshold 3 exceeds", "unknown log 'nolog'", "CEL check 'x'",
                   "duplicate rule id", "provenance expectations need"):
        assert needle in messages, (needle, messages)
    assert all(int(line) > 1 for line, _ in got)


def test_duplicate_yaml_keys_refused(tmp_path):
    text = MIN + "    signedBy: {anyOf: [a]}\n"
    with pytest.raises(PolicyError, match="duplicate key 'signedBy'"):
        load_policy(write(tmp_path, text))


def test_yaml_aliases_and_merge_keys_refused(tmp_path):
    text = MIN + "  - id: r2\n    signedBy: &sb {anyOf: [a]}\n  - id: r3\n    signedBy: *sb\n"
    with pytest.raises(PolicyError, match="aliases"):
        load_policy(write(tmp_path, text))


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(PolicyError, match="invalid YAML") as exc:
        load_policy(write(tmp_path, "a: [1, 2\nb: 3\n"))
    assert re.search(r":\d+$", exc.value.where)
    with pytest.raises(PolicyError):
        load_policy(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(PolicyError):
        load_policy(write(tmp_path, ""))


def test_oversized_and_missing_policy(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(PolicyError, match="larger"):
        load_policy(big)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")


def test_dates_stay_strings_and_parse_strictly(tmp_path):
    pol = load_policy(write(tmp_path, "expires: 2027-01-02\n" + MIN))
    assert pol.expires == 1798848000


def test_reference_policies_are_schema_valid():
    for p in sorted((PROJECT_ROOT / "policies").glob("*.yaml")):
        issues = [i for i in lint_policy(p) if "cannot load public key" not in i.message]
        assert not issues, (p, issues)


# --------------------------------------------------------------------------- anchoring

def test_regex_is_anchored_against_embedded_url():
    m = compile_matcher({"regex": r"https://github\.com/acme/.*"})
    assert m.matches("https://github.com/acme/x")
    assert not m.matches("https://evil.example/?u=https://github.com/acme/x")
    assert not m.matches("xhttps://github.com/acme/x")


def test_regex_alternation_is_anchored_as_a_whole():
    m = compile_matcher({"regex": "a|b"})
    assert m.matches("a") and m.matches("b")
    assert not m.matches("ab") and not m.matches("xb") and not m.matches("a\n")


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(min_size=1, max_size=8), value=st.text(min_size=1, max_size=12),
       suffix=st.text(min_size=1, max_size=8))
def test_exact_and_list_entries_never_match_by_prefix_or_suffix(prefix, value, suffix):
    m = compile_matcher({"anyOf": [value, {"exact": value}]})
    assert m.matches(value)
    assert not m.matches(value + suffix)
    assert not m.matches(prefix + value)


_SEG = st.text(alphabet="abcxyz._-", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(segs=st.lists(_SEG, min_size=1, max_size=4), extra=_SEG)
def test_globs_are_anchored(segs, extra):
    path = "/".join(segs)
    assert glob_match(re.sub(r"([*?\[\]])", r"[\1]", path), path)
    assert not glob_match(path, path + "/" + extra)  # a glob never matches by prefix
    assert not glob_match(path, extra + "/" + path)
    assert glob_match("**", path)
    assert glob_match("**/" + segs[-1], path)
    # "*" never crosses a directory boundary
    assert glob_match("*", path) is (len(segs) == 1)


def test_glob_semantics_examples():
    assert glob_match("*.safetensors", "model.safetensors")
    assert not glob_match("*.safetensors", "sub/model.safetensors")
    assert glob_match("**/*.safetensors", "sub/model.safetensors")
    assert glob_match("**/*.safetensors", "model.safetensors")
    assert not glob_match("model.safetensors", "model.safetensors.pkl")
    assert glob_match("shard-[0-9].bin", "shard-3.bin")
    assert not glob_match("shard-[!0-9].bin", "shard-3.bin")


# --------------------------------------------------------------------------- YAML parser properties

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                     st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12))
_docs = st.recursive(_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4),
    st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=6), kids, max_size=4)),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(doc=st.dictionaries(st.text(alphabet="abcxyz", min_size=1, max_size=5), _docs,
                           min_size=1, max_size=5))
def test_yaml_roundtrip_equals_safe_load(doc):
    import yaml

    from mgattest.policy._yamlpos import parse_yaml
    text = yaml.safe_dump(doc, sort_keys=False)
    located = parse_yaml(text.encode(), "f.yaml")
    assert located.data == yaml.safe_load(text)
    assert all(isinstance(line, int) and line >= 1 for line in located.lines.values())


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_policy_loader(data):
    try:
        policy_from_bytes(data, source="fuzz.yaml")
    except PolicyError as exc:
        assert exc.where and exc.where.startswith("fuzz.yaml")


@pytest.mark.parametrize("text", [
    b"a: " + b"[" * 20000 + b"]" * 20000,
    b"a:\n  " + b"- " * 5000 + b"x\n",
    b"a: " + b"{b: " * 100 + b"1" + b"}" * 100,
], ids=["deep-flow-sequence", "deep-block-sequence", "deep-flow-mapping"])
def test_deep_nesting_is_a_policy_error(text):
    with pytest.raises(PolicyError, match="nests deeper|invalid YAML"):
        policy_from_bytes(text, source="deep.yaml")


def test_content_remote_code_schema(tmp_path):
    """content.remoteCode: {allow: [sha256 digests]}; anything else is a schema error."""
    good = "sha256:" + "ab" * 32
    pol = policy_from_bytes((MIN + f"    content: {{remoteCode: {{allow: ['{good}']}}}}\n").encode(),
                            source="p.yaml")
    assert pol.rules[0].remote_code_allow == frozenset({good})
    assert policy_from_bytes(MIN.encode(), source="p.yaml").rules[0].remote_code_allow is None
    for bad, needle in (("{remoteCode: {allow: ['sha256:abc']}}", "does not match"),
                        ("{remoteCode: {}}", "allow"),
                        ("{remoteCode: {allow: [], deny: []}}", "deny"),
                        (f"{{remoteCode: ['{good}']}}", "object")):
        text = MIN + f"    content: {bad}\n"
        issues = lint_policy(write(tmp_path, text))
        assert issues and issues[0].where.endswith(f":{line_of(text, 'content:')}"), bad
        assert needle in issues[0].message, (bad, issues[0].message)
