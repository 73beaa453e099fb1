"""Parse policy YAML into plain data while remembering where every value came from.

PyYAML's safe loader silently keeps the last of duplicate keys, expands aliases
(billion-laughs), and turns ``2027-01-01`` into a ``datetime``. A policy file must be
unambiguous, so this module composes the node graph itself: duplicate keys, aliases
and merge keys are errors, every node must carry its standard tag (a tag such as
``!!python/object/apply:os.system`` on a sequence or mapping is refused like one on a
scalar), mapping keys must be strings, scalars resolve only to str/int/float/bool/null,
and every value's location is recorded as ``path -> line`` for error messages
(``policy.yaml:12``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from mgattest.policy.errors import PolicyError

MAX_POLICY_BYTES = 1 << 20
MAX_NODES = 50_000
MAX_DEPTH = 64

Path = tuple[Any, ...]


@dataclass
class Located:
    """Plain data plus a map from JSON path (tuple of keys/indices) to 1-based line."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    file: str = "<policy>"

    def where(self, path: Path) -> str:
        """``file:line`` of the value at *path* (or of its nearest located parent)."""
        p = tuple(path)
        while p and p not in self.lines:
            p = p[:-1]
        return f"{self.file}:{self.lines.get(p, 1)}"


_LOADER = yaml.SafeLoader
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"


def parse_yaml(text: str | bytes, file: str = "<policy>") -> Located:
    """Parse one YAML document into :class:`Located` data; raise PolicyError on any problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_POLICY_BYTES:
            raise PolicyError(f"policy file is larger than {MAX_POLICY_BYTES} bytes",
                              what="policy.size", where=file)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(f"policy file is not UTF-8 (byte {exc.start})",
                              what="policy.encoding", where=file) from None
    depth = _max_flow_depth(text)
    if depth > MAX_DEPTH:
        raise PolicyError(f"policy nests deeper than {MAX_DEPTH} levels", what="policy.size",
                          where=f"{file}:1")
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except RecursionError:
        raise PolicyError(f"policy nests deeper than {MAX_DEPTH} levels", what="policy.size",
                          where=f"{file}:1") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"invalid YAML: {problem}", what="policy.yaml",
                          where=f"{file}:{line}") from None
    if len(nodes) != 1 or nodes[0] is None:
        raise PolicyError("a policy file must hold exactly one YAML document",
                          what="policy.yaml", where=f"{file}:1")
    located = Located(data=None, file=file)
    counter = [0]
    located.data = _build(nodes[0], (), located, set(), counter)
    return located


def _max_flow_depth(text: str) -> int:
    """Deepest bracket nesting (a cheap upper bound before the recursive composer runs;
    brackets inside quoted strings only make it conservative)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}" and depth:
            depth -= 1
    return deepest


def _build(node: yaml.Node, path: Path, located: Located, seen: set[int],
           counter: list[int]) -> Any:
    if len(path) > MAX_DEPTH:
        raise PolicyError(f"policy nests deeper than {MAX_DEPTH} levels", what="policy.size",
                          where=f"{located.file}:{node.start_mark.line + 1}")
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise PolicyError(f"policy has more than {MAX_NODES} YAML nodes", what="policy.size",
                          where=located.where(path))
    line = node.start_mark.line + 1
    if id(node) in seen:  # the same node reached twice: an alias
        raise PolicyError("YAML aliases/anchors are not allowed in policy files",
                          what="policy.yaml", where=f"{located.file}:{line}")
    seen.add(id(node))
    located.lines[path] = line
    _check_collection_tag(node, located.file, line)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            _check_key(key_node, located.file)
            key = key_node.value
            if key in out:
                raise PolicyError(f"duplicate key {key!r}", what="policy.yaml",
                                  where=f"{located.file}:{key_node.start_mark.line + 1}")
            out[key] = _build(value_node, path + (key,), located, seen, counter)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), located, seen, counter)
                for i, item in enumerate(node.value)]
    return _scalar(cast(yaml.ScalarNode, node), located.file, line)  # the only other kind


def _check_collection_tag(node: yaml.Node, file: str, line: int) -> None:
    """A mapping or sequence must carry its standard tag: ``!!python/...``, ``!!set``,
    ``!!omap`` or a local ``!tag`` would change what the node means to other loaders."""
    tags: dict[type[yaml.Node], str] = {yaml.MappingNode: _MAP_TAG, yaml.SequenceNode: _SEQ_TAG}
    expected = tags.get(type(node))
    if expected is not None and node.tag != expected:
        raise PolicyError(f"unsupported YAML tag {node.tag}", what="policy.yaml",
                          where=f"{file}:{line}")


def _check_key(key_node: yaml.Node, file: str) -> None:
    """Mapping keys are plain strings: no merge key, no collection, no ``1:``/``true:``
    that another loader would read as a number or a boolean."""
    where = f"{file}:{key_node.start_mark.line + 1}"
    if key_node.tag == "tag:yaml.org,2002:merge":
        raise PolicyError("YAML merge keys (<<) are not allowed in policy files",
                          what="policy.yaml", where=where)
    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
        raise PolicyError("mapping keys must be plain strings (quote a key such as "
                          "'1' or 'true')", what="policy.yaml", where=where)


def _scalar(node: yaml.ScalarNode, file: str, line: int) -> Any:
    tag = node.tag
    value = node.value
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() in ("true", "yes", "on")
    if tag == "tag:yaml.org,2002:int":
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return value
    if tag == "tag:yaml.org,2002:float":
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    if tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:timestamp"):
        return value  # timestamps stay strings; the model parses them strictly
    raise PolicyError(f"unsupported YAML tag {tag}", what="policy.yaml", where=f"{file}:{line}")
