"""The slash-command parser: every input is a command or a usage answer, never an exception."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.command_parser import (
    USAGE,
    Help,
    History,
    Log,
    Map,
    Pause,
    Resync,
    ResyncFailed,
    Status,
    Usage,
    parse,
)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", Help()),
        ("status", Status()),
        ("STATUS", Status()),
        ("log B-1042", Log("B-1042")),
        ("log bill:B-1042 2", Log("bill:B-1042", 2)),
        ("resync B-1042", Resync("B-1042", ("all",))),
        ("resync B-1042 payment", Resync("B-1042", ("payment",))),
        ("resync failed", ResyncFailed()),
        (
            "resync failed economic-dk --since 2026-11-01 --error 7",
            ResyncFailed("economic-dk", date(2026, 11, 1), 7),
        ),
        ("pause economic-dk", Pause("economic-dk")),
        ("history economic-dk --since 2026-01-01", History("economic-dk", date(2026, 1, 1))),
        ('map category "Office supplies" 2800', Map("category", "Office supplies", 2800)),
        ("map category “Office supplies” 2800", Map("category", "Office supplies", 2800)),
        ("help resync", Help("resync")),
    ],
)
def test_reads_each_command(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text,problem",
    [
        ("frobnicate", "unknown command"),
        ("log", "which document"),
        ("resync B-1 receipt", "not a posting"),
        ("history economic-dk", "--since is required"),
        ("history economic-dk --since yesterday", "not a date"),
        ('map colour "Red" 1', "cannot be mapped"),
        ('map category "Rent" 12ab', "not an account number"),
        ('map category "Rent', "quote is not closed"),
        ("pause", "which integration"),
        ("status now", "takes no arguments"),
        ("resync failed --error x", "error group"),
    ],
)
def test_bad_input_says_what_is_wrong_and_how_to_write_it(text: str, problem: str) -> None:
    answer = parse(text)
    assert isinstance(answer, Usage)
    assert problem in answer.problem
    assert answer.usage


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_command_or_a_usage_answer(text: str) -> None:
    answer = parse(text)
    assert answer is not None


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(USAGE)), st.lists(st.text(max_size=20), max_size=5))
def test_any_arguments_to_a_known_command_never_raise(head: str, args: list[str]) -> None:
    parse(" ".join([head, *args]))
