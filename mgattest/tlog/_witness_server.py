"""The witness over HTTP (C2SP tlog-witness): ``POST /add-checkpoint`` and the monitoring
read ``GET /<origin hash>/checkpoint``.

Protocol logic lives in :mod:`mgattest.tlog._witness`; this module maps its refusals to
HTTP responses (409 carries the last cosigned size as ``text/x.tlog.size``).
"""

from __future__ import annotations

import asyncio
import re

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mgattest.tlog._server import uvicorn_config
from mgattest.tlog._witness import MAX_REQUEST, SIZE_CONTENT_TYPE, Witness, WitnessRefusal

_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}")


async def _read_body(request: Request) -> bytes:
    received = bytearray()
    try:
        async for chunk in request.stream():
            received += chunk
            if len(received) > MAX_REQUEST:
                raise WitnessRefusal(413, f"request body exceeds {MAX_REQUEST} bytes")
    except ClientDisconnect:
        raise WitnessRefusal(400, "client disconnected before sending the whole body") from None
    return bytes(received)


def create_witness_app(witness: Witness) -> Starlette:
    """The ASGI app of ``witness``."""

    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _read_body(request)
            line = await asyncio.to_thread(witness.add_checkpoint, body)
        except WitnessRefusal as refusal:
            if refusal.status == 409 and refusal.size is not None:
                return Response(f"{refusal.size}\n", status_code=409,
                                media_type=SIZE_CONTENT_TYPE)
            return PlainTextResponse(refusal.message + "\n", status_code=refusal.status)
        return PlainTextResponse(line)

    async def checkpoint(request: Request) -> Response:
        origin_hex = request.path_params["origin_hash"]
        if not _ORIGIN_HASH.fullmatch(origin_hex):
            return PlainTextResponse("not found\n", status_code=404)
        note = await asyncio.to_thread(witness.latest_note, origin_hex)
        if note is None:
            return PlainTextResponse("no checkpoint cosigned for this log\n", status_code=404)
        return PlainTextResponse(note)

    return Starlette(routes=[
        Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
        Route("/{origin_hash}/checkpoint", checkpoint, methods=["GET"]),
    ])


def serve_witness(witness: Witness, *, host: str = "127.0.0.1", port: int = 3100,
                  log_level: str = "warning") -> None:
    """Run the witness with uvicorn until interrupted."""
    app = create_witness_app(witness)
    uvicorn.Server(uvicorn_config(app, host=host, port=port, log_level=log_level)).run()
