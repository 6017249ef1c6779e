"""Hypothesis fuzz of ``POST /api/v1/events`` over real HTTP on loopback (issue 10, item 8).

Mostly valid bills and payroll runs, each with a few hostile mutations: keys that
differ by a blank, keys written twice, NUL and lone surrogates, huge text and
numbers, deep nesting, wrong types, garbage bodies. Whatever arrives, the answer is
202, 400 or 413 and never a 500; a refusal stores nothing; an accepted amount is
stored exactly as sent. The seed is fixed (``derandomize``) so CI runs the same
examples every time; one server serves every example of a test.
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.models import Document, Posting
from sync.documents import Event

FUZZ = dict(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
IDS = itertools.count()


@dataclass
class Pairs:
    """A JSON object written as key/value pairs, so a key can appear twice."""

    items: list[tuple[str, Any]]


@dataclass(frozen=True)
class Raw:
    """JSON text put into the body as it is (deep nesting, NaN, 400-digit numbers)."""

    text: str


def dump(node: Any) -> str:
    """JSON text with ASCII escapes (lone surrogates travel as ``\\udxxx``)."""
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, Decimal):
        return str(node)
    if isinstance(node, dict):
        node = Pairs(list(node.items()))
    if isinstance(node, Pairs):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump(v)}" for k, v in node.items) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(dump(v) for v in node) + "]"
    return json.dumps(node)


@dataclass(repr=False)
class Sent:
    """What one example sent, and whether it must be refused whatever else it holds."""

    events: list[Any]
    must_refuse: bool = False
    body: bytes = b""
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # a failing example is reported by its changes, not 100 kB of body
        return f"Sent(notes={self.notes}, must_refuse={self.must_refuse}, body={self.body[:400]!r}...)"


any_char = st.characters(exclude_categories=())  # surrogates and controls too
hostile_text = st.one_of(
    st.text(any_char, max_size=30),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\u202e", "\n", " ", "", "*bold*", "<!here>", "🧾"]),
    st.builds(lambda s, n: s * n, st.sampled_from(["x", "é", "\x00", "🧾", " "]), st.integers(100, 30_000)),
)
big_numbers = st.sampled_from(
    [
        2**63,
        2**63 - 1,
        -1,
        10**30,
        Raw("1" * 400),
        Raw("1e400"),
        Raw("-0"),
        Raw("NaN"),
        Raw("Infinity"),
        Raw("1e-7"),
        Decimal("0.001"),
    ]
)
# deep-copied: a later change must never reach into an object another example shares
wrong_type = st.sampled_from([None, True, [], {}, ["1250.00"], {"amount": "1"}, 0, ""]).map(copy.deepcopy)
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2)


def unstorable(node: Any) -> bool:
    """Whether any key or text in ``node`` holds NUL or a lone surrogate."""
    if isinstance(node, str):
        return any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in node)
    if isinstance(node, dict):
        node = Pairs(list(node.items()))
    if isinstance(node, Pairs):
        return any(unstorable(k) or unstorable(v) for k, v in node.items)
    if isinstance(node, list):
        return any(unstorable(v) for v in node)
    return False


@st.composite
def amount_as_sent(draw: st.DrawFn) -> Any:
    value = draw(money)
    return draw(st.sampled_from([str(value), value, f" {value} ", str(value.normalize())]))


@st.composite
def valid_bill(draw: st.DrawFn) -> dict[str, Any]:
    n = next(IDS)
    paid = draw(
        st.one_of(
            st.none(), st.fixed_dictionaries({"date": st.just("2026-11-20"), "amount": amount_as_sent()})
        )
    )
    return {
        "source": "ap",
        "kind": "bill",
        "id": f"F{n}" + draw(st.sampled_from(["", "-x", " ", "/a"])),
        "version": draw(st.integers(0, 2**63 - 1)),
        "integration": "books-dk",
        "data": {
            "supplier": {"number": draw(st.sampled_from([3001, "3001", "S-1"])), "name": "Kontorland A/S"},
            "invoice_number": f"INV-{n}",
            "amount": draw(amount_as_sent()),
            "currency": "DKK",
            "date": "2026-11-02",
            "due_date": "2026-12-02",
            "category": "Office supplies",
            "approved": draw(st.booleans()),
            "paid": paid,
            **({"text": t} if (t := draw(st.one_of(st.none(), st.text(max_size=40)))) else {}),
        },
    }


@st.composite
def valid_payroll(draw: st.DrawFn) -> dict[str, Any]:
    n = next(IDS)
    wages = draw(money)
    return {
        "source": "payroll",
        "kind": "payroll_run",
        "id": f"P{n}",
        "version": draw(st.integers(0, 1000)),
        "integration": "books-dk",
        "data": {
            "run": f"2026-11-{n}",
            "date": "2026-11-25",
            "lines": [
                {"account": 7000, "amount": str(wages), "period": "2026-11"},
                {"account": 5820, "amount": str(-wages), "period": "2026-11"},
            ],
        },
    }


def objects(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Every JSON object in an event, with its path (the event itself first)."""
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for k, v in node.items():
            found.extend(objects(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found.extend(objects(v, (*path, i)))
    return found


@st.composite
def mutated(draw: st.DrawFn, sent: Sent, event: dict[str, Any]) -> Any:
    """``event`` with 0-2 hostile changes; marks ``sent`` when they must be refused."""
    result: Any = event
    for _ in range(draw(st.integers(0, 2))):
        path, obj = draw(st.sampled_from(objects(event)))
        if not obj:
            continue
        key = draw(st.sampled_from(sorted(obj)))
        how = draw(st.sampled_from(["stray", "twice", "text", "number", "type", "nest", "drop"]))
        sent.notes.append(f"{how} {path}/{key!r}")
        if how == "stray":
            stray = draw(st.sampled_from([f"{key} ", f" {key}", f"{key}\t", f"{key}\u00a0", key.upper()]))
            if stray != key:
                obj[stray] = draw(st.one_of(st.just(copy.deepcopy(obj[key])), wrong_type, amount_as_sent()))
                sent.must_refuse = True
        elif how == "twice":
            value = draw(st.one_of(wrong_type, amount_as_sent(), hostile_text))
            pairs = Pairs([*obj.items(), (key, value)])
            if path:
                _replace(event, path, pairs)
            else:
                result = pairs
            sent.must_refuse = True
            break  # later changes could not reach inside the pairs
        elif how == "text":
            obj[key] = draw(hostile_text)
        elif how == "number":
            obj[key] = draw(big_numbers)
            sent.must_refuse |= key == "version" and obj[key] == 2**63
        elif how == "type":
            obj[key] = draw(wrong_type)
        elif how == "nest":
            depth = draw(st.sampled_from([33, 100, 900, 5000, 50_000]))
            obj[key] = Raw("[" * depth + "]" * depth)
            sent.must_refuse = True
        else:
            del obj[key]
    if unstorable(result):
        sent.must_refuse = True
    return result


def _replace(root: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = root
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@st.composite
def bodies(draw: st.DrawFn) -> Sent:
    sent = Sent(events=[])
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        event = draw(st.one_of(valid_bill(), valid_bill(), valid_payroll()))
        sent.events.append(draw(mutated(sent, event)))
    body = sent.events[0] if len(sent.events) == 1 and draw(st.booleans()) else {"events": sent.events}
    sent.body = dump(body).encode()
    return sent


async def counts(runtime: Runtime) -> tuple[int, int]:
    async with runtime.db.sessions() as s:
        docs = await s.scalar(select(func.count()).select_from(Document))
        postings = await s.scalar(select(func.count()).select_from(Posting))
    return int(docs or 0), int(postings or 0)


def decimal(value: Any) -> Decimal:
    return Decimal(value.text if isinstance(value, Raw) else str(value))


def amounts(data: Any) -> list[Decimal]:
    """The amounts an event's data carries, in a fixed order (bill, payment, lines)."""
    found = []
    if "amount" in data:
        found.append(decimal(data["amount"]))
    if isinstance(data.get("paid"), dict):
        found.append(decimal(data["paid"]["amount"]))
    for line in data.get("lines") or []:
        found.append(decimal(line["amount"]))
    return found


def stored_key(event: dict[str, Any]) -> tuple[str, str, str]:
    """The key the service stores an accepted event under (its own normalising of ids)."""
    parsed = Event.model_validate(event)
    return parsed.source, parsed.kind, parsed.id


async def check_stored(runtime: Runtime, sent: Sent, answer: httpx.Response) -> None:
    """Every accepted document holds exactly the amounts and version its event sent."""
    last = {tuple(a["document"].split("/", 2)): a for a in answer.json()["accepted"]}
    for (source, kind, external_id), accepted in last.items():
        [*_, ev] = [
            ev
            for ev in sent.events
            if stored_key(ev) == (source, kind, external_id) and ev["version"] == accepted["version"]
        ]
        async with runtime.db.sessions() as s:
            doc = (
                await s.scalars(
                    select(Document).where(
                        Document.source == source, Document.kind == kind, Document.external_id == external_id
                    )
                )
            ).one()
        assert doc.version == ev["version"]
        assert amounts(doc.data) == amounts(ev["data"]), (doc.data, ev["data"])


async def send_one(server: httpx.AsyncClient, runtime: Runtime, sent: Sent) -> None:
    before = await counts(runtime)
    answer = await server.post(
        "/api/v1/events", content=sent.body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code in (202, 400, 413), (answer.status_code, answer.text[:500], sent.notes)
    if answer.status_code == 202:
        assert not sent.must_refuse, (answer.text[:500], sent.notes)
        await check_stored(runtime, sent, answer)
    else:
        assert await counts(runtime) == before, sent.notes
        assert answer.json()["errors" if answer.status_code == 400 else "error"]


@settings(max_examples=700, **FUZZ)
@given(sent=bodies())
async def test_fuzzed_events_never_500_and_store_exactly_what_was_accepted(
    server: httpx.AsyncClient, runtime: Runtime, sent: Sent
) -> None:
    await send_one(server, runtime, sent)


garbage = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda body, cut: body[:cut], bodies().map(lambda s: s.body), st.integers(0, 400)),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"{}",
            b'{"events": {}}',
            b'{"events": null}',
            b"\xff\xfe",
            b'"\\ud800"',
            b"1" * 5000,
        ]
    ),
    st.builds(lambda n: b"[" * n, st.integers(1, 200_000)),
)


