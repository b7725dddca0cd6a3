from __future__ import annotations

from itertools import pairwise

import pytest

from tidegate.semver import Constraint, InvalidConstraint, Version, latest, parse_version

SIG = "sha256-" + "ab" * 32 + ".sig"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", (1, 2, 3, "", "")),
        ("v1.2.3", (1, 2, 3, "", "")),
        ("1.2", (1, 2, 0, "", "")),
        ("v1", (1, 0, 0, "", "")),
        ("1.2.3-rc.1+build.5", (1, 2, 3, "rc.1", "build.5")),
        ("1.2-beta.5", (1, 2, 0, "beta.5", "")),
        ("1.2.3-alpha.-1", (1, 2, 3, "alpha.-1", "")),
        ("1.2.3+meta-with-hyphen", (1, 2, 3, "", "meta-with-hyphen")),
        # Masterminds coerces leading zeros (CalVer) and reads a bare date-ish tag as a major.
        ("2025.01.02", (2025, 1, 2, "", "")),
        ("20221209-update-renovatejson-v4", (20221209, 0, 0, "update-renovatejson-v4", "")),
        ("18446744073709551615.0.0", (2**64 - 1, 0, 0, "", "")),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int, str, str]) -> None:
    version = parse_version(text)
    assert version is not None
    assert (version.major, version.minor, version.patch) == expected[:3]
    assert (version.prerelease, version.metadata) == expected[3:]
    assert version.original == text


@pytest.mark.parametrize(
    "text",
    [
        "", "V1.2.3", "vv1.2.3", "1.2.3.4", "1.2.beta", "foo", "latest", "main-abc123", SIG,
        "1.2.3-alpha.01", "1.2.3-", "1.2.3+", "1.2.3-rc..1", " 1.2.3", "1.2.3\n", "1.2.3-é",
        "18446744073709551616.0.0", "1." + "1" * 255,
    ],
)  # fmt: skip
def test_parse_version_rejects(text: str) -> None:
    assert parse_version(text) is None


def test_str_is_canonical_and_original_is_kept() -> None:
    version = parse_version("v1.2-rc.1+b")
    assert version is not None
    assert (str(version), version.original) == ("1.2.0-rc.1+b", "v1.2-rc.1+b")
    assert Version(1, 2, 3).original == "1.2.3"


def test_precedence_follows_semver() -> None:
    ordered = [
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
        "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "v1.1", "1.10.0", "2.0.0",
    ]  # fmt: skip
    versions = [v for text in ordered if (v := parse_version(text)) is not None]
    assert len(versions) == len(ordered)
    assert sorted(reversed(versions)) == versions
    assert all(a < b for a, b in pairwise(versions))


def test_build_metadata_and_prefix_do_not_affect_equality() -> None:
    a, b = parse_version("1.0.0+build.1"), parse_version("v1.0.0+build.2")
    assert a == b
    assert hash(a) == hash(b)
    assert a != parse_version("1.0.0-0")


