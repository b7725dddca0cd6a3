"""Semver versions and ranges with the rules of Masterminds/semver v3.5, which Flux uses for tags.

A range must pick the same tag in tidegate as in Flux, so Masterminds' quirks are kept on purpose
and noted where they appear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import total_ordering
from typing import Literal

__all__ = ["Constraint", "InvalidConstraint", "Version", "latest", "parse_version"]

# Masterminds parses segments with strconv.ParseUint(…, 10, 64).
_UINT64_LIMIT = 2**64
# Masterminds' MaxVersionLen, MaxConstraintLen (in bytes) and MaxConstraintGroups.
_MAX_VERSION_BYTES = 256
_MAX_CONSTRAINT_BYTES = 512
_MAX_OR_GROUPS = 32
_IDENTIFIERS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
# semver.NewVersion: only a lowercase `v`; minor and patch may be missing.
_LOOSE_VERSION = re.compile(
    rf"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-({_IDENTIFIERS}))?(?:\+({_IDENTIFIERS}))?"
)

# Go's \s, which unlike Python's does not match \v or non-ASCII spaces.
_WS = r"[\t\n\f\r ]"
# Masterminds' operator alternation, in its order: regex alternation is ordered, and the empty
# operator sits second, so reordering could change which operator a token ends up with.
_OPERATORS = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^"
# A version part in a range: digits or a wildcard. The `|` comes from Masterminds' character class
# `[0-9|x|X|\*]` and is kept so that the same strings are accepted and rejected.
_PART = r"[0-9xX*|]+"
_RANGE_VERSION = rf"v?{_PART}(?:\.{_PART})?(?:\.{_PART})?(?:-{_IDENTIFIERS})?(?:\+{_IDENTIFIERS})?"
_HYPHEN_RANGE = re.compile(rf"{_WS}*({_RANGE_VERSION}){_WS}+-{_WS}+({_RANGE_VERSION}){_WS}*")
_ITEM = rf"(?:{_OPERATORS}){_WS}*+(?>{_RANGE_VERSION})"
# Masterminds' validation regex, with possessive and atomic parts so that Python's backtracking
# engine stays linear like Go's; the parts made possessive can never give back a useful character.
_AND_GROUP = re.compile(rf"{_WS}*+{_ITEM}(?:(?:{_WS}++|{_WS}*+,{_WS}*+){_ITEM})*+{_WS}*+")
_COMPARISON = re.compile(rf"({_OPERATORS}){_WS}*({_RANGE_VERSION})")
_COMPARISON_PARTS = re.compile(
    rf"{_WS}*(?P<operator>{_OPERATORS}){_WS}*"
    rf"(?P<version>v?(?P<major>{_PART})(?:\.(?P<minor>{_PART}))?(?:\.(?P<patch>{_PART}))?"
    rf"(?:-(?P<prerelease>{_IDENTIFIERS}))?(?:\+{_IDENTIFIERS})?){_WS}*"
)
_WILDCARDS = frozenset({"x", "X", "*"})

_Operator = Literal["=", "!=", ">", "<", ">=", "<=", "~", "^"]
_Wildcard = Literal["major", "minor", "patch"]
_OPERATORS_BY_SPELLING: dict[str, _Operator] = {
    "": "=", "=": "=", "!=": "!=", ">": ">", "<": "<", ">=": ">=", "=>": ">=", "<=": "<=",
    "=<": "<=", "~": "~", "~>": "~", "^": "^",
}  # fmt: skip


class InvalidConstraint(ValueError):
    """A semver range that does not parse; the message reads as Flux reports it."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"semver '{text}' parse error: {reason}")
        self.text = text
        self.reason = reason


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A semantic version ordered by semver 2.0 precedence; build metadata and `original` are
    ignored when comparing, so `1.0.0 == v1.0.0+build.5`."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""
    metadata: str = ""
    original: str = ""

    def __post_init__(self) -> None:
        if not self.original:
            object.__setattr__(self, "original", str(self))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.metadata:
            text += f"+{self.metadata}"
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() == other._precedence()

    def __lt__(self, other: Version) -> bool:
        return self._precedence() < other._precedence()

    def __hash__(self) -> int:
        return hash(self._precedence())

    def _precedence(self) -> tuple[int, int, int, bool, tuple[tuple[bool, int, str], ...]]:
        identifiers = self.prerelease.split(".") if self.prerelease else []
        return (
            self.major,
            self.minor,
            self.patch,
            not self.prerelease,
            tuple(_identifier_rank(identifier) for identifier in identifiers),
        )


