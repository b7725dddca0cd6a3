"""Durations parse and print as Go's `time.ParseDuration` and `Duration.String()` do."""

from __future__ import annotations

import copy
import pickle

import pytest

from tidegate.api import (
    Duration,
    InvalidDuration,
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        # Cases from Go's own time package tests.
        ("0", 0),
        ("5s", 5_000_000_000),
        ("30s", 30_000_000_000),
        ("1478s", 1478_000_000_000),
        ("-5s", -5_000_000_000),
        ("+5s", 5_000_000_000),
        ("-0", 0),
        ("+0", 0),
        ("5.0s", 5_000_000_000),
        ("5.6s", 5_600_000_000),
        ("5.s", 5_000_000_000),
        (".5s", 500_000_000),
        ("1.0s", 1_000_000_000),
        ("1.00s", 1_000_000_000),
        ("1.004s", 1_004_000_000),
        ("1.0040s", 1_004_000_000),
        ("100.00100s", 100_001_000_000),
        ("10ns", 10),
        ("11us", 11_000),
        ("12\u00b5s", 12_000),
        ("12\u03bcs", 12_000),
        ("13ms", 13_000_000),
        ("14s", 14_000_000_000),
        ("15m", 15 * 60_000_000_000),
        ("16h", 16 * 3_600_000_000_000),
        ("3h30m", 3 * 3_600_000_000_000 + 30 * 60_000_000_000),
        ("10.5s4m", 4 * 60_000_000_000 + 10_500_000_000),
        ("-2m3.4s", -(2 * 60_000_000_000 + 3_400_000_000)),
        ("1h2m3s4ms5us6ns", 3_723_004_005_006),
        ("39h9m14.425s", 140_954_425_000_000),
        ("52763797000ns", 52_763_797_000),
        ("0.3333333333333333333h", 20 * 60_000_000_000),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("9223372036854775.807us", (1 << 63) - 1),
        ("9223372036s854ms775us807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-9223372036854775.808us", -(1 << 63)),
        ("0.100000000000000000000h", 6 * 60_000_000_000),
        ("0.830103483285477580700h", 49 * 60_000_000_000 + 48_372_539_827),
        # As Flux users write them.
        ("1m30s", 90_000_000_000),
        ("1.5h", 5_400_000_000_000),
        ("300ms", 300_000_000),
        ("5m0s", 300_000_000_000),
    ],
)
def test_parse_as_go(text: str, nanoseconds: int) -> None:
    assert parse_duration_ns(text) == nanoseconds
    assert parse_duration(text) == nanoseconds / 1e9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1hm", 'time: unknown unit "hm" in duration "1hm"'),
        ("5 minutes", 'time: unknown unit " minutes" in duration "5 minutes"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_rejects_what_go_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_duration(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1\u00b5s"),
        (2_200_000, "2.2ms"),
        (300_000_000, "300ms"),
        (3_300_000_000, "3.3s"),
        (4 * 60_000_000_000 + 5_000_000_000, "4m5s"),
        (4 * 60_000_000_000 + 5_001_000_000, "4m5.001s"),
        (5 * 3_600_000_000_000 + 6 * 60_000_000_000 + 7_001_000_000, "5h6m7.001s"),
        (8 * 60_000_000_000 + 1, "8m0.000000001s"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
        (3_600_000_000_000, "1h0m0s"),
        (-1_500_000_000, "-1.5s"),
    ],
)
def test_format_as_go(nanoseconds: int, text: str) -> None:
    assert format_duration_ns(nanoseconds) == text


def test_format_seconds() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(300) == "5m0s"
    assert format_duration(0.3) == "300ms"
    assert format_duration(5400) == "1h30m0s"
    assert format_duration(0) == "0s"


def test_duration_is_seconds_and_remembers_its_text() -> None:
    interval = Duration("1m30s")
    assert interval == 90.0
    assert isinstance(interval, float)
    assert interval.seconds == 90.0
    assert interval.text == "1m30s"
    assert str(interval) == "1m30s"
    assert f"{interval}" == "1m30s"
    assert f"{interval:g}" == "90"
    assert repr(interval) == "Duration('1m30s')"
    assert Duration.of(300).text == "5m0s"
    assert Duration("5m") == Duration("300s")
    for clone in (copy.deepcopy(interval), pickle.loads(pickle.dumps(interval))):
        assert clone == 90.0
        assert clone.text == "1m30s"
    with pytest.raises(InvalidDuration):
        Duration("soon")