@pytest.mark.parametrize(
    ("constraint", "version", "allowed"),
    [
        # Comparisons, with and without an operator, and Masterminds' alternative spellings.
        ("=1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.4", False),
        ("=1.2.3", "1.2.3+build.7", True),
        ("!=1.2.3", "1.2.3", False),
        ("!=1.2.3", "1.2.4", True),
        (">1.2.3", "1.2.4", True),
        (">1.2.3", "1.2.3", False),
        ("<1.2.3", "1.2.2", True),
        ("<1.2.3", "1.2.3", False),
        (">=1.2.3", "1.2.3", True),
        (">=1.2.3", "1.2.2", False),
        ("<=1.2.3", "1.2.3", True),
        ("<=1.2.3", "1.2.4", False),
        ("=>1.2", "1.2.0", True),
        ("=<1.2", "1.2.9", True),
        ("= 1.2.3", "1.2.3", True),
        # Missing parts: `>1.1` means 1.2.0 or above, `<=1.1` means 1.1.x or below.
        (">1.1", "1.1.5", False),
        (">1.1", "1.2.0", True),
        ("<=1.1", "1.1.9", True),
        ("<=1.1", "1.2.0", False),
        ("1.2", "1.2.7", True),
        ("1.2", "1.3.0", False),
        # `v` prefixes in ranges.
        ("v1.2.3", "1.2.3", True),
        (">=v1.2", "v1.5.0", True),
        # Tilde.
        ("~1.2.3", "1.2.9", True),
        ("~1.2.3", "1.2.2", False),
        ("~1.2.3", "1.3.0", False),
        ("~1.2", "1.2.0", True),
        ("~1.2", "1.3.0", False),
        ("~1", "1.9.9", True),
        ("~1", "2.0.0", False),
        ("~>1.2.3", "1.2.5", True),
        ("~0.2.3", "0.2.9", True),
        ("~0.2.3", "0.3.0", False),
        # Caret, including the 0.x rules.
        ("^1.2.3", "1.2.3", True),
        ("^1.2.3", "1.9.9", True),
        ("^1.2.3", "2.0.0", False),
        ("^1.2.3", "1.2.2", False),
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("^0.2.3", "0.2.2", False),
        ("^0.0.3", "0.0.3", True),
        ("^0.0.3", "0.0.4", False),
        ("^0.0", "0.0.9", True),
        ("^0.0", "0.1.0", False),
        ("^0", "0.9.9", True),
        ("^0", "1.0.0", False),
        ("^1.x", "1.9.0", True),
        ("^1.x", "2.0.0", False),
        # Masterminds' `^*` only allows 0.0.0 (Masterminds/semver#317); Flux behaves the same.
        ("^*", "0.0.0", True),
        ("^*", "1.0.0", False),
        # Wildcards.
        ("1.2.x", "1.2.7", True),
        ("1.2.x", "1.3.0", False),
        ("1.2.*", "1.2.0", True),
        ("1.x", "1.9.9", True),
        ("1.X", "1.0.0", True),
        ("1.x", "2.0.0", False),
        ("*", "3.4.5", True),
        ("x", "0.0.1", True),
        ("X", "10.0.0", True),
        ("!=1.x", "1.5.0", False),
        ("!=1.x", "2.0.0", True),
        ("<1.x", "0.9.9", True),
        ("<1.x", "1.0.0", False),
        # Hyphen ranges are inclusive at both ends.
        ("1.2 - 1.4.5", "1.2.0", True),
        ("1.2 - 1.4.5", "1.4.5", True),
        ("1.2 - 1.4.5", "1.4.6", False),
        ("1.2 - 1.4.5", "1.1.9", False),
        ("1.0.0 - 2.0.0, !=1.5.0", "1.5.0", False),
        # AND by comma or by space.
        (">=1.2, <2", "1.9.9", True),
        (">=1.2, <2", "2.0.0", False),
        (">= 1.2 < 2", "1.2.0", True),
        (">= 1.2 < 2", "1.1.0", False),
        (">=1.1 <2 !=1.2.3", "1.2.3", False),
        (">=1.1 <2 !=1.2.3", "1.2.4", True),
        # OR.
        ("<1.0.0 || >=2.0.0", "0.9.0", True),
        ("<1.0.0 || >=2.0.0", "1.5.0", False),
        ("<1.0.0 || >=2.0.0", "2.1.0", True),
        ("~1.2 || ^3", "3.9.0", True),
        ("~1.2 || ^3", "1.3.0", False),
        # A prerelease only matches an and-group that names a prerelease itself.
        (">=1.2.3", "1.3.0-beta", False),
        (">=1.2.3-0", "1.3.0-beta", True),
        (">=1.2.3-0", "1.2.3-alpha", True),
        (">=1.2.3-beta", "1.2.3-alpha", False),
        ("*", "1.2.3-alpha.1", False),
        ("*-0", "1.2.3-alpha.1", True),
        ("^1.2.0", "1.2.1-alpha.1", False),
        ("^1.2.0-alpha.0", "1.2.1-alpha.1", True),
        ("~1.2.3-beta.2", "1.2.4-beta.2", True),
        ("~1.2.3-beta.2", "1.3.0-beta.2", False),
        ("1.2.3-rc.1", "1.2.3-rc.1", True),
        ("!=1.2.3", "1.2.4-rc.1", False),
        (">=1.2.3-0, <2", "2.0.0-rc.1", True),
        (">=1.2.3-0 <1.3 || >=2", "2.1.0-rc.1", False),
        (">=1.2.3-0 <1.3 || >=2", "1.2.9-rc.1", True),
    ],
)
def test_constraint_allows(constraint: str, version: str, allowed: bool) -> None:
    parsed = parse_version(version)
    assert parsed is not None
    assert Constraint.parse(constraint).allows(parsed) is allowed


@pytest.mark.parametrize(
    "text",
    [
        "", " ", "foo", ">= bar", "BAR >= 1.2.3", "1.2.3.4", "12.3.34~ 1.2.3", ">=1.2 ||", "||",
        "V1.2.3", ">>1.2", "1.2.3 -1.2.4", ">=1.2,, <2", "1.2.3-01", "x1", "1.2.3.x",
        "~" + "1" * 21, "1" * 513, " || ".join(["1"] * 33),
    ],
)  # fmt: skip
def test_invalid_constraint(text: str) -> None:
    with pytest.raises(InvalidConstraint, match="parse error") as raised:
        Constraint.parse(text)
    assert isinstance(raised.value, ValueError)
    assert str(raised.value).startswith(f"semver '{text}' parse error: ")


def test_invalid_constraint_message_names_the_part() -> None:
    with pytest.raises(InvalidConstraint) as raised:
        Constraint.parse(">=1.0 || foo")
    assert (
        str(raised.value) == """semver '>=1.0 || foo' parse error: improper constraint: " foo\""""
    )


TAGS = [
    "latest", "main-abc123", SIG, "sha256-" + "cd" * 32 + ".att", "0.9.0", "1.0.0", "v1.1.0",
    "1.2.0-rc.1", "1.2", "v2.0.0", "2.0.1-beta.1", "v3.0.0-alpha",
]  # fmt: skip


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        (">=1.0.0 <2.0.0", "v1.1.0"),
        (">=1.2.0-0 <2.0.0", "1.2.0-rc.1"),
        ("*", "v2.0.0"),
        ("~2.0.1-0", "2.0.1-beta.1"),
        ("<1", "0.9.0"),
        ("^3", None),
        # Flux skips tags with fewer than two dots, so `1.2` is no candidate.
        ("~1.2", None),
    ],
)
def test_latest(constraint: str, expected: str | None) -> None:
    assert latest(TAGS, Constraint.parse(constraint)) == expected


def test_latest_of_equal_versions_picks_the_greatest_tag() -> None:
    tags = ["1.0.0+build.2", "v1.0.0", "1.0.0"]
    assert latest(tags, Constraint.parse("1.x")) == "v1.0.0"
    assert latest(reversed(tags), Constraint.parse("1.x")) == "v1.0.0"


def test_latest_takes_calver_tags() -> None:
    tags = ["2024.12.31", "2025.01.02", "2025.1"]
    assert latest(tags, Constraint.parse(">=2025")) == "2025.01.02"


def test_latest_of_no_tags() -> None:
    assert latest([], Constraint.parse("*")) is None
