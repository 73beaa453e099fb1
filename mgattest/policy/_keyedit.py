"""Key rotation in a policy file: ``policy key add`` and ``policy key retire``.

The file is edited as text, line by line, so its comments, order and layout stay as the
author wrote them (PyYAML cannot round-trip comments, and ruamel is not a dependency).
Positions come from the located parse (``_yamlpos``); only block-style layouts (the
style ``policy init`` writes and the reference policies use) are edited, anything else is
refused with a message rather than guessed at. The edited text must compile as a policy
and say exactly what was asked (the key and its window) before it replaces the file,
atomically (a temporary file in the same directory, then ``os.replace``): on any error
the file is unchanged.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgattest.policy._loader import policy_from_bytes, read_policy_bytes
from mgattest.policy._model import Policy, TrustedKey, format_time, parse_time
from mgattest.policy._yamlpos import Located, parse_yaml
from mgattest.policy.errors import PolicyError

_ITEM = re.compile(r"^(\s*)-(\s+)(\S.*)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class KeyEdit:
    """What an edit did: the key as the rewritten policy now reads it."""

    policy: Path
    key: TrustedKey
    signer: str | None = None
    added_to_rules: tuple[str, ...] = ()

    def describe(self, verb: str) -> str:
        """One line for people: ``added key 'k' (sha256:…) in p.yaml: valid A → B``."""
        key = self.key
        return (f"{verb} key {key.name!r} (sha256:{key.fingerprint[:16]}…) in {self.policy}: "
                f"valid {format_time(key.valid_from)} → {format_time(key.valid_until)} "
                "(judged at the verified signing time)")


def parse_window_time(text: str, option: str) -> int:
    """An RFC 3339 time or a date (``--valid-from``/``--valid-until``) as unix seconds."""
    try:
        return parse_time(text)
    except ValueError:
        raise PolicyError(f"{option} {text!r} is not an RFC 3339 time or date "
                          "(e.g. 2027-01-31T00:00:00Z)", what=option) from None


def add_key(policy_path: str | os.PathLike[str], name: str, key_path: str | os.PathLike[str],
            *, valid_from: int | None = None, signer: str | None = None,
            alongside: str | None = None) -> KeyEdit:
    """Add public key ``key_path`` as ``trust.keys`` entry ``name`` (valid from
    ``valid_from``); with ``signer``, also a signer of that name for it, and with
    ``alongside``, that signer next to signer ``alongside`` in every ``signedBy.anyOf``."""
    path = Path(policy_path)
    _check_name(name, "--name")
    lines, located = _read(path)
    data = located.data
    keys = _keys(data)
    if any(k.get("name") == name for k in keys if isinstance(k, dict)):
        raise PolicyError(f"{path}: trust.keys already has a key named {name!r}",
                          what="policy.key", where=str(path))
    if alongside is not None and signer is None:
        raise PolicyError("--alongside needs --signer (the signer to add next to it)",
                          what="--alongside")
    entry = {"name": name, "path": _relative(Path(key_path), path.parent)}
    if valid_from is not None:
        entry["validFrom"] = format_time(valid_from)
    rules: tuple[str, ...] = ()
    # Edits run bottom-up (later lines first) so earlier line numbers stay valid.
    edits: list[tuple[int, list[str], int]] = []  # (at line index, new lines, lines removed)
    edits.append(_append_key(lines, located, entry))
    if signer is not None:
        _check_name(signer, "--signer")
        if signer in (data.get("signers") or {}):
            raise PolicyError(f"{path}: signers already has {signer!r}", what="policy.signer",
                              where=str(path))
        edits.append(_append_signer(lines, located, signer, name))
        if alongside is not None:
            rule_edits, rules = _alongside(lines, located, alongside, signer)
            edits.extend(rule_edits)
    new_lines = _apply(lines, edits)
    policy = _compile(new_lines, path)
    key = policy.keys[name]
    if key.valid_from != valid_from:
        raise PolicyError(f"{path}: the edited policy does not read back key {name!r} as "
                          "added; edit it by hand", what="policy.key", where=str(path))
    _write_atomically(path, new_lines)
    return KeyEdit(path, key, signer, rules)


def retire_key(policy_path: str | os.PathLike[str], name: str, valid_until: int) -> KeyEdit:
    """Set ``validUntil`` of ``trust.keys`` entry ``name``: signatures whose verified
    signing time is at or after ``valid_until`` are no longer accepted from it."""
    path = Path(policy_path)
    lines, located = _read(path)
    keys = _keys(located.data)
    index = next((i for i, k in enumerate(keys) if isinstance(k, dict) and k.get("name") == name),
                 None)
    if index is None:
        known = ", ".join(str(k.get("name")) for k in keys if isinstance(k, dict)) or "none"
        raise PolicyError(f"{path}: trust.keys has no key named {name!r} (keys: {known})",
                          what="policy.key", where=str(path))
    item_path = ("trust", "keys", index)
    value = f'"{format_time(valid_until)}"'
    if "validUntil" in keys[index]:
        at = located.lines[item_path + ("validUntil",)] - 1
        new, count = re.subn(r"(validUntil\s*:\s*)[^#\s,}]+", rf"\g<1>{value}", lines[at],
                             count=1)
        if not count:
            raise _layout_error(path, located.lines[item_path])
        edit = (at, [new], 1)
    else:
        first, key_col = _block_item(lines, located, item_path, path)
        edit = (_item_end(lines, first, key_col), [" " * key_col + f"validUntil: {value}\n"], 0)
    new_lines = _apply(lines, [edit])
    key = _compile(new_lines, path).keys[name]
    if key.valid_until != valid_until:
        raise PolicyError(f"{path}: the edited policy does not read back key {name!r} as "
                          "retired; edit it by hand", what="policy.key", where=str(path))
    _write_atomically(path, new_lines)
    return KeyEdit(path, key)


# --------------------------------------------------------------------------- reading

def _read(path: Path) -> tuple[list[str], Located]:
    data = read_policy_bytes(path)
    policy_from_bytes(data, source=str(path), base_dir=path.resolve().parent)  # valid before
    text = data.decode("utf-8")
    return text.splitlines(keepends=True), parse_yaml(text, str(path))


def _keys(data: Any) -> list[Any]:
    trust = data.get("trust") if isinstance(data, dict) else None
    keys = trust.get("keys") if isinstance(trust, dict) else None
    return keys if isinstance(keys, list) else []


def _check_name(name: str, option: str) -> None:
    if not _NAME.fullmatch(name):
        raise PolicyError(f"{option} {name!r}: use letters, digits, '.', '_' and '-'",
                          what=option)


def _relative(key_path: Path, base: Path) -> str:
    """``key_path`` relative to the policy's directory when below it (paths in a policy
    resolve against that directory), else absolute."""
    absolute = key_path.resolve()
    try:
        return absolute.relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def _layout_error(path: Path, line: int) -> PolicyError:
    return PolicyError(f"{path}:{line}: only block-style YAML (one `key: value` per line, "
                       "`- ` list items) is edited; make this edit by hand",
                       what="policy.layout", where=f"{path}:{line}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _block_item(lines: list[str], located: Located, item_path: tuple[Any, ...],
                path: Path) -> tuple[int, int]:
    """(line index, column of its keys) of a block list item that is a block mapping."""
    line_no = located.lines[item_path]
    match = _ITEM.match(lines[line_no - 1])
    if not match or match.group(3).startswith(("{", "[")):
        raise _layout_error(path, line_no)
    return line_no - 1, len(match.group(1)) + 1 + len(match.group(2))


def _item_end(lines: list[str], first: int, child_col: int) -> int:
    """Index just past the last content line of the block starting at ``first`` whose
    children are indented at ``child_col`` (trailing blank and comment lines excluded)."""
    end = first + 1
    last_content = first
    while end < len(lines):
        line = lines[end]
        if _is_content(line) and _indent(line) < child_col:
            break
        if _is_content(line):
            last_content = end
        end += 1
    return last_content + 1


# --------------------------------------------------------------------------- edits

def _append_key(lines: list[str], located: Located, entry: dict[str, str]
                ) -> tuple[int, list[str], int]:
    path = Path(located.file)
    keys = _keys(located.data)
    if keys:
        first, key_col = _block_item(lines, located, ("trust", "keys", len(keys) - 1), path)
        dash_col = _indent(lines[first])
        at = _item_end(lines, first, key_col)
    else:
        trust = located.data.get("trust") if isinstance(located.data, dict) else None
        if not isinstance(trust, dict) or not trust:
            raise PolicyError(f"{path}: the policy has no trust section to add keys to; "
                              "add `trust: {keys: []}` by hand", what="policy.layout",
                              where=str(path))
        child = located.lines[("trust",)] - 1  # a mapping is located at its first key
        col = _indent(lines[child])
        if col == 0 or not lines[child].lstrip().startswith(next(iter(trust))):
            raise _layout_error(path, child + 1)
        dash_col, key_col = col + 2, col + 4
        at = child
        entry_lines = [" " * col + "keys:\n"]
        return at, entry_lines + _entry_lines(entry, dash_col, key_col), 0
    return at, _entry_lines(entry, dash_col, key_col), 0


def _entry_lines(entry: dict[str, str], dash_col: int, key_col: int) -> list[str]:
    out = []
    for i, (field, value) in enumerate(entry.items()):
        prefix = " " * dash_col + "-" + " " * (key_col - dash_col - 1) if i == 0 \
            else " " * key_col
        text = value if field == "name" else _quote(value)  # names are plain ([A-Za-z0-9_.-])
        out.append(f"{prefix}{field}: {text}\n")
    return out


def _quote(value: str) -> str:
    """A double-quoted YAML scalar (safe for any path or time)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _append_signer(lines: list[str], located: Located, signer: str, key: str
                   ) -> tuple[int, list[str], int]:
    path = Path(located.file)
    signers = located.data.get("signers") if isinstance(located.data, dict) else None
    headers = [i for i, line in enumerate(lines) if re.match(r"^signers\s*:\s*(#.*)?$", line)]
    if not isinstance(signers, dict) or not signers or len(headers) != 1:
        raise PolicyError(f"{path}: no block-style top-level signers section; add the "
                          "signer by hand", what="policy.layout", where=str(path))
    # A mapping value is located at its first key: the line of the first signer's name.
    col = _indent(lines[located.lines[("signers",)] - 1])
    if col == 0:
        raise _layout_error(path, headers[0] + 1)
    at = _item_end(lines, headers[0], col)
    return at, [" " * col + f"{signer}:\n", " " * (col + 2) + f"key: {key}\n"], 0


