"""TorchScript archives are judged by what their code/ can reach (issue #11)."""

from __future__ import annotations

import io
import zipfile

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated

from mgattest.inspect import scan_bytes  # noqa: E402


class Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(torch.relu(self.linear(x)))
        if bool(y.sum() > 0):
            y = y * 2
        return y + x.mean()


def scripted() -> bytes:
    buf = io.BytesIO()
    zoo = torch.nn.Sequential(Block(), torch.nn.Dropout(0.1),
                              torch.nn.Unflatten(1, (1, 2, 2)), torch.nn.Conv2d(1, 2, 1),
                              torch.nn.BatchNorm2d(2), torch.nn.Flatten())
    torch.jit.save(torch.jit.script(zoo), buf)
    return buf.getvalue()


def test_recurrent_modules_scripted_have_no_findings():
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.LSTM(4, 4)), buf)
    report = scan_bytes("lstm.pt", buf.getvalue())
    assert [f.detail for f in report.findings if f.severity != "info"] == []


def patched(old: bytes, new: bytes) -> bytes:
    """The scripted archive with ``old`` replaced by ``new`` in its code files."""
    src = zipfile.ZipFile(io.BytesIO(scripted()))
    out = io.BytesIO()
    hits = 0
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if "/code/" in info.filename and info.filename.endswith(".py") and old in data:
                data, hits = data.replace(old, new, 1), hits + 1
            dst.writestr(info.filename, data)
    assert hits
    return out.getvalue()


def test_ordinary_scripted_module_has_no_findings():
    report = scan_bytes("model.pt", scripted())
    assert report.format == "torch-zip"
    assert [f.detail for f in report.findings if f.severity != "info"] == []


@pytest.mark.parametrize("new,severity", [
    (b"torch.ops.evil_ns.run(x)", "suspicious"),
    (b"torch.classes.evil.Thing", "suspicious"),
    (b"torch.from_file(\"/etc/passwd\", False, 4)", "dangerous"),
    (b"torch.distributed.rpc.rpc_sync(\"w\", x)", "dangerous"),
    (b"__torch__.NotDefinedHere(x)", "suspicious"),
    (b"(((", "malformed"),
])
def test_code_reaching_outside_is_flagged(new, severity):
    report = scan_bytes("model.pt", patched(b"torch.relu(", new + b" + torch.relu("))
    assert report.verdict == severity, report.reasons()
    assert any(f.kind == "torchscript" for f in report.findings)


def test_python_import_in_code_is_flagged():
    report = scan_bytes("model.pt", patched(b"class ", b"import os\nclass "))
    assert report.verdict == "suspicious"
