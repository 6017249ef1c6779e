"""``POST /api/v1/events``: documents in from source systems (CONTRACT.md "Ingest")."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from bot.runtime import Runtime
from sync.documents import FieldError, validate_batch
from sync.ingest import IngestRejected, ingest_batch
from sync.intake import NestedTooDeeply, read_json

MAX_BODY = 5 * 1024 * 1024
RUNTIME = web.AppKey("runtime", Runtime)


def bearer_ok(request: web.Request, runtime: Runtime) -> web.Response | None:
    """``None`` when the bearer token is right, else the answer to send."""
    token = runtime.env.ledgerops_ingest_token
    if token is None:
        return web.json_response({"error": "LEDGEROPS_INGEST_TOKEN is not set on the server"}, status=503)
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return web.json_response(
            {"error": "missing or wrong bearer token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )
    return None


def errors_response(errors: list[FieldError]) -> web.Response:
    return web.json_response({"errors": [e.model_dump() for e in errors]}, status=400)


def parse_json(raw: bytes | str) -> Any:
    """JSON with numbers as ``Decimal`` and repeated keys marked (:func:`sync.intake.read_json`)."""
    return read_json(raw)


async def post_events(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if (refusal := bearer_ok(request, runtime)) is not None:
        return refusal
    if request.content_length is not None and request.content_length > MAX_BODY:
        return web.json_response({"error": "request body over 5 MB"}, status=413)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"error": "request body over 5 MB"}, status=413)
    try:
        body = parse_json(raw)
    except NestedTooDeeply as exc:
        return errors_response([FieldError(index=None, field="(body)", message=str(exc))])
    except (ValueError, UnicodeDecodeError) as exc:
        return errors_response([FieldError(index=None, field="(body)", message=f"not valid JSON: {exc}")])
    events, errors = validate_batch(body, set(runtime.engine.integrations))
    if errors:
        return errors_response(errors)
    try:
        result = await ingest_batch(runtime.engine, events)
    except IngestRejected as exc:
        return errors_response(exc.errors)
    return web.json_response({"accepted": result.accepted, "stale": result.stale}, status=202)
