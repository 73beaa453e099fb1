"""A strict parser of the Mermaid flowchart subset ``mgattest provenance`` emits.

Grammar (one statement per line, four-space indent after the header)::

    flowchart TD
        ID["LABEL"]                      node; LABEL: no '"', no raw '<' except <br/>
        ID -->|"TEXT"| ID                edge between declared nodes
        classDef NAME STYLE              STYLE: prop:value(,prop:value)*
        class ID(,ID)* NAME              NAME declared by classDef

Anything else is an error. Returns the nodes, edges and classes so tests can compare
them with the JSON output. The real Mermaid parser (``mermaid.parse`` under jsdom) is
run as well when ``tests/lineage/js/node_modules`` is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ID = r"n[0-9]+"
_TEXT = r'(?:[^"<#]|#[0-9]+;|<br/>)*'
_NODE = re.compile(rf'^    ({_ID})\["({_TEXT})"\]$')
_EDGE = re.compile(rf'^    ({_ID}) -->\|"({_TEXT})"\| ({_ID})$')
_CLASSDEF = re.compile(r"^    classDef ([a-z]+) ([a-z-]+:[^,\s;]+(?: [^,\s;]+)*"
                       r"(?:,[a-z-]+:[^,\s;]+(?: [^,\s;]+)*)*)$")
_CLASS = re.compile(rf"^    class ({_ID}(?:,{_ID})*) ([a-z]+)$")


@dataclass
class Flowchart:
    nodes: dict[str, str] = field(default_factory=dict)  # id → label text
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (from, label, to)
    class_defs: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)  # node id → class name


def parse_flowchart(text: str) -> Flowchart:
    """Parse *text* or raise ``ValueError`` naming the offending line."""
    lines = text.rstrip("\n").split("\n")
    if lines[0] != "flowchart TD":
        raise ValueError(f"line 1: expected 'flowchart TD', got {lines[0]!r}")
    chart = Flowchart()
    for number, line in enumerate(lines[1:], start=2):
        if m := _NODE.match(line):
            if m.group(1) in chart.nodes:
                raise ValueError(f"line {number}: node {m.group(1)} declared twice")
            chart.nodes[m.group(1)] = m.group(2)
        elif m := _EDGE.match(line):
            for end in (m.group(1), m.group(3)):
                if end not in chart.nodes:
                    raise ValueError(f"line {number}: edge to undeclared node {end}")
            chart.edges.append((m.group(1), m.group(2), m.group(3)))
        elif m := _CLASSDEF.match(line):
            chart.class_defs[m.group(1)] = m.group(2)
        elif m := _CLASS.match(line):
            if m.group(2) not in chart.class_defs:
                raise ValueError(f"line {number}: class {m.group(2)} has no classDef")
            for node in m.group(1).split(","):
                if node not in chart.nodes or node in chart.classes:
                    raise ValueError(f"line {number}: {node} undeclared or classed twice")
                chart.classes[node] = m.group(2)
        else:
            raise ValueError(f"line {number}: not in the flowchart grammar: {line!r}")
    return chart
