"""Pure parser for the slash command (``/ledger …``): text in, a command or a usage answer out.

It never raises: anything it cannot read becomes :class:`Usage` naming what was
wrong and the usage line, so the listener can answer without special cases.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import date, timedelta

POSTING_CHOICES = ("invoice", "payment", "journal", "all")
MAP_WHATS = ("category", "department", "payment-method")

USAGE = {
    "status": "status",
    "attention": "attention",
    "log": "log <document> [page]",
    "resync": "resync <document> [invoice|payment|journal|all]",
    "resync failed": "resync failed [integration] [--since YYYY-MM-DD] [--error GROUP]",
    "restart": "restart <document>",
    "queue": "queue",
    "pause": "pause <integration>",
    "resume": "resume <integration>",
    "history": "history <integration> --since YYYY-MM-DD",
    "map": 'map category|department|payment-method "<name>" <number> [integration]',
    "activity": "activity [--since YYYY-MM-DD|2h|3d|1w]",
    "help": "help [command]",
}

#: one line per command: what it does (``help``)
WHAT = {
    "status": "Counts per integration: synced today, queued, failed, booked; paused; open error groups.",
    "attention": "What needs a person, grouped by error, with Resync all.",
    "log": "The integration log of one document: every attempt and every click, newest first.",
    "resync": "Send one document's postings again (all, or the invoice, payment or journal posting).",
    "resync failed": "Bulk resync of failed postings, narrowed by integration, date or error group.",
    "restart": "Send every posting of one document again from the start.",
    "queue": "What waits per company and since when; what each scheduled job did and does next.",
    "pause": "Stop sending to an integration; nothing queued is lost. Announced in the channel.",
    "resume": "Send to a paused integration again. Announced in the channel.",
    "history": "Transfer documents dated before the history start, from a date on.",
    "map": "Map a category, department or payment method to an account; queues again what failed for it.",
    "activity": "Who did what: pauses, mappings, resyncs, ignores, newest first.",
    "help": "This list, or the usage of one command.",
}

#: how a document may be named: what the messages show, the document id, or kind:id
DOCUMENT_FORMS = "an invoice, order or run number (INV-1005), a document id (B-1005), or kind:id"

_DURATION = re.compile(r"^(\d{1,4})([mhdw])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class Attention:
    pass


@dataclass(frozen=True)
class Log:
    document: str
    page: int = 1


@dataclass(frozen=True)
class Resync:
    document: str
    postings: tuple[str, ...] = ("all",)


@dataclass(frozen=True)
class ResyncFailed:
    integration: str | None = None
    since: date | None = None
    error_group: int | None = None


@dataclass(frozen=True)
class Restart:
    document: str


@dataclass(frozen=True)
class Queue:
    pass


@dataclass(frozen=True)
class Pause:
    integration: str


@dataclass(frozen=True)
class Resume:
    integration: str


@dataclass(frozen=True)
class History:
    integration: str
    since: date


@dataclass(frozen=True)
class Map:
    what: str
    source: str
    number: int
    integration: str | None = None


@dataclass(frozen=True)
class ActivityLog:
    """``activity``: who did what, from ``since`` (a date, or a span back from now)."""

    since: date | timedelta | None = None


@dataclass(frozen=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True)
class Usage:
    """The input could not be read: what was wrong, and how to write it."""

    problem: str
    usage: str


Command = (
    Status
    | Attention
    | Log
    | Resync
    | ResyncFailed
    | Restart
    | Queue
    | Pause
    | Resume
    | History
    | Map
    | ActivityLog
    | Help
)

#: commands that change something: they obey the allow-list
CHANGING = (Resync, ResyncFailed, Restart, Pause, Resume, History, Map)

_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
_INTEGRATION = re.compile(r"^[a-z0-9-]{1,40}$")


def _usage(problem: str, key: str) -> Usage:
    return Usage(problem, USAGE[key])


def _date(value: str, key: str) -> date | Usage:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return _usage(f"'{value}' is not a date; write it as YYYY-MM-DD", key)


def _options(args: list[str], allowed: tuple[str, ...], key: str) -> tuple[list[str], dict[str, str]] | Usage:
    """Split ``--name value`` options from positional arguments."""
    positional: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            name, _, inline = arg[2:].partition("=")
            if name not in allowed:
                return _usage(f"unknown option --{name}", key)
            if inline:
                options[name] = inline
            elif i + 1 < len(args):
                options[name] = args[i + 1]
                i += 1
            else:
                return _usage(f"--{name} needs a value", key)
        else:
            positional.append(arg)
        i += 1
    return positional, options


def parse(text: str) -> Command | Usage:
    """Parse the text after the slash command."""
    try:
        words = shlex.split((text or "").translate(_QUOTES))
    except ValueError:
        return Usage("a quote is not closed", "; ".join(USAGE.values()))
    if not words:
        return Help()
    head, args = words[0].lower(), words[1:]
    parser = _PARSERS.get(head)
    if parser is None:
        return Usage(f"unknown command '{head[:40]}'", "; ".join(USAGE.values()))
    return parser(args)


def _no_args(cls: type, key: str) -> object:
    def parse_it(args: list[str]) -> Command | Usage:
        if args:
            return _usage(f"{key} takes no arguments", key)
        return cls()  # type: ignore[no-any-return]

    return parse_it


def _log(args: list[str]) -> Command | Usage:
    if not args or len(args) > 2:
        return _usage("which document?", "log")
    page = 1
    if len(args) == 2:
        if not args[1].isdigit() or int(args[1]) < 1:
            return _usage(f"'{args[1]}' is not a page number", "log")
        page = int(args[1])
    return Log(args[0], page)


def _resync(args: list[str]) -> Command | Usage:
    if args and args[0].lower() == "failed":
        split = _options(args[1:], ("since", "error"), "resync failed")
        if isinstance(split, Usage):
            return split
        positional, options = split
        if len(positional) > 1:
            return _usage("give at most one integration", "resync failed")
        integration = positional[0] if positional else None
        if integration is not None and not _INTEGRATION.match(integration):
            return _usage(f"'{integration}' is not an integration name", "resync failed")
        since = None
        if "since" in options:
            parsed = _date(options["since"], "resync failed")
            if isinstance(parsed, Usage):
                return parsed
            since = parsed
        group = None
        if "error" in options:
            if not options["error"].isdigit():
                return _usage("--error takes the number of an error group", "resync failed")
            group = int(options["error"])
        return ResyncFailed(integration, since, group)
    if not args:
        return _usage("which document?", "resync")
    postings = tuple(a.lower() for a in args[1:]) or ("all",)
    bad = [p for p in postings if p not in POSTING_CHOICES]
    if bad:
        return _usage(f"'{bad[0]}' is not a posting; choose invoice, payment, journal or all", "resync")
    return Resync(args[0], postings)


def _restart(args: list[str]) -> Command | Usage:
    if len(args) != 1:
        return _usage("which document?", "restart")
    return Restart(args[0])


def _integration_cmd(cls: type, key: str) -> object:
    def parse_it(args: list[str]) -> Command | Usage:
        if len(args) != 1:
            return _usage("which integration?", key)
        if not _INTEGRATION.match(args[0]):
            return _usage(f"'{args[0][:40]}' is not an integration name", key)
        return cls(args[0])  # type: ignore[no-any-return]

    return parse_it


def _history(args: list[str]) -> Command | Usage:
    split = _options(args, ("since",), "history")
    if isinstance(split, Usage):
        return split
    positional, options = split
    if len(positional) != 1 or not _INTEGRATION.match(positional[0]):
        return _usage("which integration?", "history")
    if "since" not in options:
        return _usage("--since is required", "history")
    since = _date(options["since"], "history")
    if isinstance(since, Usage):
        return since
    return History(positional[0], since)


def _map(args: list[str]) -> Command | Usage:
    if len(args) not in (3, 4):
        return _usage("map takes what, the name in quotes, and the number", "map")
    what, source, number = args[0].lower(), args[1], args[2]
    integration = args[3] if len(args) == 4 else None
    if integration is not None and not _INTEGRATION.match(integration):
        return _usage(f"'{integration[:40]}' is not an integration name", "map")
    if what not in MAP_WHATS:
        return _usage(f"'{what}' cannot be mapped; choose {', '.join(MAP_WHATS)}", "map")
    if not source.strip():
        return _usage("the name is empty", "map")
    if not number.isdigit() or len(number) > 12:
        return _usage(f"'{number[:20]}' is not an account number", "map")
    return Map(what, source, int(number), integration)


def _activity(args: list[str]) -> Command | Usage:
    split = _options(args, ("since",), "activity")
    if isinstance(split, Usage):
        return split
    positional, options = split
    if positional:
        return _usage(f"'{positional[0][:40]}' is not an option of activity", "activity")
    value = options.get("since")
    if value is None:
        return ActivityLog()
    span = _DURATION.match(value.lower())
    if span:
        return ActivityLog(timedelta(**{_UNIT[span.group(2)]: int(span.group(1))}))
    try:
        return ActivityLog(date.fromisoformat(value))
    except ValueError:
        return _usage(
            f"'{value[:40]}' is neither a date (YYYY-MM-DD) nor a span like 2h, 3d or 1w", "activity"
        )


def _help(args: list[str]) -> Command | Usage:
    topic = " ".join(args).lower() or None
    if topic is not None and topic not in USAGE:
        return Usage(f"no help on '{topic[:40]}'", "; ".join(USAGE.values()))
    return Help(topic)


_PARSERS = {
    "status": _no_args(Status, "status"),
    "attention": _no_args(Attention, "attention"),
    "queue": _no_args(Queue, "queue"),
    "log": _log,
    "resync": _resync,
    "restart": _restart,
    "pause": _integration_cmd(Pause, "pause"),
    "resume": _integration_cmd(Resume, "resume"),
    "history": _history,
    "map": _map,
    "activity": _activity,
    "help": _help,
}
