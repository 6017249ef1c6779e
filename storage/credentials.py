"""Secrets a connector must keep between runs, encrypted, in the ``credentials`` table.

Only Exact Online's rotating refresh token (and the division it is linked to)
lives here; every other credential comes from the environment. Values are
encrypted with Fernet (AES-128-CBC + HMAC) under the key in
``LEDGEROPS_SECRET_KEY``; the key, the values and their ciphertext are never
logged nor put in an error message or a repr.

:class:`DatabaseTokenStore` satisfies ``connectors.base.TokenStore`` by its
shape alone, so storage does not import the connectors package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from storage.db import Database
from storage.models import Credential
from storage.queries.upsert import upsert_into

SECRET_KEY_ENV = "LEDGEROPS_SECRET_KEY"


class SecretKeyError(ValueError):
    """``LEDGEROPS_SECRET_KEY`` is missing or is not a Fernet key."""


class CredentialUnreadable(RuntimeError):
    """A stored credential cannot be decrypted with the current key."""


def secret_key_from_env(environ: Mapping[str, str] | None = None) -> bytes:
    """The Fernet key from ``LEDGEROPS_SECRET_KEY``, checked.

    Raises :class:`SecretKeyError` naming the variable (never its value) when it
    is absent or not 32 url-safe base64-encoded bytes.
    """
    env = os.environ if environ is None else environ
    raw = (env.get(SECRET_KEY_ENV) or "").strip()
    if not raw:
        raise SecretKeyError(
            f"{SECRET_KEY_ENV} is not set; it encrypts stored credentials. Create one with: "
            "python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'"
        )
    key = raw.encode()
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{SECRET_KEY_ENV} is malformed: it must be a Fernet key "
            "(32 bytes, url-safe base64-encoded, 44 characters)"
        ) from None
    return key


class DatabaseTokenStore:
    """``connectors.base.TokenStore`` for one integration, on the ``credentials`` table.

    ``set`` commits before it returns, so the value survives a crash right after.
    """

    def __init__(self, db: Database, integration: str, key: bytes):
        self._db = db
        self.integration = integration
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return f"DatabaseTokenStore(integration={self.integration!r})"

    async def get(self, name: str) -> str | None:
        """The decrypted value stored under ``name``, or ``None``."""
        async with self._db.sessions() as s:
            row = await s.scalar(
                select(Credential.value).where(
                    Credential.integration == self.integration, Credential.name == name
                )
            )
        if row is None:
            return None
        try:
            return self._fernet.decrypt(row.encode()).decode()
        except InvalidToken:
            raise CredentialUnreadable(
                f"The stored {name} of {self.integration} cannot be decrypted with "
                f"{SECRET_KEY_ENV}; was the key changed? Link the integration again."
            ) from None

    async def set(self, name: str, value: str, detail: dict[str, Any] | None = None) -> None:
        """Encrypt and store ``value`` (insert or replace), durable on return.

        ``detail`` is stored in clear and must not hold secrets (e.g. the division
        and when it was rotated).
        """
        values = {
            "integration": self.integration,
            "name": name,
            "value": self._fernet.encrypt(value.encode()).decode(),
            "detail": detail,
            "updated_at": datetime.now(UTC),
        }
        # One statement, so two writers never collide on the primary key.
        stmt = upsert_into("sqlite" if self._db.is_sqlite else "postgresql", Credential).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Credential.integration, Credential.name],
            set_={
                "value": stmt.excluded.value,
                "detail": stmt.excluded.detail,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        async with self._db.sessions() as s, s.begin():
            await s.execute(stmt)