@settings(max_examples=400, **FUZZ)
@given(body=garbage)
async def test_garbage_bodies_are_refused_and_store_nothing(
    server: httpx.AsyncClient, runtime: Runtime, body: bytes
) -> None:
    before = await counts(runtime)
    answer = await server.post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code in (202, 400, 413), (answer.status_code, answer.text[:500])
    if answer.status_code != 202:
        assert await counts(runtime) == before


def url_part(text: str) -> str:
    """Percent-encoded UTF-8, lone surrogates included (as a broken client would send them)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


read_text = st.one_of(
    st.text(any_char, max_size=40),
    st.sampled_from(["\x00", "\ud800", "\u202e", " ", "%", "/", "..", "?", "#"]),
    st.builds(lambda s, n: s * n, st.sampled_from(["x", "é", "\x00", "9"]), st.integers(100, 3_000)),
    st.sampled_from(["ap", "bill", "F1", "99999999999999999999999", "-1", "0", "1e3", "pending", "books-dk"]),
)


@settings(max_examples=300, **FUZZ)
@given(
    key=st.tuples(read_text, read_text, read_text),
    query=st.dictionaries(
        st.sampled_from(["state", "integration", "cursor", "limit"]), read_text, max_size=4
    ),
)
async def test_the_read_api_never_answers_5xx(
    server: httpx.AsyncClient, key: tuple[str, str, str], query: dict[str, str]
) -> None:
    document = await server.get("/api/v1/documents/" + "/".join(url_part(p) for p in key))
    # 414/431: aiohttp's own refusal of a request line over 8 kB
    assert document.status_code in (200, 400, 404, 414, 431), (document.status_code, document.text[:300])
    listing = await server.get("/api/v1/postings?" + "&".join(f"{k}={url_part(v)}" for k, v in query.items()))
    assert listing.status_code in (200, 400, 414, 431), (listing.status_code, listing.text[:300])
