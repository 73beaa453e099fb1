"""transformers' ``from_pretrained``, reading only a verified copy of the model.

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from mgattest.integrations.transformers import from_pretrained

    model = from_pretrained(AutoModelForCausalLM, "models/tiny", policy="policy.yaml",
                            bundles=["tiny.sigstore.json"])
    tokenizer = from_pretrained(AutoTokenizer, "models/tiny", policy="policy.yaml",
                                bundles=["tiny.sigstore.json"])

The model is verified into a private, read-only copy (:func:`mgattest.loading.materialise`;
only the files the verdict clears are in it), transformers is called on that copy with
``local_files_only=True``, and the copy is removed once it returns. Model code
(``*.py``, ``auto_map``) runs only when the policy allows its exact digest
(``content.remoteCode.allow``). Coverage and limits: docs/layouts/transformers.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Callable, Protocol, TypeVar

from mgattest._optional import require
from mgattest.errors import InputError
from mgattest.integrations._options import check_loader_kwargs
from mgattest.integrations._remote_code import remote_code_allowed
from mgattest.integrations.errors import UnsafeLoaderOption
from mgattest.loading import materialise
from mgattest.policy import Policy, TrustOptions

__all__ = ["from_pretrained"]

_ADAPTER_CONFIG = "adapter_config.json"

_Loaded = TypeVar("_Loaded", covariant=True)


class PretrainedLoader(Protocol[_Loaded]):
    """Anything with transformers' ``from_pretrained(path, **kwargs)``: ``AutoModel*``,
    ``AutoTokenizer``, ``AutoConfig``, a model or tokenizer class, a processor."""

    def from_pretrained(self, pretrained_model_name_or_path: str, /,
                        *args: Any, **kwargs: Any) -> _Loaded:
        """Load from a local directory."""


def from_pretrained(cls: PretrainedLoader[_Loaded], model: str | os.PathLike[str], *,
                    policy: Policy | str | os.PathLike[str],
                    bundles: Iterable[str | os.PathLike[str]],
                    trust: TrustOptions | None = None,
                    workdir: str | os.PathLike[str] | None = None,
                    on_copied: Callable[[str], None] | None = None,
                    **kwargs: Any) -> _Loaded:
    """Verify *model* (a directory) against *policy* and *bundles* into a private copy,
    then return ``cls.from_pretrained(copy, local_files_only=True,
    trust_remote_code=<policy's decision>, **kwargs)``.

    Raises :class:`~mgattest.policy.errors.PolicyDenied` when the policy denies,
    :class:`~mgattest.integrations.errors.RemoteCodeDenied` when the model carries code
    the policy does not allow, :class:`~mgattest.integrations.errors.UnsafeLoaderOption`
    for a keyword that would read unverified bytes (``revision``, ``cache_dir``,
    ``token``, paths ...). ``trust_remote_code=False`` declines code the policy allows;
    ``trust_remote_code=True`` is refused unless the policy allows the model's code.
    *workdir* holds the private copy (default: the system temporary directory);
    *on_copied(name)* is called after each file is copied.
    """
    require("transformers", "mgattest.integrations.transformers")
    requested = kwargs.pop("trust_remote_code", None)
    check_loader_kwargs(kwargs)
    with materialise(model, policy=policy, bundles=bundles, trust=trust, workdir=workdir,
                     on_copied=on_copied) as copy:
        if copy.single_file:
            raise InputError(f"{os.fspath(model)} is a file; from_pretrained loads a model "
                             "directory", what="model path", where=os.fspath(model))
        _refuse_adapters(copy.files)
        allowed = remote_code_allowed(copy)
        if requested and not allowed:
            raise UnsafeLoaderOption("trust_remote_code=True is refused: the model has no "
                                     "code the policy allows (content.remoteCode.allow)",
                                     what="loader option", where="trust_remote_code")
        run_code = allowed and requested is not False
        return cls.from_pretrained(copy.path, local_files_only=True,
                                   trust_remote_code=run_code, **kwargs)


def _refuse_adapters(files: Iterable[str]) -> None:
    """A PEFT adapter (``adapter_config.json``) makes transformers load the base model
    its ``base_model_name_or_path`` names: bytes outside the verified copy."""
    for name in files:
        if name.rsplit("/", 1)[-1] == _ADAPTER_CONFIG:
            raise InputError(f"{name} makes transformers load the adapter's base model from "
                             "outside the verified copy; load the base model through "
                             "mgattest and apply the adapter yourself",
                             what="adapter", where=name)
