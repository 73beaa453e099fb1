"""ONNX external-data checks: every external tensor location must be relative and stay
inside the model directory (no absolute paths, no ``..``, no symlink escape)."""

from __future__ import annotations

import os
from typing import cast
from pathlib import Path, PurePosixPath, PureWindowsPath

from mgattest._numbers import parse_ascii_uint
from mgattest.inspect._pickle_scan import ScanContext
from mgattest.inspect._limits import Data
from mgattest.inspect._protobuf import ProtobufError, fields
from mgattest.inspect._report import DANGEROUS, INFO, MALFORMED

# (message kind) -> {field number: child kind}
_CHILDREN = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto initialization, algorithm
    "function": {7: "node", 11: "attribute"},  # attribute_proto: default attribute values
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse",
                  23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_MAX_DEPTH = 64


def check_onnx(data: Data, ctx: ScanContext, base_dir: str | None) -> None:
    """Walk the model's tensors and check every external-data reference."""
    stack = [("model", 0, len(data), 0)]
    externals = 0
    try:
        while stack:
            kind, start, end, depth = stack.pop()
            if depth > _MAX_DEPTH:
                ctx.add(MALFORMED, "onnx", "ONNX graph nesting too deep", start)
                return
            if kind == "tensor":
                externals += _check_tensor(data, start, end, ctx, base_dir)
                continue
            children = _CHILDREN[kind]
            for number, wire, value, _at in fields(data, start, end):
                if wire == 2 and number in children:
                    s, e = cast("tuple[int, int]", value)  # wire type 2: a span
                    stack.append((children[number], s, e, depth + 1))
    except ProtobufError as exc:
        ctx.add(MALFORMED, "onnx", f"not a valid ONNX protobuf: {exc}")
        return
    if externals:
        ctx.add(INFO, "onnx-external", f"{externals} tensor(s) stored in external data files")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_tensor(data: Data, start: int, end: int, ctx: ScanContext, base_dir: str | None) -> int:
    entries: dict[str, str] = {}
    name = "?"
    external = False
    for number, wire, value, _at in fields(data, start, end):
        if number == 8 and wire == 2:
            s, e = cast("tuple[int, int]", value)  # wire type 2: a span
            name = bytes(data[s:e]).decode("utf-8", "replace")
        elif number == 14 and wire == 0:
            external = value == 1
        elif number == 13 and wire == 2:
            s, e = cast("tuple[int, int]", value)  # wire type 2: a span
            key = val = None
            for n2, w2, v2, _ in fields(data, s, e):
                if w2 == 2 and n2 in (1, 2):
                    s2, e2 = cast("tuple[int, int]", v2)
                    text = bytes(data[s2:e2]).decode("utf-8", "replace")
                    key, val = (text, val) if n2 == 1 else (key, text)
            if key is not None:
                entries[key] = val or ""
    if not external and not entries:
        return 0
    where = f"tensor {name!r}"
    location = entries.get("location")
    if not location:
        ctx.add(MALFORMED, "onnx-external", f"{where}: external data without a location", start)
        return 1
    _check_location(location, where, entries, ctx, base_dir, start)
    return 1


def _check_location(location: str, where: str, entries: dict[str, str], ctx: ScanContext,
                    base_dir: str | None, at: int) -> None:
    posix, win = PurePosixPath(location), PureWindowsPath(location)
    if posix.is_absolute() or win.is_absolute() or win.drive or location.startswith("\\"):
        ctx.add(DANGEROUS, "onnx-external",
                f"{where}: external data location {_short(location)!r} is absolute", at)
        return
    if ".." in posix.parts or ".." in win.parts or "\x00" in location:
        ctx.add(DANGEROUS, "onnx-external",
                f"{where}: external data location {_short(location)!r} escapes the model directory",
                at)
        return
    for key in ("offset", "length"):
        if key in entries and parse_ascii_uint(entries[key], max_digits=20) is None:
            ctx.add(MALFORMED, "onnx-external", f"{where}: {key} {entries[key]!r} is not a "
                    "non-negative integer", at)
            return
    if base_dir is None:
        return
    try:
        _check_on_disk(location, where, entries, ctx, Path(base_dir).resolve(), at)
    except OSError as exc:
        ctx.add(MALFORMED, "onnx-external", f"{where}: external data {_short(location)!r} cannot be "
                f"checked: {exc.strerror or exc}", at)


def _check_on_disk(location: str, where: str, entries: dict[str, str], ctx: ScanContext,
                   root: Path, at: int) -> None:
    target = Path(os.path.realpath(root / location))
    if target != root and root not in target.parents:
        ctx.add(DANGEROUS, "onnx-external",
                f"{where}: external data {_short(location)!r} resolves outside the model directory "
                f"(symlink to {target})", at)
        return
    if not target.is_file():
        ctx.add(MALFORMED, "onnx-external",
                f"{where}: external data file {_short(location)!r} is missing", at)
        return
    size = target.stat().st_size
    offset = int(entries.get("offset", "0"))
    length = int(entries["length"]) if "length" in entries else size - offset
    if offset + length > size:
        ctx.add(MALFORMED, "onnx-external",
                f"{where}: bytes {offset}-{offset + length} of {_short(location)!r} are beyond its "
                f"{size} bytes", at)
