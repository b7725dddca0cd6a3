"""Durations as Flux writes them (`5m`, `1h30m`, `300ms`), with Go's `time.ParseDuration` rules.

Flux's API fields are `metav1.Duration`: Go parses them with `time.ParseDuration` and prints them
with `Duration.String()` (`5m0s`, `1h0m0s`, `1.5s`). Parsing is done on integer nanoseconds, as in
Go, so values such as `1.1s` come out exactly as Go computes them.
"""

from __future__ import annotations

from typing import Self

# The pattern Flux puts on `metav1.Duration` fields such as `spec.interval`: no sign, no
# nanoseconds or microseconds. Timeouts use the same without hours.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
TIMEOUT_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"

_NANOSECOND = 1
_MICROSECOND = 1000 * _NANOSECOND
_MILLISECOND = 1000 * _MICROSECOND
_SECOND = 1000 * _MILLISECOND
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_UNITS = {
    "ns": _NANOSECOND,
    "us": _MICROSECOND,
    "\u00b5s": _MICROSECOND,  # micro sign
    "\u03bcs": _MICROSECOND,  # Greek small letter mu
    "ms": _MILLISECOND,
    "s": _SECOND,
    "m": _MINUTE,
    "h": _HOUR,
}
_MAX = 1 << 63  # Go's Duration is an int64 of nanoseconds.


class InvalidDuration(ValueError):
    """Text that Go's `time.ParseDuration` would reject."""


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in `text` (`[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`, or `0`), as Go computes them."""
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise InvalidDuration(f"time: invalid duration {_quote(text)}")
    total = 0
    while rest:
        if not (rest[0] == "." or "0" <= rest[0] <= "9"):
            raise InvalidDuration(f"time: invalid duration {_quote(text)}")
        whole_digits, rest = _leading_digits(rest)
        fraction_digits = ""
        if rest[:1] == ".":
            fraction_digits, rest = _leading_digits(rest[1:])
            had_point = True
        else:
            had_point = False
        if not whole_digits and not (had_point and fraction_digits):
            raise InvalidDuration(f"time: invalid duration {_quote(text)}")
        end = 0
        while end < len(rest) and not (rest[end] == "." or "0" <= rest[end] <= "9"):
            end += 1
        if end == 0:
            raise InvalidDuration(f"time: missing unit in duration {_quote(text)}")
        unit_name, rest = rest[:end], rest[end:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise InvalidDuration(
                f"time: unknown unit {_quote(unit_name)} in duration {_quote(text)}"
            )
        whole = int(whole_digits or "0")
        if whole > _MAX // unit:
            raise InvalidDuration(f"time: invalid duration {_quote(text)}")
        value = whole * unit
        fraction, scale = _fraction(fraction_digits)
        if fraction > 0:
            # Go scales the fraction in float64, then truncates: keep the same rounding.
            value += int(float(fraction) * (float(unit) / scale))
            if value > _MAX:
                raise InvalidDuration(f"time: invalid duration {_quote(text)}")
        total += value
        if total > _MAX:
            raise InvalidDuration(f"time: invalid duration {_quote(text)}")
    if negative:
        return -total
    if total > _MAX - 1:
        raise InvalidDuration(f"time: invalid duration {_quote(text)}")
    return total


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string: `parse_duration("1m30s") == 90.0`.

    Raises `InvalidDuration` (a `ValueError`) with Go's message for text Go would reject.
    """
    return parse_duration_ns(text) / _SECOND


def format_duration(seconds: float) -> str:
    """A duration as Go prints it: `format_duration(90) == "1m30s"`, `300` → `5m0s`,
    `0.3` → `300ms`, `0` → `0s`."""
    return format_duration_ns(round(seconds * _SECOND))


def format_duration_ns(nanoseconds: int) -> str:
    """Go's `time.Duration.String()` for a count of nanoseconds."""
    negative = nanoseconds < 0
    u = -nanoseconds if negative else nanoseconds
    if u == 0:
        return "0s"
    if u < _SECOND:
        # Below a second Go switches to a smaller unit with a fraction: 1.5ms, 2µs, 40ns.
        if u < _MICROSECOND:
            text = _with_fraction(u, 0) + "ns"
        elif u < _MILLISECOND:
            text = _with_fraction(u, 3) + "\u00b5s"
        else:
            text = _with_fraction(u, 6) + "ms"
    else:
        text = _with_fraction(u % _MINUTE, 9) + "s"
        minutes = u // _MINUTE
        if minutes:
            text = f"{minutes % 60}m{text}"
            hours = minutes // 60
            if hours:
                text = f"{hours}h{text}"
    return "-" + text if negative else text


class Duration(float):
    """A duration field's value: its length in seconds (it is a `float`) and the text it was
    written as (`.text`, e.g. `5m`), which `str()` gives back.

    `Duration("1m30s") == 90.0`; `asyncio.timeout(spec.timeout)` works as is.
    """

    __slots__ = ("_text",)
    _text: str

    def __new__(cls, text: str) -> Self:
        """Parse Go duration text; raises `InvalidDuration` if Go would reject it."""
        value = super().__new__(cls, parse_duration(text))
        value._text = text
        return value

    @classmethod
    def of(cls, seconds: float) -> Self:
        """The duration of `seconds`, written as Go writes it: `Duration.of(300).text` is
        `5m0s`."""
        return cls(format_duration(seconds))

    @property
    def text(self) -> str:
        return self._text

    @property
    def seconds(self) -> float:
        return float(self)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Duration({self._text!r})"

    def __reduce__(self) -> tuple[type[Self], tuple[str]]:
        return type(self), (self._text,)


def _leading_digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return text[:end], text[end:]


def _fraction(digits: str) -> tuple[int, float]:
    """Go's `leadingFraction`: digits past int64 precision are consumed but ignored."""
    value, scale = 0, 1.0
    overflow = False
    for digit in digits:
        if overflow:
            continue
        if value > (_MAX - 1) // 10:
            overflow = True
            continue
        candidate = value * 10 + int(digit)
        if candidate > _MAX:
            overflow = True
            continue
        value = candidate
        scale *= 10
    return value, scale


def _with_fraction(value: int, precision: int) -> str:
    """`value / 10**precision` with the fraction's trailing zeros (and a bare point) dropped."""
    if precision == 0:
        return str(value)
    whole, fraction = divmod(value, 10**precision)
    digits = f"{fraction:0{precision}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
