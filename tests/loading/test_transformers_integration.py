"""mgattest.integrations: transformers, safetensors and torch read only a verified,
private copy of the model (issue 17, "loading without a second read").

A tiny GPT-2 and a word-level tokenizer are built offline with ``save_pretrained``, signed
with a key into the embedded log, and loaded through the integration. transformers itself
is the independent checker: what it loads from the original directory is compared with
what it loads through mgattest.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mgattest.attest._sign import sign_model, write_bundle_file
from mgattest.attest.errors import ModelChangedError
from mgattest.errors import InputError
from mgattest.integrations.errors import RemoteCodeDenied, UnsafeLoaderOption
from mgattest.loading import materialise
from mgattest.policy.errors import PolicyDenied
from tests.helpers.paths import PROJECT_ROOT

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from mgattest.integrations import safetensors as mg_safetensors  # noqa: E402
from mgattest.integrations import torch as mg_torch  # noqa: E402
from mgattest.integrations.transformers import from_pretrained  # noqa: E402

WEIGHTS = "model.safetensors"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A 1-layer GPT-2 (hidden size 8) and a 16-word tokenizer, saved by transformers."""
    root = tmp_path_factory.mktemp("tiny") / "gpt2"
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16,
                                     n_positions=16, bos_token_id=0, eos_token_id=0)
    transformers.GPT2LMHeadModel(config).save_pretrained(root)
    vocab = {c: i for i, c in enumerate("abcdefghijklmn")}
    vocab.update({"[UNK]": 14, "[PAD]": 15})
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                         pad_token="[PAD]").save_pretrained(root)
    return root


class Signed:
    """A signed copy of a model: its directory, bundle, policy and signer (the policy of
    the loading conftest's ``env``: one rule, the release key, ``content.pickle: deny``)."""

    def __init__(self, env: tuple[Path, object], source: Path) -> None:
        self.tmp, self.signer = env
        self.model = self.tmp / "model"
        shutil.copytree(source, self.model)
        self.policy = self.tmp / "policy.yaml"
        self.policy_text = self.policy.read_text()
        self.bundle = self.tmp / "model.sigstore.json"
        self.sign()
        self.workdir = self.tmp / "private"
        self.workdir.mkdir()

    def sign(self) -> None:
        write_bundle_file(sign_model(self.model, self.signer).bundle, self.bundle)

    def with_rule_content(self, content: str) -> None:
        self.policy.write_text(self.policy_text.replace("content: {pickle: deny}",
                                                        f"content: {content}"))

    def load(self, cls, **kwargs):
        return from_pretrained(cls, self.model, policy=self.policy, bundles=[self.bundle],
                               workdir=self.workdir, **kwargs)


@pytest.fixture()
def signed(env, tiny_model) -> Signed:
    return Signed(env, tiny_model)


