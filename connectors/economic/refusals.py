"""e-conomic's refusals in its own words: the annotated errors document of a 4xx answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.base import NeedsPersonError


def annotated_errors(errors: Any, field: str = "") -> list[tuple[str, str, str, Any]]:
    """``(field, message, errorCode, value)`` from e-conomic's annotated errors document.

    The document mirrors the request: ``{"entries": {"supplierInvoices": [{"arrayIndex": 0,
    "contraAccount": {"errors": [...]}}]}}``; the field is the property holding the list.
    """
    found: list[tuple[str, str, str, Any]] = []
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            if key == "errors" and isinstance(value, list):
                found.extend(
                    (
                        field,
                        str(item.get("message") or ""),
                        str(item.get("errorCode") or ""),
                        item.get("value"),
                    )
                    for item in value
                    if isinstance(item, Mapping)
                )
            elif key != "arrayIndex":
                found.extend(annotated_errors(value, key))
    elif isinstance(errors, list):
        for item in errors:
            found.extend(annotated_errors(item, field))
    return found


_NOT_FOUND_CODES = {
    "contraAccount": "account_not_found",
    "account": "account_not_found",
    "accountNumber": "account_not_found",
    "supplier": "supplier_not_found",
    "supplierNumber": "supplier_not_found",
    "departmentalDistribution": "department_not_found",
    "departmentalDistributionNumber": "department_not_found",
    "currency": "currency_not_found",
}


def _code_for(field: str, message: str, error_code: str) -> str:
    if re.search(r"does not exist|not found", message, re.IGNORECASE) and field in _NOT_FOUND_CODES:
        return _NOT_FOUND_CODES[field]
    return f"validation_{error_code}" if error_code else "validation"


def rejection(body: Any, status: int) -> NeedsPersonError:
    """A 4xx answer as the ledger's own words: ``"contraAccount: Account 9999 does not exist."``."""
    body = body if isinstance(body, Mapping) else {}
    found = annotated_errors(body.get("errors"))
    if not found:
        message = str(body.get("message") or f"e-conomic refused the request ({status}).")
        return NeedsPersonError(message, code=f"http_{status}")
    parts = []
    for field, message, _code, value in found:
        text = f"{field}: {message}" if field else message
        if value is not None and str(value) not in message:
            text += f" (value: {value})"
        parts.append(text)
    field, message, error_code, _value = found[0]
    return NeedsPersonError("; ".join(parts), code=_code_for(field, message, error_code), field=field or None)