def _identifier_rank(identifier: str) -> tuple[bool, int, str]:
    # Numeric identifiers sort before alphanumeric ones; Masterminds treats a number too large for
    # a uint64 as alphanumeric.
    if identifier.isascii() and identifier.isdigit() and int(identifier) < _UINT64_LIMIT:
        return (False, int(identifier), "")
    return (True, 0, identifier)


def parse_version(text: str) -> Version | None:
    """Parse a version the way `semver.NewVersion` does (`v1`, `1.2`, `01.2.3-rc.1+build`), or
    return None when it is not one."""
    if len(text.encode()) > _MAX_VERSION_BYTES:
        return None
    match = _LOOSE_VERSION.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, prerelease, metadata = match.groups(default="")
    version = Version(int(major), int(minor or 0), int(patch or 0), prerelease, metadata, text)
    if max(version.major, version.minor, version.patch) >= _UINT64_LIMIT:
        return None
    if any(len(p) > 1 and p.isdigit() and p[0] == "0" for p in prerelease.split(".")):
        return None
    return version


def _parse_tag(tag: str) -> Version | None:
    # Flux's fluxcd/pkg/version.ParseVersion (v0.16): NewVersion, but only for tags with at least
    # two dots, so `1.2` and `v1` are not candidates while CalVer such as `v2025.02.03` is.
    if tag.count(".") < 2:
        return None
    return parse_version(tag)


@dataclass(frozen=True)
class _Comparison:
    """One comparison of a range, such as `>=1.2` or `~1.x`, checked as Masterminds checks it."""

    operator: _Operator
    version: Version
    # The first part given as a wildcard or left out: `*` is "major", `1.x` and `1` are "minor".
    wildcard: _Wildcard | None

    def allows(self, v: Version, include_prerelease: bool) -> bool:
        if v.prerelease and not include_prerelease:
            return False
        match self.operator:
            case "=":
                return self._tilde(v) if self.wildcard else v == self.version
            case "!=":
                return self._not_equal(v)
            case ">":
                return self._greater(v)
            case "<":
                return v < self.version
            case ">=":
                return v >= self.version
            case "<=":
                return self._less_or_equal(v)
            case "~":
                return self._tilde(v)
            case "^":
                return self._caret(v)

    def _not_equal(self, v: Version) -> bool:
        c = self.version
        if self.wildcard:
            if v.major != c.major:
                return True
            if self.wildcard == "minor":
                return False
            if v.minor != c.minor:
                return True
            if self.wildcard == "patch":
                return v.prerelease != c.prerelease
            if v.patch != c.patch:
                return True
        # `!=*` falls through to here and so means `!=0.0.0`.
        return v != c

    def _greater(self, v: Version) -> bool:
        c = self.version
        if self.wildcard is None or self.wildcard == "major":
            return v > c
        if v.major != c.major:
            return v.major > c.major
        # `>1` needs 2.0.0 or above; `>1.2` needs 1.3.0 or above.
        return self.wildcard == "patch" and v.minor > c.minor

    def _less_or_equal(self, v: Version) -> bool:
        c = self.version
        if self.wildcard is None:
            return v <= c
        if v.major > c.major:
            return False
        # `<=*` is `<=0.0.x` in Masterminds, because the wildcard major is not "minor".
        return not (v.major == c.major and v.minor > c.minor and self.wildcard != "minor")

    def _tilde(self, v: Version) -> bool:
        c = self.version
        if v < c:
            return False
        if self.wildcard in (None, "major") and (c.major, c.minor, c.patch) == (0, 0, 0):
            return True
        if v.major != c.major:
            return False
        return v.minor == c.minor or self.wildcard == "minor"

    def _caret(self, v: Version) -> bool:
        c = self.version
        if v < c:
            return False
        if c.major > 0 or self.wildcard == "minor":
            return v.major == c.major
        if v.major > 0:
            return False
        if c.minor > 0 or self.wildcard == "patch":
            return v.minor == c.minor
        if v.minor > 0:
            return False
        # Also reached by `^*`, which therefore only allows 0.0.0 (Masterminds/semver#317).
        return v.patch == c.patch


