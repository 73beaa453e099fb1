"""Does loading this verified copy run model code, and does the policy allow it?

transformers runs code from a model directory when a config names a class through
``auto_map`` (``"AutoModel": "modeling_x.XModel"``) or ``custom_pipelines``, importing
``modeling_x.py`` from the directory (``trust_remote_code=True``). The answer is:

* no ``*.py`` file and no such reference → no code runs (``trust_remote_code=False``);
* otherwise every ``*.py`` file in the copy must be cleared as code by the verdict
  (``Clearance.code``: every rule that judged it lists its digest in
  ``content.remoteCode.allow``), and every reference must name one of those files —
  never another repository (``org/repo--module.Class``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from mgattest.integrations.errors import RemoteCodeDenied
from mgattest.loading import MaterialisedModel
from mgattest.policy import is_model_code

def remote_code_allowed(model: MaterialisedModel) -> bool:
    """True when the copy has code the policy allows (pass ``trust_remote_code=True``),
    False when it has none; raises :class:`RemoteCodeDenied` naming the file and the
    cause otherwise."""
    code_files = [name for name in model.files if is_model_code(name)]
    references = list(_code_references(model))
    if not code_files and not references:
        return False
    verdict = model.outcome.verdict
    clearance = verdict.clearance if verdict else {}
    for name in code_files:
        cleared = clearance.get(name)
        if cleared is None or not cleared.code:
            raise RemoteCodeDenied(
                f"model code {name} ({model.files[name]}) would run with trust_remote_code, "
                "and the policy does not allow it: list that digest in content.remoteCode."
                "allow of every rule matching the file", what="remote code", where=name)
    for source, reference in references:
        module_file = _module_file(source, reference)
        if module_file not in model.files:
            why = model.left_out.get(module_file, "the model does not contain it")
            raise RemoteCodeDenied(f"{source} names code in {module_file} ({reference}), "
                                   f"which is not in the verified copy: {why}",
                                   what="remote code", where=source)
    return True


def _module_file(source: str, reference: str) -> str:
    """``modeling_x.XModel`` → ``modeling_x.py`` beside *source*; a reference into
    another repository (``org/repo--modeling_x.XModel``) is refused."""
    if "--" in reference or "/" in reference:
        raise RemoteCodeDenied(f"{source} names code in another repository ({reference}); "
                               "only code inside the verified model may run",
                               what="remote code", where=source)
    module = reference.rsplit(".", 1)[0]
    folder = os.path.dirname(source)
    return (f"{folder}/" if folder else "") + module.replace(".", "/") + ".py"


def _code_references(model: MaterialisedModel) -> Iterator[tuple[str, str]]:
    """Every (json file, "module.Class") a config of the copy names as code."""
    for name in model.files:
        if not name.endswith(".json"):
            continue
        with open(os.path.join(model.root, name), "rb") as fh:
            try:
                document = json.loads(fh.read())
            except (ValueError, UnicodeDecodeError):
                continue  # transformers cannot read it as a config either
        if not isinstance(document, dict):
            continue
        for reference in _strings(document.get("auto_map")):
            yield name, reference
        pipelines = document.get("custom_pipelines")
        for task in pipelines.values() if isinstance(pipelines, dict) else ():
            if isinstance(task, dict):
                for reference in _strings(task.get("impl")):
                    yield name, reference


def _strings(value: object) -> Iterator[str]:
    """Every string inside *value* (an ``auto_map`` maps a class to a reference or a
    list of them, e.g. ``[slow tokenizer, fast tokenizer]``)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
