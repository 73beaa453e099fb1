"""Keyword arguments a loader may receive: none that reopens the gap between the
verified copy and what the library reads."""

from __future__ import annotations

import os
from collections.abc import Mapping

from mgattest.integrations.errors import UnsafeLoaderOption

# Keyword → why it is refused. Each would make the loader fetch or read bytes other
# than the verified copy, or take the decision the policy makes.
REFUSED: Mapping[str, str] = {
    "pretrained_model_name_or_path": "the model is the verified copy",
    "revision": "the verified copy has one revision: the one verified",
    "code_revision": "the verified copy has one revision: the one verified",
    "_commit_hash": "the verified copy has one revision: the one verified",
    "cache_dir": "files are read from the verified copy, never from a cache",
    "force_download": "nothing is downloaded: files are read from the verified copy",
    "resume_download": "nothing is downloaded: files are read from the verified copy",
    "local_files_only": "always True: files are read from the verified copy",
    "token": "nothing is downloaded: files are read from the verified copy",
    "use_auth_token": "nothing is downloaded: files are read from the verified copy",
    "proxies": "nothing is downloaded: files are read from the verified copy",
    "mirror": "nothing is downloaded: files are read from the verified copy",
    "state_dict": "weights come from the verified copy, not from memory",
    "from_tf": "only the verified copy's own weight files are read",
    "from_flax": "only the verified copy's own weight files are read",
    "adapter_kwargs": "an adapter names a base model outside the verified copy",
    "adapter_name": "an adapter names a base model outside the verified copy",
    "custom_pipeline": "pipeline code comes only from the verified copy, allowed by the policy",
    "custom_revision": "pipeline code comes only from the verified copy, allowed by the policy",
    "weights_only": "always True: pickled weights are read only through torch's weights-only "
                    "unpickler",
}

# Keywords naming a file or folder inside the model: allowed when they stay inside it.
INSIDE_MODEL = frozenset({"subfolder", "gguf_file"})

_PATH_SUFFIXES = ("_file", "_path", "_dir", "_folder")


def check_loader_kwargs(kwargs: Mapping[str, object]) -> None:
    """Refuse keyword arguments that would let the loader read unverified bytes.

    Refused: the names in :data:`REFUSED`; any keyword naming a file or folder
    (``*_file``, ``*_path``, ``*_dir``, ``*_folder``, an ``os.PathLike`` value, a string
    with a path separator, ``config`` given as a path) except ``subfolder`` and
    ``gguf_file`` naming a relative path inside the model.
    """
    for key, value in kwargs.items():
        if key in REFUSED:
            raise UnsafeLoaderOption(f"{key}= is not accepted: {REFUSED[key]}",
                                     what="loader option", where=key)
        if key in INSIDE_MODEL:
            _check_inside(key, value)
            continue
        names_path = (key.endswith(_PATH_SUFFIXES) or isinstance(value, os.PathLike)
                      or (isinstance(value, str) and ("/" in value or os.sep in value))
                      or (key == "config" and isinstance(value, (str, bytes))))
        if names_path and value is not None:
            raise UnsafeLoaderOption(
                f"{key}= names a file or folder, which the loader would read without "
                "verification; put it in the model, sign it and load it from there",
                what="loader option", where=key)


def _check_inside(key: str, value: object) -> None:
    """*value* must be a relative path that stays inside the model directory."""
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise UnsafeLoaderOption(f"{key}= must be a relative path inside the model",
                                 what="loader option", where=key)
    parts = value.replace(os.sep, "/").split("/")
    if value.startswith(("/", os.sep)) or ".." in parts or os.path.isabs(value):
        raise UnsafeLoaderOption(f"{key}={value!r} leaves the model directory",
                                 what="loader option", where=key)