@pytest.fixture()
def no_network(monkeypatch):
    """Any connection attempt fails the test: the integration must stay offline."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def state_of(model) -> dict[str, list[float]]:
    return {k: v.flatten().tolist() for k, v in model.state_dict().items()}


def evil_weights(path: Path) -> bytes:
    """The same tensors (names, shapes, so the same file size) with every value 666."""
    tensors = safetensors_torch.load_file(path)
    return safetensors_torch.save({k: torch.full_like(v, 666.0) for k, v in tensors.items()},
                                  metadata={"format": "pt"})


# --------------------------------------------------------------------------- loading


def test_model_and_tokenizer_load_offline_from_the_verified_copy(signed, no_network):
    direct = transformers.AutoModelForCausalLM.from_pretrained(signed.model)
    model = signed.load(transformers.AutoModelForCausalLM)
    assert type(model) is type(direct)
    assert state_of(model) == state_of(direct)
    tokenizer = signed.load(transformers.AutoTokenizer)
    expected = transformers.AutoTokenizer.from_pretrained(signed.model)
    assert tokenizer("a b n z")["input_ids"] == expected("a b n z")["input_ids"] == [0, 1, 13, 14]
    assert os.listdir(signed.workdir) == []  # the private copy is gone once loaded


def test_every_file_transformers_reads_is_judged_by_the_policy(signed):
    """A tampered tokenizer or config denies the load, naming the file; nothing but the
    weights is special."""
    for name in ("tokenizer.json", "config.json", "generation_config.json"):
        original = (signed.model / name).read_bytes()
        (signed.model / name).write_bytes(original.replace(b"}", b" }", 1))
        with pytest.raises(PolicyDenied) as exc:
            signed.load(transformers.AutoTokenizer)
        assert exc.value.verdict.clearance[name].loadable is False
        assert name in str(exc.value)
        (signed.model / name).write_bytes(original)
    assert signed.load(transformers.AutoConfig).n_embd == 8


def test_materialised_copy_is_private_sealed_and_removed(signed):
    signed.policy.write_text(signed.policy_text + '    files: {ignore: ["README.md"]}\n')
    (signed.model / "README.md").write_text("not signed, not loaded")
    (signed.model / "extra").mkdir()
    (signed.model / "extra" / "notes.json").write_text("{}")
    signed.sign()
    with materialise(signed.model, policy=signed.policy, bundles=[signed.bundle],
                     workdir=signed.workdir) as copy:
        root = Path(copy.root)
        assert root.is_relative_to(signed.workdir)
        assert set(copy.files) == ({p.name for p in signed.model.iterdir()}
                                   - {"README.md", "extra"} | {"extra/notes.json"})
        assert "README.md" in copy.left_out and not (root / "README.md").exists()
        for name, digest in copy.files.items():
            path = root / name
            st = path.lstat()
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o400
            assert st.st_uid == os.getuid() and st.st_nlink == 1
            assert path.read_bytes() == (signed.model / name).read_bytes()
            assert digest.startswith("sha256:") and len(digest) == 71
        assert stat.S_IMODE(root.stat().st_mode) == 0o500
        assert stat.S_IMODE((root / "extra").stat().st_mode) == 0o500
        assert stat.S_IMODE(root.parent.stat().st_mode) == 0o700  # mkdtemp's own
        if os.geteuid() != 0:  # root writes through any mode
            with pytest.raises(PermissionError):
                (root / "extra.json").write_text("{}")
    assert not root.exists() and os.listdir(signed.workdir) == []


def test_denied_or_failed_materialisation_leaves_nothing_behind(signed):
    (signed.model / WEIGHTS).write_bytes(evil_weights(signed.model / WEIGHTS))
    with pytest.raises(PolicyDenied) as exc:
        signed.load(transformers.AutoModelForCausalLM)
    assert exc.value.verdict.clearance[WEIGHTS].loadable is False
    assert exc.value.exit_code == 1
    assert os.listdir(signed.workdir) == []


# --------------------------------------------------------------------------- the race


def swapper(path: Path, evil: bytes, how: str):
    """A thread that replaces *path* when released; returns (release, done)."""
    go, done = threading.Event(), threading.Event()

    def run() -> None:
        go.wait(10)
        if how == "rename-over":
            tmp = path.with_name(path.name + ".new")
            tmp.write_bytes(evil)
            os.replace(tmp, path)
        else:  # in-place rewrite of the same inode
            before = path.stat()
            with open(path, "r+b") as fh:
                fh.write(evil)
            if how == "in-place-mtime-kept":  # as a careful writer would hide it
                os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return go, done


@pytest.mark.parametrize("how", ["rename-over", "in-place", "in-place-mtime-kept"])
def test_weights_swapped_after_copy_do_not_change_what_is_loaded(signed, how):
    """The weights are replaced the moment their private copy is made, before the copy
    is verified and read: transformers loads the signed tensors, not the swapped ones
    (which a direct from_pretrained of the same directory does load)."""
    signed_state = state_of(transformers.AutoModelForCausalLM.from_pretrained(signed.model))
    evil = evil_weights(signed.model / WEIGHTS)
    go, done = swapper(signed.model / WEIGHTS, evil, how)

    def on_copied(name: str) -> None:
        if name == WEIGHTS:
            go.set()
            assert done.wait(10)

    model = signed.load(transformers.AutoModelForCausalLM, on_copied=on_copied)
    assert done.is_set() and (signed.model / WEIGHTS).read_bytes() == evil
    assert state_of(model) == signed_state
    swapped = state_of(transformers.AutoModelForCausalLM.from_pretrained(signed.model))
    assert swapped != signed_state and 666.0 in swapped["transformer.h.0.mlp.c_fc.weight"]


@pytest.mark.parametrize("how", ["rename-over", "in-place", "in-place-mtime-kept"])
def test_weights_swapped_before_copy_fail_closed(signed, how):
    """Swapped while the earlier files are copied: the open no longer finds the file the
    walk saw (new inode or mtime), or, when the writer restored the mtime, the copy holds
    the swapped bytes and its verification fails on them. Nothing is loaded either way
    and the copy is removed."""
    go, done = swapper(signed.model / WEIGHTS, evil_weights(signed.model / WEIGHTS), how)

    def on_copied(name: str) -> None:
        if name == "config.json":  # copied before model.safetensors (sorted walk)
            go.set()
            assert done.wait(10)

    expected = PolicyDenied if how == "in-place-mtime-kept" else ModelChangedError
    with pytest.raises(expected) as exc:
        signed.load(transformers.AutoModelForCausalLM, on_copied=on_copied)
    assert done.is_set()
    if isinstance(exc.value, PolicyDenied):
        assert exc.value.verdict.clearance[WEIGHTS].loadable is False
        assert "model.files" in [c.id for c in exc.value.verdict.failures]
    else:
        assert exc.value.where == WEIGHTS and "changed between the walk" in str(exc.value)
    assert os.listdir(signed.workdir) == []


def test_weights_growing_while_copied_fail_closed(signed, monkeypatch):
    """A writer appending to the weights during their copy: refused as changed."""
    import mgattest.loading._materialise as mat

    real = mat._copy_fd
    weights = signed.model / WEIGHTS

    def copy_then_append(src_fd: int, dst_fd: int) -> int:
        copied = real(src_fd, dst_fd)
        if os.fstat(src_fd).st_ino == weights.stat().st_ino:
            with open(weights, "ab") as fh:
                fh.write(b"\0" * 64)
        return copied

    monkeypatch.setattr(mat, "_copy_fd", copy_then_append)
    with pytest.raises(InputError, match="changed while it was copied") as exc:
        signed.load(transformers.AutoModelForCausalLM)
    assert exc.value.where == WEIGHTS
    assert os.listdir(signed.workdir) == []


# --------------------------------------------------------------------------- custom code

CONFIG_CODE = '''\
from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tinycustom"

    def __init__(self, hidden=4, **kwargs):
        self.hidden = hidden
        super().__init__(**kwargs)
'''

MODEL_CODE = '''\
import torch
from transformers import PreTrainedModel

from .configuration_tiny import TinyConfig


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.lin = torch.nn.Linear(config.hidden, config.hidden)
        self.post_init()

    def forward(self, x):
        return self.lin(x)
'''


@pytest.fixture(scope="module")
def custom_code_model(tmp_path_factory) -> Path:
    """A model whose class is its own code: two ``.py`` files and an ``auto_map``."""
    root = tmp_path_factory.mktemp("custom") / "tiny-custom"
    root.mkdir()
    (root / "configuration_tiny.py").write_text(CONFIG_CODE)
    (root / "modeling_tiny.py").write_text(MODEL_CODE)
    (root / "config.json").write_text(json.dumps({
        "model_type": "tinycustom", "hidden": 4, "architectures": ["TinyModel"],
        "auto_map": {"AutoConfig": "configuration_tiny.TinyConfig",
                     "AutoModel": "modeling_tiny.TinyModel"}}))
    safetensors_torch.save_file({"lin.weight": torch.arange(16.0).reshape(4, 4),
                                 "lin.bias": torch.full((4,), 0.5)},
                                root / WEIGHTS, metadata={"format": "pt"})
    return root


@pytest.fixture()
def modules_cache(tmp_path, monkeypatch):
    """transformers copies model code to HF_MODULES_CACHE and imports it from there:
    a per-test directory, and the imported modules forgotten afterwards."""
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [m for m in sys.modules if m.startswith("transformers_modules")]:
        del sys.modules[name]


@pytest.fixture()
def signed_code(env, custom_code_model, modules_cache) -> Signed:
    return Signed(env, custom_code_model)


def digest_of(path: Path) -> str:
    import hashlib
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def allow_code(signed: Signed) -> None:
    digests = [digest_of(signed.model / n) for n in ("configuration_tiny.py", "modeling_tiny.py")]
    signed.with_rule_content(json.dumps({"remoteCode": {"allow": digests}}))


def test_custom_code_refused_under_the_default_policy(signed_code):
    with pytest.raises(RemoteCodeDenied) as exc:
        signed_code.load(transformers.AutoModel)
    assert exc.value.where in ("configuration_tiny.py", "modeling_tiny.py")
    assert "content.remoteCode.allow" in str(exc.value) and exc.value.exit_code == 1
    assert digest_of(signed_code.model / exc.value.where) in str(exc.value)
    with pytest.raises(RemoteCodeDenied):  # asking for it changes nothing
        signed_code.load(transformers.AutoModel, trust_remote_code=True)
    assert os.listdir(signed_code.workdir) == []


def test_custom_code_loads_when_the_policy_allows_its_exact_digest(signed_code):
    allow_code(signed_code)
    model = signed_code.load(transformers.AutoModel)
    assert type(model).__name__ == "TinyModel"
    assert model.lin.weight.flatten().tolist() == [float(i) for i in range(16)]
    assert model.lin.bias.tolist() == [0.5] * 4
    with pytest.raises(ValueError, match="trust_remote_code"):  # declined by the caller
        signed_code.load(transformers.AutoModel, trust_remote_code=False)


def test_changed_code_byte_is_refused_again(signed_code):
    """The policy pins the reviewed code: the same signer signing one changed byte of
    modeling_tiny.py does not make it runnable."""
    allow_code(signed_code)
    code = signed_code.model / "modeling_tiny.py"
    code.write_text(MODEL_CODE.replace("self.post_init()", "self.post_init() "))
    signed_code.sign()
    with pytest.raises(PolicyDenied) as exc:
        signed_code.load(transformers.AutoModel)
    failed = [c for c in exc.value.verdict.failures if c.id == "model.content"]
    assert failed and "modeling_tiny.py" in failed[0].reason
    assert "not on content.remoteCode.allow" in failed[0].reason
    assert exc.value.verdict.clearance["modeling_tiny.py"].code is False


def test_auto_map_into_another_repository_is_refused(signed_code):
    allow_code(signed_code)
    config = json.loads((signed_code.model / "config.json").read_text())
    config["auto_map"]["AutoModel"] = "someone/else--modeling_tiny.TinyModel"
    (signed_code.model / "config.json").write_text(json.dumps(config))
    signed_code.sign()
    with pytest.raises(RemoteCodeDenied, match="another repository") as exc:
        signed_code.load(transformers.AutoModel)
    assert exc.value.where == "config.json"


def test_auto_map_without_the_code_file_is_refused(signed_code):
    (signed_code.model / "modeling_tiny.py").unlink()
    (signed_code.model / "configuration_tiny.py").unlink()
    signed_code.sign()
    with pytest.raises(RemoteCodeDenied, match="configuration_tiny.py") as exc:
        signed_code.load(transformers.AutoModel)
    assert exc.value.where == "config.json"


def test_trust_remote_code_refused_without_code_the_policy_allows(signed):
    with pytest.raises(UnsafeLoaderOption, match="trust_remote_code") as exc:
        signed.load(transformers.AutoModelForCausalLM, trust_remote_code=True)
    assert exc.value.exit_code == 2


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("option", [
    {"revision": "main"}, {"cache_dir": "/tmp"}, {"force_download": True}, {"token": "hf_x"},
    {"local_files_only": False}, {"proxies": {"https": "http://127.0.0.1:9"}},
    {"state_dict": {}}, {"vocab_file": "vocab.txt"}, {"tokenizer_file": "/etc/passwd"},
    {"subfolder": "../elsewhere"}, {"subfolder": "/abs"}, {"gguf_file": "../x.gguf"},
    {"config": "other-config.json"}, {"pretrained_model_name_or_path": "gpt2"},
    {"custom_pipeline": "pipe.py"}, {"offload_folder": "off"}, {"foo": Path("/x")},
    {"adapter_kwargs": {}}, {"attn_implementation": "kernels-community/flash-attn"},
])
def test_options_that_reopen_the_gap_are_refused_before_anything_is_read(signed, option):
    with pytest.raises(UnsafeLoaderOption) as exc:
        signed.load(transformers.AutoModelForCausalLM, **option)
    assert exc.value.where == next(iter(option)) and exc.value.exit_code == 2
    assert os.listdir(signed.workdir) == []


def test_a_peft_adapter_is_refused(signed):
    """Its base model would be read from wherever adapter_config.json points."""
    (signed.model / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": str(signed.tmp / "elsewhere"), "peft_type": "LORA"}))
    signed.sign()
    with pytest.raises(InputError, match="base model") as exc:
        signed.load(transformers.AutoModelForCausalLM)
    assert exc.value.where == "adapter_config.json"
    assert os.listdir(signed.workdir) == []


def test_harmless_options_pass_through(signed):
    model = signed.load(transformers.AutoModelForCausalLM, dtype=torch.float64,
                        subfolder="")
    assert model.dtype == torch.float64


def test_a_single_file_is_not_a_pretrained_directory(signed):
    with pytest.raises(InputError, match="model directory"):
        from_pretrained(transformers.AutoConfig, signed.model / "config.json",
                        policy=signed.policy, bundles=[sign_file(signed, "config.json")],
                        workdir=signed.workdir)
    assert os.listdir(signed.workdir) == []


# --------------------------------------------------------------------------- one-file loaders


def sign_file(signed: Signed, name: str) -> Path:
    bundle = signed.tmp / f"{name}.sigstore.json"
    write_bundle_file(sign_model(signed.model / name, signed.signer).bundle, bundle)
    return bundle


def test_safetensors_load_file_reads_the_verified_copy(signed):
    bundle = sign_file(signed, WEIGHTS)
    expected = safetensors_torch.load_file(signed.model / WEIGHTS)
    for framework in ("pt", "np"):
        got = mg_safetensors.load_file(signed.model / WEIGHTS, policy=signed.policy,
                                       bundles=[bundle], framework=framework,
                                       workdir=signed.workdir)
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert torch.equal(torch.as_tensor(got[key]), value)
    with pytest.raises(InputError, match="one file"):
        mg_safetensors.load_file(signed.model, policy=signed.policy, bundles=[signed.bundle],
                                 workdir=signed.workdir)
    (signed.model / WEIGHTS).write_bytes(evil_weights(signed.model / WEIGHTS))
    with pytest.raises(PolicyDenied) as exc:
        mg_safetensors.load_file(signed.model / WEIGHTS, policy=signed.policy, bundles=[bundle],
                                 workdir=signed.workdir)
    assert exc.value.verdict.clearance[WEIGHTS].loadable is False
    assert os.listdir(signed.workdir) == []


def test_torch_load_needs_the_policy_to_clear_the_pickle(signed):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.save(state, signed.model / "weights.pt")
    bundle = sign_file(signed, "weights.pt")
    with pytest.raises(PolicyDenied, match="content.pickle is deny"):
        mg_torch.load(signed.model / "weights.pt", policy=signed.policy, bundles=[bundle],
                      workdir=signed.workdir)
    signed.with_rule_content("{pickle: scan}")
    got = mg_torch.load(signed.model / "weights.pt", policy=signed.policy, bundles=[bundle],
                        workdir=signed.workdir, map_location="cpu")
    assert torch.equal(got["w"], state["w"])
    with pytest.raises(UnsafeLoaderOption):
        mg_torch.load(signed.model / "weights.pt", policy=signed.policy, bundles=[bundle],
                      weights_only=False)
    assert os.listdir(signed.workdir) == []


# --------------------------------------------------------------------------- placement


def _hub_snapshot(tmp_path: Path, model_dir: Path) -> Path:
    """``model_dir`` placed as the hub writes it: ``models--acme--tiny/snapshots/<rev>/``
    files are relative symlinks into ``blobs/`` (LFS blobs named by their SHA-256)."""
    import hashlib

    repo = tmp_path / "hub" / "models--acme--tiny"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for source in sorted(model_dir.iterdir()):
        data = source.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        (snapshot / source.name).symlink_to(f"../../blobs/{blob}")
    return snapshot


def test_model_in_a_hugging_face_cache_snapshot(env, tiny_model, monkeypatch):
    """Signed in the hub cache layout; loaded by snapshot path and by ``hf:`` reference."""
    tmp_path, signer = env
    snapshot = _hub_snapshot(tmp_path, tiny_model)
    bundle = write_bundle_file(sign_model(snapshot, signer).bundle, tmp_path / "b.sigstore.json")
    direct = state_of(transformers.AutoModelForCausalLM.from_pretrained(tiny_model))
    model = from_pretrained(transformers.AutoModelForCausalLM, snapshot,
                            policy=tmp_path / "policy.yaml", bundles=[bundle])
    assert state_of(model) == direct
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = from_pretrained(transformers.AutoModelForCausalLM, "hf:acme/tiny",
                            policy=tmp_path / "policy.yaml", bundles=[bundle])
    assert state_of(model) == direct


@pytest.mark.parametrize("how", ["blob-rewritten", "link-retargeted"])
def test_hub_cache_weights_swapped_after_copy_do_not_change_what_is_loaded(env, tiny_model,
                                                                          monkeypatch, how):
    """The race in the cache layout: once the weights are copied, their blob is rewritten
    in place (as a resumed download would) or the snapshot link is pointed at another
    blob. What loads is the signed model; a direct load of the snapshot gets the swap."""
    tmp_path, signer = env
    snapshot = _hub_snapshot(tmp_path, tiny_model)
    bundle = write_bundle_file(sign_model(snapshot, signer).bundle, tmp_path / "b.sigstore.json")
    signed_state = state_of(transformers.AutoModelForCausalLM.from_pretrained(tiny_model))
    evil = evil_weights(tiny_model / WEIGHTS)
    link = snapshot / WEIGHTS

    def on_copied(name: str) -> None:
        if name != WEIGHTS:
            return
        if how == "blob-rewritten":
            with open(link.resolve(), "r+b") as fh:
                fh.write(evil)
        else:
            other = link.resolve().parent / ("0" * 64)
            other.write_bytes(evil)
            tmp_link = snapshot / (WEIGHTS + ".new")
            tmp_link.symlink_to(f"../../blobs/{other.name}")
            os.replace(tmp_link, link)

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = from_pretrained(transformers.AutoModelForCausalLM, "hf:acme/tiny",
                            policy=tmp_path / "policy.yaml", bundles=[bundle],
                            on_copied=on_copied)
    assert link.read_bytes() == evil
    assert state_of(model) == signed_state
    swapped = state_of(transformers.AutoModelForCausalLM.from_pretrained(snapshot))
    assert swapped != signed_state


# --------------------------------------------------------------------------- optional


def test_importing_mgattest_and_the_integrations_loads_no_ml_library():
    code = ("import sys, mgattest, mgattest.integrations, mgattest.integrations.transformers, "
            "mgattest.integrations.safetensors, mgattest.integrations.torch, mgattest.loading; "
            "mgattest.loading.materialise; "
            "print(','.join(m for m in ('transformers', 'tokenizers', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert out.stdout.strip() == ""


def test_missing_transformers_names_the_extra(signed, monkeypatch):
    import mgattest.integrations.transformers as integration

    def absent(module: str, purpose: str):
        from mgattest._optional import missing
        raise missing(module, purpose)

    monkeypatch.setattr(integration, "require", absent)
    with pytest.raises(InputError, match=r"mgattest\[hf\]"):
        signed.load(transformers.AutoConfig)
