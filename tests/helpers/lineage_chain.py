"""A signed lineage: dataset → base model → fine-tuned model, three keys, one log.

Built with the real CLI (``keygen``, ``sign --dependency``) in the isolated
``MGATTEST_HOME``, so every bundle carries an entry of the embedded local log::

    data.jsonl      signed by key A (data-team)
    base.bin        signed by key B (base-team), dependency dataset=data.jsonl
    extra.jsonl     NOT signed
    ft.bin          signed by key C (release): base-model=base.bin, dataset-extra=extra.jsonl
    ft_ok.bin       signed by key C (release): base-model=base.bin only

The dependencies' bundles are moved to ``attestations/``; each fine-tuned model keeps
its bundle beside it (``<model>.sigstore.json``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.cli_runner import mg


@dataclass(frozen=True)
class Chain:
    root: Path
    attestations: Path
    keys: dict[str, Path]  # "a"/"b"/"c" → public key
    fingerprints: dict[str, str]  # "a"/"b"/"c" → sha256 hex of the key
    digests: dict[str, str]  # file name → sha256 hex

    def key_args(self) -> list[str]:
        return [arg for k in ("a", "b", "c") for arg in ("--key", str(self.keys[k]))]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_ok(*args: object) -> str:
    result = mg(*args)
    assert result.exit_code == 0, result.output
    return result.output


def sign(path: Path, key: Path, *dependencies: str) -> Path:
    args: list[object] = ["sign", path, "--key", key]
    for dep in dependencies:
        args += ["--dependency", dep]
    run_ok(*args)
    return path.with_name(path.name + ".sigstore.json")


def build_chain(base: Path) -> Chain:
    base.mkdir(parents=True, exist_ok=True)
    keys, fingerprints = {}, {}
    for name in ("a", "b", "c"):
        output = run_ok("keygen", "--out", base / name)
        fingerprints[name] = re.search(r"fingerprint sha256:([0-9a-f]{64})", output).group(1)
        keys[name] = base / f"{name}.pub"
    files = {"data.jsonl": b'{"text": "hello"}\n', "base.bin": b"base weights\x00\x01",
             "extra.jsonl": b'{"text": "unreviewed"}\n', "ft.bin": b"fine-tuned\x00\x02",
             "ft_ok.bin": b"fine-tuned ok\x00\x03"}
    for name, data in files.items():
        (base / name).write_bytes(data)
    digests = {name: sha256(base / name) for name in files}
    attestations = base / "attestations"
    attestations.mkdir()
    data_bundle = sign(base / "data.jsonl", base / "a.key")
    base_bundle = sign(base / "base.bin", base / "b.key",
                       f"dataset=hf://datasets/acme/data@sha256:{digests['data.jsonl']}")
    for bundle in (data_bundle, base_bundle):
        shutil.move(bundle, attestations / bundle.name)
    base_dep = f"base-model=hf://acme/base@sha256:{digests['base.bin']}"
    sign(base / "ft.bin", base / "c.key", base_dep,
         f"dataset-extra=hf://datasets/acme/extra@sha256:{digests['extra.jsonl']}")
    sign(base / "ft_ok.bin", base / "c.key", base_dep)
    return Chain(base, attestations, keys, fingerprints, digests)


def write_policy(chain: Chain, lineage: str, name: str = "policy.yaml") -> Path:
    """A policy trusting the chain's three keys (``root.json`` exported beside them)
    whose ``release`` rule carries the given ``lineage`` clause YAML."""
    path = chain.root / name
    path.write_text(f"""apiVersion: mgattest/v1
kind: Policy
trust:
  roots: [{{name: local, path: root.json}}]
  keys:
    - {{name: ka, path: a.pub}}
    - {{name: kb, path: b.pub}}
    - {{name: kc, path: c.pub}}
signers:
  data-team: {{key: ka}}
  base-team: {{key: kb}}
  release: {{key: kc}}
rules:
  - id: release
    signedBy: {{anyOf: [release]}}
{lineage}""")
    return path


FULL = """    lineage:
      depth: 2
      require:
        - {kind: base-model, signedBy: {anyOf: [base-team]}}
        - {kind: dataset, signedBy: {anyOf: [data-team]}}
"""
