"""``mgattest provenance``: a signed chain dataset → base model → fine-tuned model (three
keys, the embedded log), one input unattested; table, JSON and Mermaid show the chain
and flag exactly that input; a tampered or foreign dependency attestation is shown as
unverifiable, never as attested; the Mermaid output parses (a strict parser of the
emitted subset, and Mermaid's own parser under Node when tests/lineage/js is installed).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli_runner import mg
from tests.helpers.lineage_chain import Chain, build_chain, run_ok, sign
from tests.helpers.mermaid_flowchart import parse_flowchart
from tests.helpers.paths import PROJECT_ROOT

MERMAID_JS = PROJECT_ROOT / "tests" / "lineage" / "js"


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    return build_chain(tmp_path / "chain")


def provenance(chain: Chain, model: str, *extra: object):
    return mg("provenance", chain.root / model, "--bundles", chain.attestations,
              *chain.key_args(), *extra)


def as_json(chain: Chain, model: str, *extra: object) -> dict:
    result = provenance(chain, model, "--json", *extra)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def by_name(graph: dict) -> dict[str, dict]:
    return {n["name"]: n for n in graph["nodes"]}


def test_json_shows_the_chain_and_flags_exactly_the_unattested_input(chain: Chain) -> None:
    graph = as_json(chain, "ft.bin")
    nodes = by_name(graph)
    root = str(chain.root / "ft.bin")
    assert set(nodes) == {root, "base-model", "dataset-extra", "dataset"}
    assert {n: v["status"] for n, v in nodes.items()} == {
        root: "verified", "base-model": "verified", "dataset-extra": "unattested",
        "dataset": "verified"}
    assert [n["name"] for n in graph["nodes"] if n["flagged"]] == ["dataset-extra"]
    assert graph["flagged"] == [nodes["dataset-extra"]["id"]]
    assert graph["complete"] is False
    # each artifact's signer is the key that signed it, and the digests are the files'
    signer_of = {name: nodes[name]["attestations"][0]["signer"]
                 for name in (root, "base-model", "dataset")}
    assert signer_of == {root: f"key sha256:{chain.fingerprints['c'][:16]}",
                         "base-model": f"key sha256:{chain.fingerprints['b'][:16]}",
                         "dataset": f"key sha256:{chain.fingerprints['a'][:16]}"}
    assert nodes["base-model"]["digest"] == f"sha256:{chain.digests['base.bin']}"
    assert nodes["dataset"]["digest"] == f"sha256:{chain.digests['data.jsonl']}"
    assert nodes["dataset-extra"]["attestations"] == []
    for name in (root, "base-model", "dataset"):
        facts = nodes[name]["attestations"][0]
        assert facts["builder"] == "https://mgattest.dev/builders/local"
        assert facts["verifiedTime"] and facts["verifiedTime"].endswith("Z")
    edges = {(e["from"], e["to"], e["kind"]) for e in graph["edges"]}
    ids = {n: v["id"] for n, v in nodes.items()}
    assert edges == {(ids[root], ids["base-model"], "base-model"),
                     (ids[root], ids["dataset-extra"], "dataset"),
                     (ids["base-model"], ids["dataset"], "dataset")}


def test_exit_codes_root_and_require_complete(chain: Chain) -> None:
    assert provenance(chain, "ft.bin").exit_code == 0
    assert provenance(chain, "ft.bin", "--require-complete").exit_code == 1
    assert provenance(chain, "ft_ok.bin", "--require-complete").exit_code == 0
    # the root itself unattested: exit 1 whatever its inputs
    (chain.root / "ft.bin.sigstore.json").unlink()
    result = provenance(chain, "ft.bin", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["nodes"][0]["status"] == "unattested"


def test_table_lists_each_artifact_and_names_the_flagged_one(chain: Chain) -> None:
    result = provenance(chain, "ft.bin")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    statuses = [line.split()[0] for line in lines[:-1]]
    assert statuses == ["verified", "verified", "unattested", "verified"]
    assert "dataset-extra" in lines[2] and "unattested" in lines[2]
    assert chain.fingerprints["b"][:16] in lines[1]
    assert lines[-1] == "4 artifact(s); root verified; not attested: dataset-extra (unattested)"


def _mermaid(chain: Chain, model: str, *extra: object) -> str:
    result = provenance(chain, model, "--format", "mermaid", *extra)
    assert result.exit_code in (0, 1), result.output
    return result.stdout


def test_mermaid_parses_and_styles_exactly_the_flagged_input(chain: Chain) -> None:
    text = _mermaid(chain, "ft.bin")
    chart = parse_flowchart(text)
    graph = as_json(chain, "ft.bin")
    nodes = by_name(graph)
    assert set(chart.nodes) == {n["id"] for n in graph["nodes"]}
    assert {(a, b) for a, _, b in chart.edges} == {(e["from"], e["to"]) for e in graph["edges"]}
    assert chart.classes[nodes["dataset-extra"]["id"]] == "unattested"
    assert [n for n, c in chart.classes.items() if c != "verified"] == \
        [nodes["dataset-extra"]["id"]]
    assert "stroke-dasharray" in chart.class_defs["unattested"]
    _mermaid_js_parses(text)


def test_strict_parser_rejects_what_mermaid_rejects() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_flowchart('flowchart TD\n    n0["a"b"]\n')
    with pytest.raises(ValueError, match="undeclared"):
        parse_flowchart('flowchart TD\n    n0["a"]\n    n0 -->|"x"| n1\n')
    with pytest.raises(ValueError, match="classDef"):
        parse_flowchart('flowchart TD\n    n0["a"]\n    class n0 verified\n')


def test_hostile_dependency_names_cannot_break_the_mermaid_graph(chain: Chain) -> None:
    name = 'x"]\n    evil["pwn<script>'
    evil = chain.root / "evil.bin"
    evil.write_bytes(b"evil")
    sign(evil, chain.root / "c.key",
         f"{name}=file://x@sha256:{chain.digests['extra.jsonl']}")
    chart = parse_flowchart(_mermaid(chain, "evil.bin"))
    assert set(chart.nodes) == {"n0", "n1"}
    assert "<script>" not in chart.nodes["n1"] and '"' not in chart.nodes["n1"]


def _mermaid_js_parses(text: str) -> None:
    if shutil.which("node") is None or not (MERMAID_JS / "node_modules" / "mermaid").is_dir():
        pytest.skip("Mermaid's parser is not installed (scripts/setup.sh runs npm ci in "
                    "tests/lineage/js)")
    proc = subprocess.run(["node", str(MERMAID_JS / "parse.mjs")], input=text,
                          capture_output=True, text=True, timeout=120)
    answer = json.loads(proc.stdout)
    assert answer == {"ok": True, "type": "flowchart-v2"}, answer


def test_mermaid_js_rejects_a_broken_graph() -> None:
    """The Node check can fail: a label left open is a parse error there too."""
    if shutil.which("node") is None or not (MERMAID_JS / "node_modules" / "mermaid").is_dir():
        pytest.skip("Mermaid's parser is not installed")
    proc = subprocess.run(["node", str(MERMAID_JS / "parse.mjs")],
                          input='flowchart TD\n    n0["a] -->|"x"| n1\n',
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and json.loads(proc.stdout)["ok"] is False


def _tamper_payload(bundle: Path) -> None:
    doc = json.loads(bundle.read_text())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    statement["predicate"]["runDetails"]["builder"]["id"] = "https://evil.example/builder"
    doc["dsseEnvelope"]["payload"] = base64.b64encode(
        json.dumps(statement).encode()).decode()
    bundle.write_text(json.dumps(doc))


def test_tampered_dependency_attestation_is_unverifiable_not_attested(chain: Chain) -> None:
    _tamper_payload(chain.attestations / "base.bin.sigstore.json")
    graph = as_json(chain, "ft.bin")
    nodes = by_name(graph)
    base = nodes["base-model"]
    assert base["status"] == "unverifiable" and base["flagged"] is True
    assert base["attestations"] == []
    assert base["rejected"][0]["source"].endswith("base.bin.sigstore.json")
    assert "signature" in base["rejected"][0]["reason"].lower()
    # nothing the tampered statement says is followed: its dataset is not in the graph
    assert "dataset" not in nodes
    chart = parse_flowchart(_mermaid(chain, "ft.bin"))
    assert chart.classes[base["id"]] == "unverifiable"
    assert provenance(chain, "ft.bin", "--require-complete").exit_code == 1


def test_dependency_signed_by_an_untrusted_key_is_unverifiable(chain: Chain) -> None:
    args = ["--key", chain.keys["a"], "--key", chain.keys["c"]]  # B's key not trusted
    result = mg("provenance", chain.root / "ft.bin", "--bundles", chain.attestations,
                *args, "--json")
    nodes = by_name(json.loads(result.stdout))
    assert nodes["base-model"]["status"] == "unverifiable"
    assert "dataset" not in nodes


def test_depth_bounds_the_walk(chain: Chain) -> None:
    nodes = by_name(as_json(chain, "ft.bin", "--depth", "1"))
    assert nodes["base-model"]["status"] == "verified"
    assert nodes["dataset"]["status"] == "not-followed"
    assert nodes["dataset"]["flagged"] is False


def test_a_cycle_ends_at_the_digest_already_visited(chain: Chain) -> None:
    x, y = chain.root / "x.bin", chain.root / "y.bin"
    x.write_bytes(b"x")
    y.write_bytes(b"y")
    from tests.helpers.lineage_chain import sha256

    sign(x, chain.root / "a.key", f"base-model=file://y@sha256:{sha256(y)}")
    y_bundle = sign(y, chain.root / "b.key", f"base-model=file://x@sha256:{sha256(x)}")
    shutil.move(y_bundle, chain.attestations / y_bundle.name)
    graph = as_json(chain, "x.bin")
    assert [n["status"] for n in graph["nodes"]] == ["verified", "verified"]
    assert {(e["from"], e["to"]) for e in graph["edges"]} == {("n0", "n1"), ("n1", "n0")}


def test_bad_options_are_input_errors(chain: Chain) -> None:
    result = provenance(chain, "ft.bin", "--format", "svg")
    assert result.exit_code == 2 and "--format" in result.output
    result = mg("provenance", chain.root / "ft.bin", "--bundles", chain.root / "missing")
    assert result.exit_code == 2 and "missing" in result.output
    assert "Traceback" not in result.output


def test_help_lists_the_command() -> None:
    assert "provenance" in run_ok("--help")
