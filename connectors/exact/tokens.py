"""Exact Online sign-in: access tokens from a rotating refresh token kept in a token store.

Every rotated refresh token is written to the :class:`~connectors.base.TokenStore`
*before* the access token it came with is used, so a restart (or a second replica)
never holds a dead token. Access tokens (10 minutes) are reused until shortly
before expiry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.base import AuthenticationError, TokenStore, TransientError, decode_json

log = logging.getLogger(__name__)

#: request a new access token this long before the old one expires
ACCESS_MARGIN = 30.0


class ExactSignIn:
    """The access token of one integration, rotated and stored as Exact requires."""

    def __init__(
        self,
        name: str,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        store: TokenStore,
        refresh_token: str | None,
        clock: Callable[[], float],
        division: Callable[[], int | None],
    ):
        self.name = name
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = store
        self._initial_refresh_token = refresh_token
        self._clock = clock
        self._division = division  # the linked division, stored alongside the token
        self._access: str | None = None
        self._access_expires = 0.0
        self._refresh: str | None = None  # the newest refresh token we know of
        # a rotation whose refresh token is not yet stored: (refresh, access, expires)
        self._unsaved: tuple[str, str, float] | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    async def access_token(self) -> str:
        """A live access token; rotates (and first stores) the refresh token when due."""
        if self._unsaved is None and self._live():
            assert self._access is not None
            return self._access
        async with self._lock:
            if self._unsaved is not None:
                await self._persist(*self._unsaved)
            if not self._live():
                await self._rotate()
            assert self._access is not None
            return self._access

    def forget(self, token: str) -> None:
        """The ledger refused ``token`` (revoked early): renew once on the next call."""
        if self._access == token:
            self._access = None

    def _live(self) -> bool:
        return bool(self._access) and self._clock() < self._access_expires - ACCESS_MARGIN

    async def _rotate(self) -> None:
        stored = await self._store.get("refresh_token")
        token = self._refresh or stored or self._initial_refresh_token
        if not token:
            raise AuthenticationError(
                f"No Exact Online refresh token for {self.name}; run `python app.py connect {self.name}`."
            )
        data = await self._token_request(token)
        if data is None and stored and stored != token:
            # Another process rotated it and stored the newer one: use that.
            data = await self._token_request(stored)
        if data is None:
            raise AuthenticationError(
                f"Exact Online refused the refresh token of {self.name}; link it again with "
                f"`python app.py connect {self.name}`."
            )
        self.refreshes += 1
        expires = self._clock() + int(data.get("expires_in") or 600)
        # The old refresh token is dead now: remember the new one at once, store it,
        # and only then let anything use the new access token.
        self._refresh = str(data["refresh_token"])
        self._access = None
        await self._persist(self._refresh, str(data["access_token"]), expires)

    async def _token_request(self, refresh_token: str) -> dict[str, Any] | None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        try:
            resp = await self._http.post("api/oauth2/token", data=form)
        except httpx.TransportError as exc:
            # The answer (with a new refresh token) may be lost; Exact then keeps the
            # old one valid for a while, so a later retry can still succeed.
            raise TransientError(
                f"Could not reach Exact Online to sign in ({type(exc).__name__}).",
                code="unreachable",
                nothing_written=True,  # signing in comes before the write it serves
            ) from None
        if resp.status_code in (400, 401):
            return None
        if resp.status_code >= 300:
            raise TransientError(
                f"Exact Online sign-in failed ({resp.status_code}).",
                code=f"http_{resp.status_code}",
                nothing_written=True,
            )
        data = decode_json(resp.text) or {}
        if not data.get("access_token") or not data.get("refresh_token"):
            raise TransientError(
                "Exact Online sign-in answered without tokens.", code="bad_token_answer", nothing_written=True
            )
        return data

    async def _persist(self, refresh: str, access: str, expires: float) -> None:
        detail = {
            "rotated_at": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
            "division": self._division(),
        }
        try:
            await self._store.set("refresh_token", refresh, detail)
        except Exception as exc:
            self._unsaved = (refresh, access, expires)
            log.error(
                "could not store the rotated Exact refresh token",
                extra={"integration": self.name, "error": type(exc).__name__},
            )
            raise TransientError(
                "The renewed Exact Online sign-in could not be saved, so nothing was sent; "
                "it is tried again with the next posting.",
                code="token_store",
                nothing_written=True,
            ) from None
        self._unsaved = None
        self._access, self._access_expires = access, expires
