"""Serve predictions from a verified model; answer 503 as soon as it is tampered with.

Configuration (environment variables):

    MGATTEST_MODEL     model file (.npy weights vector: prediction = x . w)    [required]
    MGATTEST_POLICY    policy file     } verify with the policy engine and bundle(s)
    MGATTEST_BUNDLE    bundle path(s), separated by os.pathsep
    MGATTEST_KEY       trusted public key (no policy file: a policy trusting this key)
    MGATTEST_MANIFEST  JSON {file name: sha256} - the simplest check, no signatures
    MGATTEST_REHASH    seconds between full re-hashes (default 30)

Run:  MGATTEST_MODEL=w.npy MGATTEST_MANIFEST=w.json uvicorn serve_fastapi:app --port 8000

What is served is what was verified: every check reads the model once into memory
(``mgattest.loading.read_model_bytes``), verifies *those* bytes, and the weights are loaded
from them - never by reading the file a second time, which a racer could swap in
between. Each later check also compares the bytes it verified with the ones being
served, so "healthy" means "the verified model on disk is the one in memory". Clients
get a generic 503; the reason (paths, digests) goes to the server log only.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from mgattest._text import escape_text
from mgattest.errors import VerificationError
from mgattest.inspect import restricted_numpy_load
from mgattest.loading import ModelBytes, Sentry, manifest_verifier, read_model_bytes

MODEL = Path(os.environ["MGATTEST_MODEL"])
log = logging.getLogger("serve_fastapi")


def build_verify() -> Callable[[str], ModelBytes]:
    """A callable that reads the model once, verifies those bytes and returns them."""
    if os.environ.get("MGATTEST_MANIFEST"):
        manifest = json.loads(Path(os.environ["MGATTEST_MANIFEST"]).read_text())
        return manifest_verifier(manifest, MODEL)
    from mgattest.policy import (ModelVerifier, ShortcutOptions, VerifyOptions,
                                 effective_policy, load_policy)

    bundles = [b for b in os.environ.get("MGATTEST_BUNDLE", "").split(os.pathsep) if b]
    if os.environ.get("MGATTEST_POLICY"):
        policy = load_policy(os.environ["MGATTEST_POLICY"])
    else:
        policy = effective_policy(None, ShortcutOptions(keys=(os.environ["MGATTEST_KEY"],)))
    verifier = ModelVerifier(policy, options=VerifyOptions(bundles=tuple(bundles)))

    def verify(path: str) -> ModelBytes:
        model = read_model_bytes(path, exclude=bundles)
        verdict = verifier.verify(model).verdict
        if verdict is None or not verdict.allowed:
            raise VerificationError("; ".join(verdict.reasons[:3]) if verdict else "no verdict")
        return model
    return verify


served: dict[str, Any] = {}  # "weights" and "sha256" of the model being served
_verify = build_verify()


def verify_served(path: str) -> ModelBytes:
    """Verify the model at ``path``; once serving, it must be the model being served."""
    model = _verify(path)
    if "sha256" in served and model.sha256 != served["sha256"]:
        raise VerificationError("the verified model on disk is not the one being served")
    return model


def weights_from(model: ModelBytes) -> Any:
    """Load the weights from the verified in-memory bytes (restricted numpy loader)."""
    (data,) = model.files.values()
    return restricted_numpy_load(bytes(data))


sentry = Sentry(MODEL, verify_served,
                rehash_interval=float(os.environ.get("MGATTEST_REHASH", "30")))


@asynccontextmanager
async def lifespan(_app: FastAPI):
    status = sentry.start()
    verified = sentry.last_verified
    if status.healthy and verified is not None:
        served["weights"], served["sha256"] = weights_from(verified), dict(verified.sha256)
    yield
    sentry.stop()


app = FastAPI(title="mgattest-guarded model", lifespan=lifespan)


class Features(BaseModel):
    x: list[float]


def _require_healthy() -> None:
    status = sentry.status()
    if not status.healthy or "weights" not in served:
        # Details (paths, digests, rule ids) are for the operator, not for any client.
        log.error("refusing to serve %s: %s", escape_text(MODEL),
                  escape_text(status.reason or "model not loaded"))
        raise HTTPException(status_code=503, detail={"status": "compromised",
                                                     "reason": "model failed verification"})


@app.get("/healthz")
def healthz() -> dict:
    _require_healthy()
    return {"status": "healthy"}


@app.post("/predict")
def predict(features: Features) -> dict:
    _require_healthy()
    weights = served["weights"]
    if len(features.x) != len(weights):
        raise HTTPException(status_code=422, detail=f"expected {len(weights)} features")
    return {"y": float(sum(a * b for a, b in zip(features.x, weights.tolist())))}
