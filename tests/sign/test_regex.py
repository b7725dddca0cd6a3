"""Go regexp semantics (regexp.MatchString) of the identity expressions."""

from __future__ import annotations

import pytest

from tidegate.sign._regex import go_search

WORKFLOW = "https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        # Unanchored, as Go's MatchString: anchors must be written.
        ("^https://github.com/org/.*$", WORKFLOW, True),
        ("github.com/org/", WORKFLOW, True),
        ("^github.com/org/", WORKFLOW, False),
        ("^https://github.com/other/.*$", WORKFLOW, False),
        ("", "anything", True),
        # `$` without (?m) is the end of the text only, not before a final newline.
        ("abc$", "abc\n", False),
        ("abc$", "abc", True),
        (r"abc\z", "abc\n", False),
        (r"abc\z", "abc", True),
        ("(?m)abc$", "abc\ndef", True),
        ("(?m)^def", "abc\ndef", True),
        ("^def", "abc\ndef", False),
        (r"\Aabc", "abc", True),
        # Perl classes and word boundaries are ASCII in Go.
        (r"\d", "\u0663", False),
        (r"\d", "7", True),
        (r"\w", "\u00e9", False),
        (r"\s", "\v", False),
        (r"\s", "\t", True),
        (r"\bfoo\b", "\u00e9foo", True),
        (r"\D", "\u0663", True),
        # Unicode classes.
        (r"\pL+", "\u00e9", True),
        (r"\p{Lu}", "a", False),
        (r"\p{Lu}", "A", True),
        (r"\PL", "a", False),
        (r"\p{^L}", "1", True),
        (r"[\pN]", "\u0663", True),
        # POSIX classes (ASCII).
        ("[[:alpha:]]", "\u00e9", False),
        ("[[:^alpha:]]", "\u00e9", True),
        ("[[:digit:]x]", "x", True),
        # Classes with negated parts.
        (r"[^\d]", "5", False),
        (r"[\D]", "5", False),
        (r"[\Da]", "a", True),
        (r"[\Da]", "5", False),
        (r"[^\Da]", "5", True),
        (r"[^\Da]", "a", False),
        ("[]a]", "]", True),
        ("[a-c]+", "b", True),
        ("[a-]", "-", True),
        ("[^a]", "\n", True),
        # Flags, scoped to the rest of the enclosing group, across alternation.
        ("(?i)ABC", "xabcx", True),
        ("a(?i)b|c", "C", True),
        ("a(?i)b|c", "Ab", False),
        ("(?i:a)b", "AB", False),
        ("(?i)[a-c]", "B", True),
        ("(a(?i)b)c", "aBC", False),
        ("(a(?i)b)c", "aBc", True),
        ("(?s).", "\n", True),
        (".", "\n", False),
        ("(?s:.)x(?-s).", "\nx\n", False),
        # (?U) swaps greedy and lazy; only visible with anchors here.
        ("^(?U)a+$", "aaa", True),
        # Counted repetition; `{` that starts no count is a literal.
        ("^a{2}$", "aa", True),
        ("^a{2,}$", "aaaa", True),
        ("^a{1,2}$", "aaa", False),
        ("x{,2}", "x{,2}", True),
        ("x{a}", "x{a}", True),
        # Escapes.
        (r"\Q.*\E", "a", False),
        (r"\Q.*\E", "x.*", True),
        (r"\x41", "A", True),
        (r"\x{1F600}", "\U0001f600", True),
        (r"\101", "A", True),
        (r"\.", ".", True),
        (r"\.", "a", False),
        # Named groups in both spellings.
        ("(?P<n>a)(?<m>b)", "ab", True),
        ("(?:a|b)+c", "abac", True),
        # Empty-width assertions may be repeated in Go.
        ("^*a", "a", True),
    ],
)
def test_go_search_matches_as_go_does(pattern: str, text: str, matches: bool) -> None:
    assert go_search(pattern, text) is matches


@pytest.mark.parametrize(
    "pattern",
    [
        r"abc\Z",  # \Z is not RE2
        "a*+",  # possessive
        "a**",
        "a{2}*",
        "(?=a)",
        "(?!a)",
        "(?<=a)",
        "(?<!a)",
        "(?>a)",
        r"(a)\1",
        r"\C",
        "a{1001}",
        "a{3,2}",
        "*a",
        "(?i)*",
        "(|*)",
        "(?#comment)",
        "(?x)a",
        "(?P=n)",
        "[a",
        "(a",
        "a)",
        r"\p{Greek}",  # scripts: no table in Python's stdlib
        "(?P<a>x)(?P<a>y)",
        "(?P<a-b>x)",
        "(?)",
        "(?i-)",
        r"\8",
        "[z-a]",
        "a\\",
        r"[\b]",
        "[[:nope:]]",
    ],
)
def test_go_search_rejects_what_go_rejects(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid Go regular expression"):
        go_search(pattern, "")