@dataclass(frozen=True)
class Constraint:
    """A semver range as Flux's `.spec.ref.semver` takes it: comparisons joined by commas or spaces
    (and), `||` (or), hyphen ranges, `~`, `^` and `x` wildcards."""

    text: str
    _groups: tuple[tuple[_Comparison, ...], ...] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse a range, raising InvalidConstraint where Masterminds' NewConstraint fails."""
        if len(text.encode()) > _MAX_CONSTRAINT_BYTES:
            raise InvalidConstraint(
                text, f"constraint string is too long (max {_MAX_CONSTRAINT_BYTES} bytes)"
            )
        rewritten = _HYPHEN_RANGE.sub(lambda m: f">= {m[1]}, <= {m[2]} ", text)
        or_groups = rewritten.split("||")
        if len(or_groups) > _MAX_OR_GROUPS:
            raise InvalidConstraint(text, f"too many constraint groups (max {_MAX_OR_GROUPS})")
        groups: list[tuple[_Comparison, ...]] = []
        for group in or_groups:
            if _AND_GROUP.fullmatch(group) is None:
                raise InvalidConstraint(text, f"improper constraint: {_quoted(group)}")
            groups.append(tuple(_parse_comparison(text, m[0]) for m in _COMPARISON.finditer(group)))
        return cls(text, tuple(groups))

    def allows(self, version: Version) -> bool:
        """Whether the version is in range; a prerelease only matches an and-group that itself
        names a prerelease (`>=1.2.3-0`), as in Masterminds."""
        for group in self._groups:
            include_prerelease = any(c.version.prerelease for c in group)
            if all(c.allows(version, include_prerelease) for c in group):
                return True
        return False

    def __str__(self) -> str:
        return self.text


def _parse_comparison(text: str, comparison: str) -> _Comparison:
    match = _COMPARISON_PARTS.fullmatch(comparison)
    assert match is not None, comparison  # the and-group pattern has already matched it
    major, minor, patch = (match[name] or "" for name in ("major", "minor", "patch"))
    prerelease = f"-{match['prerelease']}" if match["prerelease"] else ""
    wildcard: _Wildcard | None = None
    version_text = match["version"]
    if major in _WILDCARDS:
        wildcard, version_text = "major", f"0.0.0{prerelease}"
    elif not minor or minor in _WILDCARDS:
        wildcard, version_text = "minor", f"{major}.0.0{prerelease}"
    elif not patch or patch in _WILDCARDS:
        wildcard, version_text = "patch", f"{major}.{minor}.0{prerelease}"
    version = parse_version(version_text)
    if version is None:
        raise InvalidConstraint(text, f"improper constraint: {_quoted(comparison)}")
    return _Comparison(_OPERATORS_BY_SPELLING[match["operator"]], version, wildcard)


def _quoted(text: str) -> str:
    # Close to Go's %q, which Masterminds uses in its messages.
    return json.dumps(text, ensure_ascii=False)


def latest(tags: Iterable[str], constraint: Constraint) -> str | None:
    """The tag of the highest version in range, as Flux picks an OCIRepository's `semver` tag; of
    tags naming the same version (`1.0.0`, `v1.0.0`) the lexically greatest wins."""
    candidates = [
        (version, tag)
        for tag in tags
        if (version := _parse_tag(tag)) is not None and constraint.allows(version)
    ]
    return max(candidates)[1] if candidates else None
