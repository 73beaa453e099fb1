"""Every model of the test corpus through ``mgattest.load`` (issue #16 acceptance).

With the ML extras and torch installed, each file is signed and loaded under the most
permissive content policy (``pickle: restricted``), in a subprocess with an address
space limit and a per-file time limit. Every malicious file must be refused and no
payload may run; every benign file loads or is refused with a typed error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.paths import PROJECT_ROOT

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("onnx")

pytestmark = pytest.mark.slow

MEMORY_LIMIT = 6 * 1024**3  # address space of the loading process
SECONDS_PER_FILE = 30

RUNNER = r'''
import json, os, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from tests.helpers.corpus import build_corpus
import mgattest
from mgattest.attest._keys import generate_signer, public_key_pem
from mgattest.attest._sign import sign_model, write_bundle_file
from mgattest.errors import MgattestError

resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
root = Path(sys.argv[1])
corpus = build_corpus(root / "corpus")
signer = generate_signer()
(root / "k.pub").write_bytes(public_key_pem(signer))
(root / "policy.yaml").write_text("""apiVersion: mgattest/v1
kind: Policy
trust: {keys: [{name: k, path: k.pub}]}
signers: {k: {key: k}}
rules:
  - id: model
    match: ["**"]
    signedBy: {anyOf: [k]}
    content: {pickle: restricted}
""")
import torch  # noqa: F401 - loaded before timing, as a serving process would
items = [(n, p, False) for n, p in corpus.benign.items()]
items += [(n, p, True) for n, (p, _k) in corpus.malicious.items()]
results = []
for name, path, malicious in items:
    bundle = write_bundle_file(sign_model(path, signer).bundle,
                               root / "bundles" / (name.replace("/", "_") + ".json"))
    start = time.monotonic()
    try:
        mgattest.load(path, policy=root / "policy.yaml", bundles=[bundle])
        outcome = "loaded"
    except MgattestError as exc:
        outcome = type(exc).__name__ + ": " + str(exc)[:200]
    except BaseException as exc:  # anything untyped is a defect the test reports
        outcome = "UNTYPED " + type(exc).__name__ + ": " + str(exc)[:200]
    results.append({"name": name, "malicious": malicious, "outcome": outcome,
                    "seconds": time.monotonic() - start})
markers = sorted(p.name for p in (corpus.root / "markers").iterdir())
print(json.dumps({"results": results, "markers": markers,
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
'''


def test_every_corpus_model_loads_or_is_refused_and_every_malicious_one_is_refused(tmp_path):
    (tmp_path / "bundles").mkdir()
    env = dict(os.environ, MGATTEST_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path),
                           str(PROJECT_ROOT), str(MEMORY_LIMIT)],
                          capture_output=True, text=True, timeout=900, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    results = report["results"]
    assert report["markers"] == [], "a payload ran"
    malicious = [r for r in results if r["malicious"]]
    assert len(malicious) >= 38
    assert [r for r in malicious if r["outcome"] == "loaded"] == []
    assert [r for r in results if r["outcome"].startswith("UNTYPED")] == []
    slow = [r for r in results if r["seconds"] > SECONDS_PER_FILE]
    assert slow == []
    loaded = [r["name"] for r in results if not r["malicious"] and r["outcome"] == "loaded"]
    assert len(loaded) >= 25, results
