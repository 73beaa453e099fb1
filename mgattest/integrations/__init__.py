"""mgattest.integrations: load models with their own libraries, only from verified bytes.

Each public module wraps one library's path-based loader: the model is verified into a
private, read-only copy (:func:`mgattest.loading.materialise`), the library reads only
that copy, and the copy is removed once it has loaded::

    mgattest.integrations.transformers.from_pretrained(cls, model, *, policy, bundles, ...)
    mgattest.integrations.safetensors.load_file(model, *, policy, bundles, ...)
    mgattest.integrations.torch.load(model, *, policy, bundles, ...)

The libraries are optional (``pip install 'mgattest[hf]'`` for transformers and
tokenizers): importing this package imports none of them. Typed errors live in the
public module :mod:`mgattest.integrations.errors`; modules whose names start with ``_``
are internal. Coverage and limits: docs/layouts/transformers.md.
"""

from __future__ import annotations

__all__: list[str] = []
