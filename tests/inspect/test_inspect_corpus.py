"""The whole corpus: every malicious file flagged (and shown to really run its payload
when loaded unsafely, in a subprocess), no benign file flagged."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.corpus import UNSAFE_LOADER_SOURCE
from mgattest.inspect import SAFE, scan_path

pytestmark = pytest.mark.slow


def test_corpus_is_broad(corpus):
    # the acceptance list: every family is present
    names = set(corpus.malicious)
    for needed in ("os_system_p0", "posix_system_p5", "subprocess_call", "builtins_eval",
                   "builtins_exec", "builtins_getattr_import", "py2_builtin_eval",
                   "py2_commands", "runpy_run_code", "importlib_import", "code_interpreter",
                   "pip_ensure_dir", "webbrowser_generic", "socket_bind", "functools_partial",
                   "operator_methodcaller", "inst_opcode", "obj_opcode", "stack_global_memo",
                   "torch_zip_payload", "torch_legacy_payload", "joblib_after_arrays",
                   "joblib_zlib", "joblib_gzip", "joblib_lzma", "joblib_object_array",
                   "npy_object_array", "npz_object_array", "appended_stream",
                   "zip_nested_pickle", "joblib_padding_polyglot"):
        assert needed in names
    assert len(corpus.benign) >= 30


def test_no_benign_file_flagged(corpus):
    flagged = {}
    for name, path in corpus.benign.items():
        for report in scan_path(path):
            if report.verdict != SAFE:
                flagged[name] = report.reasons()
    assert flagged == {}


def test_every_malicious_file_flagged_dangerous(corpus):
    missed = {}
    for name, (path, _kind) in corpus.malicious.items():
        (report,) = scan_path(path)
        if report.verdict != "dangerous":
            missed[name] = (report.verdict, report.reasons())
    assert missed == {}


def test_findings_name_module_and_offset(corpus):
    path, _ = corpus.malicious["stack_global_memo"]
    (report,) = scan_path(path)
    (finding,) = [f for f in report.findings if f.kind == "import"]
    assert (finding.module, finding.name) == ("os", "system")
    # the STACK_GLOBAL opcode sits right after the two BINGETs
    assert path.read_bytes()[finding.offset] == 0x93
    path, _ = corpus.malicious["torch_zip_payload"]
    (report,) = scan_path(path)
    assert any(f.member and f.member.endswith("data.pkl") and f.module == "posix"
               for f in report.findings)
    path, _ = corpus.malicious["zip_nested_pickle"]
    (report,) = scan_path(path)
    assert any(f.member == "inner.zip!model/payload.pkl" for f in report.findings)


def test_joblib_polyglot_loads_cleanly_with_joblib(corpus):
    """joblib itself reads the polyglot as a plain array: only pickle.load runs it."""
    import joblib
    path, _ = corpus.malicious["joblib_padding_polyglot"]
    assert joblib.load(path)["a"].tolist() == [1.0] * 4
    assert not corpus.marker("joblib_padding_polyglot").exists()
    (report,) = scan_path(path)
    assert [f.kind for f in report.findings if f.severity == "dangerous"] == ["loader-mismatch"]


def test_payloads_really_execute_when_loaded_unsafely(corpus):
    """Proof the corpus is real: a careless loader runs every payload (in a subprocess)."""
    for name in corpus.malicious:
        assert not corpus.marker(name).exists()
    lines = "\n".join(f"{path}\t{kind}" for path, kind in corpus.malicious.values())
    proc = subprocess.run([sys.executable, "-c", UNSAFE_LOADER_SOURCE], input=lines,
                          capture_output=True, text=True, timeout=240,
                          cwd=corpus.root)
    assert proc.returncode == 0, proc.stderr
    not_run = [name for name in corpus.malicious if not corpus.marker(name).exists()]
    assert not_run == [], proc.stderr
