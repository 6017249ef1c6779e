"""How Procountor words a refusal, read for the shared HTTP classifier (``connectors.http``).

Errors come as ``{"errors": [{"status", "field", "message"}]}``. Besides the shared
reading of each status, Procountor has two refusals of its own: a 403 for a test
company or a blocked user group (a person must act), and a 409 for a versioned
update whose version is stale (nothing was written; retried after reading again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from connectors.base import ConnectorError, NeedsPersonError, TransientError, decode_json
from connectors.http import Refusal


def refusal_text(resp: httpx.Response) -> tuple[str, str | None]:
    """``field: message; ...`` of Procountor's ``errors`` list, and the first field."""
    errors = _errors(resp)
    text = "; ".join(_error_text(e) for e in errors)
    return text, next((str(e.get("field")) for e in errors if e.get("field")), None)


def own_failure(resp: httpx.Response, refusal: Refusal, write: bool) -> ConnectorError | None:
    """Procountor's own 4xx: a test company or blocked group (403), a version conflict (409)."""
    if refusal.status == 403:
        lowered = refusal.text.lower()
        if "test" in lowered:
            code = "test_company"
        elif "block" in lowered:
            code = "blocked_group"
        else:
            code = "forbidden"
        text = refusal.text or "Procountor denied access (403)."
        return NeedsPersonError(text, code=code, field=refusal.field)
    if refusal.status == 409:
        # The version we read is stale: Procountor wrote nothing. Retry (re-reading it).
        return TransientError(
            refusal.text or "The receipt changed in Procountor while it was updated.",
            code="conflict",
            field=refusal.field,
            nothing_written=True,
        )
    return None


def _errors(resp: httpx.Response) -> list[dict[str, Any]]:
    try:
        data = decode_json(resp.text)
    except ValueError:
        return []
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _error_text(error: Mapping[str, Any]) -> str:
    """``field: message`` as Procountor words it."""
    field, message = error.get("field"), str(error.get("message") or "").strip()
    return f"{field}: {message}" if field else message