def _alongside(lines: list[str], located: Located, old: str, new: str
               ) -> tuple[list[tuple[int, list[str], int]], tuple[str, ...]]:
    """Edits adding ``new`` after ``old`` in every rule's ``signedBy.anyOf`` list."""
    path = Path(located.file)
    edits: list[tuple[int, list[str], int]] = []
    rules: list[str] = []
    for rule_path, signed_by in _signed_by_lists(located.data):
        for field in ("allOf", "of"):
            if old in (signed_by.get(field) or []):
                raise PolicyError(
                    f"{located.where(rule_path + ('signedBy', field))}: signer {old!r} is in "
                    f"signedBy.{field}; adding {new!r} there changes what is required: "
                    "edit it by hand", what="policy.signedBy", where=str(path))
        names = signed_by.get("anyOf") or []
        if old not in names:
            continue
        list_path = rule_path + ("signedBy", "anyOf")
        item_line = located.lines[list_path + (names.index(old),)] - 1
        text = lines[item_line]
        block = _ITEM.match(text)
        if block and block.group(3).split("#")[0].strip() == old:
            edits.append((item_line + 1, [f"{block.group(1)}-{block.group(2)}{new}\n"], 0))
        else:
            flow = re.match(r"^(.*anyOf\s*:\s*\[[^\]\n]*?)(\s*\].*)$", text, re.S)
            if not flow or item_line + 1 != located.lines[list_path]:
                raise _layout_error(path, item_line + 1)
            edits.append((item_line, [f"{flow.group(1)}, {new}{flow.group(2)}"], 1))
        rule_id = str(located.data["rules"][rule_path[1]].get("id", rule_path[1]))
        rules.append(rule_id if len(rule_path) == 2 else f"{rule_id} attestations[{rule_path[3]}]")
    if not edits:
        raise PolicyError(f"{path}: no signedBy.anyOf list names signer {old!r}",
                          what="--alongside", where=str(path))
    return edits, tuple(rules)


def _signed_by_lists(data: Any) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """(path of the owner, its signedBy mapping) for every rule and every rule's
    ``attestations[]`` entry."""
    found: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for i, rule in enumerate(data.get("rules") or []):
        if not isinstance(rule, dict):
            continue
        owners = [(("rules", i), rule)] + [
            (("rules", i, "attestations", j), att)
            for j, att in enumerate(rule.get("attestations") or []) if isinstance(att, dict)]
        found.extend((where, owner["signedBy"]) for where, owner in owners
                     if isinstance(owner.get("signedBy"), dict))
    return found


def _apply(lines: list[str], edits: list[tuple[int, list[str], int]]) -> list[str]:
    out = list(lines)
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    for at, new, removed in sorted(edits, key=lambda e: e[0], reverse=True):
        out[at:at + removed] = new
    return out


def _compile(lines: list[str], path: Path) -> Policy:
    data = "".join(lines).encode("utf-8")
    try:
        return policy_from_bytes(data, source=str(path), base_dir=path.resolve().parent)
    except PolicyError as exc:
        raise PolicyError(f"the edited policy would not be valid, {path} is unchanged: "
                          f"{exc.message}", what="policy.edit", where=str(path)) from None


def _write_atomically(path: Path, lines: list[str]) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
