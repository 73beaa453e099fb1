"""Serve predictions from a verified model; answer 503 as soon as it is tampered with.

Configuration (environment variables):

    MGATTEST_MODEL     model file (.npy weights vector: prediction = x . w)    [required]
    MGATTEST_POLICY    policy file     } verify with the policy engine and bundle(s)
    MGATTEST_BUNDLE    bundle path(s), separated by os.pathsep
    MGATTEST_KEY       trusted public key (key-mode bundles, no policy)
    MGATTEST_MANIFEST  JSON {file name: sha256} - the simplest check, no signatures
    MGATTEST_REHASH    seconds between full re-hashes (default 30)

Run:  MGATTEST_MODEL=w.npy MGATTEST_MANIFEST=w.json uvicorn serve_fastapi:app --port 8000
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from mgattest.inspect.restricted import restricted_numpy_load
from mgattest.load.watch import Sentry, manifest_verifier

MODEL = Path(os.environ["MGATTEST_MODEL"])


def build_verify():
    """The verify callable the Sentry re-runs on every change."""
    if os.environ.get("MGATTEST_MANIFEST"):
        manifest = json.loads(Path(os.environ["MGATTEST_MANIFEST"]).read_text())
        return manifest_verifier(manifest, MODEL)
    bundles = [b for b in os.environ.get("MGATTEST_BUNDLE", "").split(os.pathsep) if b]
    if os.environ.get("MGATTEST_POLICY"):
        from mgattest.errors import VerificationError
        from mgattest.load import read_model_bytes, verify_model_bytes
        from mgattest.policy.loader import load_policy

        policy = load_policy(os.environ["MGATTEST_POLICY"])

        def verify(path: str) -> None:
            verdict = verify_model_bytes(read_model_bytes(path), policy, bundles)
            if not verdict.allowed:
                raise VerificationError("; ".join(verdict.reasons[:3]))
        return verify
    from mgattest.attest.verify import verify_model

    keys = [os.environ["MGATTEST_KEY"]] if os.environ.get("MGATTEST_KEY") else None
    return lambda path: verify_model(path, bundles or None, keys=keys)


def load_weights():
    """Load the weights from the bytes we hash, through the restricted numpy loader."""
    data = MODEL.read_bytes()
    return restricted_numpy_load(data), hashlib.sha256(data).hexdigest()


sentry = Sentry(MODEL, build_verify(), rehash_interval=float(os.environ.get("MGATTEST_REHASH",
                                                                              "30")))
state: dict = {}


@asynccontextmanager
async def lifespan(_app: FastAPI):
    status = sentry.start()
    if status.healthy:
        state["weights"], state["sha256"] = load_weights()
    yield
    sentry.stop()


app = FastAPI(title="mgattest-guarded model", lifespan=lifespan)


class Features(BaseModel):
    x: list[float]


def _require_healthy() -> None:
    status = sentry.status()
    if not status.healthy or "weights" not in state:
        raise HTTPException(status_code=503, detail={"status": "compromised",
                                                     "reason": status.reason})


@app.get("/healthz")
def healthz() -> dict:
    _require_healthy()
    return {"status": "healthy", "model": str(MODEL), "sha256": state["sha256"]}


@app.post("/predict")
def predict(features: Features) -> dict:
    _require_healthy()
    weights = state["weights"]
    if len(features.x) != len(weights):
        raise HTTPException(status_code=422, detail=f"expected {len(weights)} features")
    return {"y": float(sum(a * b for a, b in zip(features.x, weights.tolist())))}
