"""``python app.py connect <integration>``: link an Exact Online administration once.

Exact Online only hands out refresh tokens through the authorization-code flow,
so a person signs in once: this module starts a callback server on 127.0.0.1,
prints the address to open, exchanges the code it receives for tokens, asks
Exact which administration (division) the login chose (``/api/v1/current/Me``)
and stores the refresh token through the integration's token store, encrypted in
the database. One administration per integration: a login that chose another
division than the one configured (or linked before) is refused and nothing is
stored.

The redirect URI registered for the Exact app must be
``http://127.0.0.1:<port>/exact/callback`` (default port 8765).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from aiohttp import web

from sync.config import ExactKeys, IntegrationConfig, resolve_secret

DEFAULT_BASE_URL = "https://start.exactonline.nl"
DEFAULT_PORT = 8765
CALLBACK_PATH = "/exact/callback"


class ConnectError(Exception):
    """Linking failed or was refused; the message says why, in plain words."""


class _Store(Protocol):
    async def get(self, name: str) -> str | None: ...

    async def set(self, name: str, value: str, detail: dict[str, Any] | None = None) -> None: ...


_PAGE = """<!doctype html><meta charset="utf-8"><title>ledgerops</title>
<body style="font-family:sans-serif"><h1>{title}</h1><p>{text}</p></body>"""


async def _wait_for_code(
    port: int, state: str, wait_seconds: float, on_ready: Callable[[str], None]
) -> tuple[str, str]:
    """Serve the callback; returns (code, redirect_uri) once the browser comes back."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[str] = loop.create_future()

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        if q.get("state") != state:
            # Another (old) tab: ignore it and keep waiting for ours.
            return web.Response(
                status=400,
                content_type="text/html",
                text=_PAGE.format(
                    title="Unknown sign-in",
                    text="This answer does not belong to the running <code>connect</code> command.",
                ),
            )
        if "error" in q and not result.done():
            reason = q.get("error_description") or q["error"]
            result.set_exception(
                ConnectError(f"Exact Online did not authorize ledgerops: {reason.rstrip('.')}.")
            )
        elif q.get("code") and not result.done():
            result.set_result(q["code"])
        return web.Response(
            content_type="text/html",
            text=_PAGE.format(title="Signed in", text="You can close this tab and return to the terminal."),
        )

    app = web.Application()
    app.router.add_get(CALLBACK_PATH, callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        actual = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        redirect_uri = f"http://127.0.0.1:{actual}{CALLBACK_PATH}"
        on_ready(redirect_uri)
        try:
            code = await asyncio.wait_for(result, wait_seconds)
        except TimeoutError:
            raise ConnectError(
                f"No sign-in arrived within {int(wait_seconds)} seconds; run the command again."
            ) from None
        return code, redirect_uri
    finally:
        await runner.cleanup()


async def connect_exact(
    cfg: IntegrationConfig,
    token_store: _Store,
    *,
    open_url_printer: Callable[[str], Any] = print,
    port: int = DEFAULT_PORT,
    wait_seconds: float = 300.0,
    environ: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """Link ``cfg`` (an ``exact`` integration) to one Exact Online administration.

    Prints (through ``open_url_printer``) the address to open, waits for the
    browser to come back to the local callback, exchanges the code, checks the
    administration and stores the refresh token (and division) in
    ``token_store``. Returns the sentence to show, e.g. "Linked exact-nl to Exact
    Online administration 101 (Books B.V.)". Raises :class:`ConnectError` when it
    is refused or fails; secrets never appear in any message.
    """
    keys = _exact_keys(cfg)
    client_id, client_secret = _client_credentials(cfg, keys, environ)
    base = (keys.base_url or DEFAULT_BASE_URL).rstrip("/")
    state = secrets.token_urlsafe(16)

    def announce(redirect_uri: str) -> None:
        open_url_printer(
            f"Open this address in a browser and sign in to the Exact Online administration for {cfg.name}:"
        )
        open_url_printer(_sign_in_address(base, client_id, redirect_uri, state))

    code, redirect_uri = await _wait_for_code(port, state, wait_seconds, announce)
    async with httpx.AsyncClient(base_url=base, timeout=30.0, transport=transport) as http:
        tokens = await _exchange_code(
            http,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        me = await _chosen_administration(http, str(tokens["access_token"]))
    division = int(me["CurrentDivision"])
    label = str(me.get("DivisionCustomerName") or "").strip()
    await _check_one_administration(cfg, keys, token_store, division, label)
    detail = {
        "division": division,
        "administration": label,
        "linked_at": datetime.now(UTC).isoformat(),
        "linked_by": me.get("FullName"),
    }
    # The refresh token first: it is the one secret that cannot be had again without a person.
    await token_store.set("refresh_token", str(tokens["refresh_token"]), detail)
    await token_store.set("division", str(division), detail)
    return f"Linked {cfg.name} to Exact Online administration {_administration(division, label)}."


def _exact_keys(cfg: IntegrationConfig) -> ExactKeys:
    """The Exact keys of ``cfg``; refused for other kinds."""
    if not isinstance(cfg.connector, ExactKeys):
        raise ConnectError(f"{cfg.name} is a {cfg.kind} integration; only exact needs connect.")
    return cfg.connector


def _client_credentials(
    cfg: IntegrationConfig, keys: ExactKeys, environ: Mapping[str, str] | None
) -> tuple[str, str]:
    """The Exact app's client id and secret for ``cfg``; refused when missing."""
    env = dict(environ) if environ is not None else None
    client_id = resolve_secret(keys.client_id, f"integrations[{cfg.name}].client_id", env)
    client_secret = resolve_secret(keys.client_secret, f"integrations[{cfg.name}].client_secret", env)
    if not client_id or not client_secret:
        raise ConnectError(f"integrations[{cfg.name}] needs client_id and client_secret.")
    return client_id, client_secret


def _sign_in_address(base: str, client_id: str, redirect_uri: str, state: str) -> str:
    """Exact Online's sign-in page, asking for a code sent back to our callback."""
    query = urlencode(
        {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "state": state,
            "force_login": "0",
        }
    )
    return f"{base}/api/oauth2/auth?{query}"


async def _exchange_code(http: httpx.AsyncClient, form: dict[str, str]) -> dict[str, Any]:
    """The tokens for the sign-in's code (``/api/oauth2/token``)."""
    resp = await http.post("/api/oauth2/token", data=form)
    if resp.status_code != 200:
        reason = _oauth_error(resp)
        raise ConnectError(f"Exact Online refused the sign-in ({reason}); nothing was stored.")
    tokens: dict[str, Any] = resp.json()
    return tokens


async def _chosen_administration(http: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    """Which administration (division) the login chose (``/api/v1/current/Me``)."""
    me_resp = await http.get(
        "/api/v1/current/Me",
        params={"$select": "CurrentDivision,DivisionCustomerName,FullName"},
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )
    if me_resp.status_code != 200:
        raise ConnectError(
            f"Exact Online did not say which administration was chosen "
            f"({me_resp.status_code}); nothing was stored."
        )
    d = me_resp.json().get("d") or {}
    me: dict[str, Any] = (d.get("results") or [d])[0]
    return me


async def _check_one_administration(
    cfg: IntegrationConfig, keys: ExactKeys, token_store: _Store, division: int, label: str
) -> None:
    """Refuse a login that chose another administration than the configured (or linked) one."""
    stored = await token_store.get("division")
    expected = keys.division if keys.division is not None else (int(stored) if stored else None)
    if expected is not None and expected != division:
        raise ConnectError(
            f"The sign-in chose administration {_administration(division, label)}, but "
            f"{cfg.name} is linked to administration {expected}. One administration per "
            "integration: sign in to that administration, or add another integration for "
            "this one. Nothing was stored."
        )


def _administration(division: int, label: str) -> str:
    """``101 (Books B.V.)``, or just ``101`` when Exact gave no name."""
    return f"{division}{f' ({label})' if label else ''}"


def _oauth_error(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}"
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {resp.status_code}"
