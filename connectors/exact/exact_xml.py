"""eExact XML for relation files, and the answer of Exact's XML upload.

:func:`write_accounts_xml` turns debtors / creditors into
``<eExact><Accounts><Account code=".." status="C"><Name>..</Name>...`` with lxml
and validates the file against Exact's published schema (``eExact-XML.xsd``)
before returning it. A file is all-or-nothing: each row is validated on its own
first, so the error names the offending row; nothing is returned when any row is
bad. :func:`parse_upload_answer` reads the ``<Message type="0|1|2|3">`` per row
that ``/docs/XMLUpload.aspx`` answers.

Validation parses a 300 KB schema and is CPU work: call these from a thread
(``asyncio.to_thread``) in async code. The parsed schema is cached per path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from pathlib import Path

from lxml import etree

from connectors.base import RelationRecord

#: Exact's published schema, vendored with the package; pass another path
#: to the functions below to use a copy elsewhere.
DEFAULT_SCHEMA = Path(__file__).resolve().parent / "schemas" / "eExact-XML.xsd"
CODE_MAX = 18  # Exact's account code length (not in the schema)


class ExactXmlError(ValueError):
    """The file could not be written: which row and why (nothing was written)."""

    def __init__(self, message: str, *, row: int | None = None, code: str | None = None):
        super().__init__(message)
        self.row, self.code = row, code


@lru_cache(maxsize=4)
def load_schema(path: str | Path = DEFAULT_SCHEMA) -> etree.XMLSchema:
    """The parsed schema (cached); a clear error when it is missing or broken."""
    location = Path(path)
    if not location.is_file():
        raise ExactXmlError(f"The eExact schema was not found at {location}.")
    try:
        return etree.XMLSchema(etree.parse(str(location)))
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise ExactXmlError(f"The eExact schema at {location} cannot be used: {exc}") from None


def _text(parent: etree._Element, tag: str, value: str) -> None:
    if value:
        etree.SubElement(parent, tag).text = value


def account_element(relation: RelationRecord) -> etree._Element:
    """One ``<Account>`` in the element order the schema prescribes (Name first)."""
    debtor = relation.type == "debtor"
    # status: C = customer for debtors; A = none for creditors (suppliers are flagged).
    node = etree.Element("Account", code=relation.number, status="C" if debtor else "A")
    etree.SubElement(node, "Name").text = relation.name
    _text(node, "Email", relation.email)
    etree.SubElement(node, "IsSupplier").text = "false" if debtor else "true"
    etree.SubElement(node, "IsSales").text = "true" if debtor else "false"
    address = relation.address
    if any((address.line1, address.postal_code, address.city, address.country)):
        addr = etree.SubElement(node, "Address", type="VIS", default="1")
        # AddressLine1 is the schema's mandatory choice; an empty one is allowed.
        etree.SubElement(addr, "AddressLine1").text = address.line1
        _text(addr, "PostalCode", address.postal_code)
        _text(addr, "City", address.city)
        if address.country:
            etree.SubElement(addr, "Country", code=address.country.upper())
    _text(node, "VATNumber", relation.vat_number)
    return node


def _document(accounts: Iterable[etree._Element]) -> etree._Element:
    root = etree.Element("eExact")
    box = etree.SubElement(root, "Accounts")
    for account in accounts:
        box.append(account)
    return root


def _row_problem(relation: RelationRecord) -> str | None:
    """Exact's own rules the schema does not spell out."""
    if not relation.number.strip():
        return "the relation has no number"
    if len(relation.number) > CODE_MAX:
        return f"the number is longer than {CODE_MAX} characters"
    if not relation.name.strip():
        return "the name is empty"
    if relation.type not in ("debtor", "creditor"):
        return f"unknown relation type '{relation.type}'"
    return None


def write_accounts_xml(
    relations: Sequence[RelationRecord], *, schema_path: str | Path = DEFAULT_SCHEMA
) -> bytes:
    """The eExact file for these relations, validated; raises :class:`ExactXmlError`.

    Rows are 1-based in error messages, as a person counts them in the export.
    """
    if not relations:
        raise ExactXmlError("There are no relations to export.")
    schema = load_schema(str(schema_path))
    elements = []
    for row, relation in enumerate(relations, 1):
        where = f"Row {row} (number {relation.number or '?'}, {relation.name or 'no name'})"
        problem = _row_problem(relation)
        if problem:
            raise ExactXmlError(f"{where}: {problem}; nothing was exported.", row=row, code=relation.number)
        try:
            element = account_element(relation)
        except ValueError as exc:  # lxml refuses control characters and the like
            raise ExactXmlError(
                f"{where}: {exc}; nothing was exported.", row=row, code=relation.number
            ) from None
        single = _document([element])
        if not schema.validate(single):
            error = schema.error_log.last_error
            raise ExactXmlError(
                f"{where} does not match Exact's schema: {error.message if error else '?'}; "
                "nothing was exported.",
                row=row,
                code=relation.number,
            )
        elements.append(etree.fromstring(etree.tostring(element)))  # detach from `single`
    seen: dict[str, int] = {}
    for row, relation in enumerate(relations, 1):
        if relation.number in seen:
            raise ExactXmlError(
                f"Row {row} (number {relation.number}) repeats the number of row "
                f"{seen[relation.number]}; nothing was exported.",
                row=row,
                code=relation.number,
            )
        seen[relation.number] = row
    document = _document(elements)
    if not schema.validate(document):  # the whole file too, as Exact reads it
        error = schema.error_log.last_error
        raise ExactXmlError(
            f"The file does not match Exact's schema: "
            f"{error.message if error else '?'}; nothing was exported."
        )
    return etree.tostring(document, xml_declaration=True, encoding="utf-8", pretty_print=True)


class MessageType(IntEnum):
    """``<Message type>`` of an XML upload answer."""

    ERROR = 0
    WARNING = 1
    SUCCESS = 2
    FATAL = 3


@dataclass(frozen=True)
class RowOutcome:
    """What Exact said about one row (``key`` is the account code, empty for the file)."""

    key: str
    type: MessageType
    description: str

    @property
    def ok(self) -> bool:
        """Imported (a warning still imports the row)."""
        return self.type in (MessageType.SUCCESS, MessageType.WARNING)


def parse_upload_answer(xml: str | bytes) -> list[RowOutcome]:
    """Per-row outcomes from an ``XMLUpload.aspx`` answer, in the order given.

    A message without ``<Data keyAlt>`` concerns the whole file (key ``""``);
    an answer that is not XML raises :class:`ExactXmlError`.
    """
    data = xml.encode() if isinstance(xml, str) else xml
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ExactXmlError(f"Exact's upload answer is not XML: {exc}") from None
    outcomes = []
    for message in root.iter("Message"):
        try:
            kind = MessageType(int(message.get("type", "0")))
        except ValueError:
            kind = MessageType.ERROR
        data_node = message.find("Topic/Data")
        key = data_node.get("keyAlt", "") if data_node is not None else ""
        outcomes.append(
            RowOutcome(key=key, type=kind, description=(message.findtext("Description") or "").strip())
        )
    return outcomes
