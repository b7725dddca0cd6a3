"""Kubernetes label selectors (`app=web,tier in (fe,be),!legacy`), as kustomize selects objects
for patches and replacements by their labels and annotations."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from ._errors import KustomizeError


@functools.lru_cache(maxsize=256)
def parse_label_selector(text: str) -> LabelSelector:
    """The selector `text` means, parsed with apimachinery's grammar and error wording."""
    return LabelSelector.parse(text)


class LabelSelector:
    """A Kubernetes label selector (`app=web,tier in (fe,be),!legacy`), parsed and matched as
    apimachinery's labels.Parse does (kustomize vendors it)."""

    def __init__(self, requirements: list[tuple[str, str, frozenset[str]]]) -> None:
        self.requirements = requirements

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        return cls(_SelectorParser(text).parse())

    def matches(self, labels: dict[str, str]) -> bool:
        for key, operator, values in self.requirements:
            present = key in labels
            if operator in ("in", "=", "=="):
                ok = present and labels[key] in values
            elif operator in ("notin", "!="):
                ok = not present or labels[key] not in values
            elif operator == "exists":
                ok = present
            elif operator == "!":
                ok = not present
            else:  # ">" and "<" compare integers
                ok = present and _compare(labels[key], operator, next(iter(values)))
            if not ok:
                return False
        return True


def _compare(label: str, operator: str, value: str) -> bool:
    if not re.fullmatch(r"[+-]?[0-9]+", label):
        return False
    return int(label) > int(value) if operator == ">" else int(label) < int(value)


_SPECIAL = "=!(),<>"
_OPERATORS = ("!=", "==", "=", "!", "(", ")", ",", ">", "<")


class _SelectorParser:
    """apimachinery's selector lexer and parser, messages included."""

    def __init__(self, text: str) -> None:
        self.tokens = list(self._lex(text))
        self.position = 0

    @staticmethod
    def _lex(text: str) -> Iterable[tuple[str, str]]:
        i = 0
        while i < len(text):
            ch = text[i]
            if ch in " \t\r\n":
                i += 1
                continue
            if ch in _SPECIAL:
                for op in _OPERATORS:
                    if text.startswith(op, i):
                        yield op, op
                        i += len(op)
                        break
                continue
            start = i
            while i < len(text) and text[i] not in _SPECIAL and text[i] not in " \t\r\n":
                i += 1
            word = text[start:i]
            yield ("in" if word == "in" else "notin" if word == "notin" else "id"), word
        yield "end", ""

    def _peek(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.tokens[self.position]
        if values and kind in ("in", "notin"):
            kind = "id"
        return kind, literal

    def _next(self, values: bool = True) -> tuple[str, str]:
        token = self._peek(values)
        self.position = min(self.position + 1, len(self.tokens) - 1)
        return token

    def parse(self) -> list[tuple[str, str, frozenset[str]]]:
        requirements = []
        while True:
            kind, literal = self._peek()
            if kind in ("id", "!"):
                try:
                    requirements.append(self._requirement())
                except KustomizeError as exc:
                    raise KustomizeError(f"unable to parse requirement: {exc}") from None
                kind, literal = self._next()
                if kind == "end":
                    return requirements
                if kind != ",":
                    raise KustomizeError(f"found '{literal}', expected: ',' or 'end of string'")
                following, literal = self._peek()
                if following not in ("id", "!"):
                    raise KustomizeError(f"found '{literal}', expected: identifier after ','")
            elif kind == "end":
                return requirements
            else:
                raise KustomizeError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )

    def _requirement(self) -> tuple[str, str, frozenset[str]]:
        kind, key = self._next()
        operator = ""
        if kind == "!":
            operator = "!"
            kind, key = self._next()
        if kind != "id":
            raise KustomizeError(f"found '{key}', expected: identifier")
        _validate_label_key(key)
        if operator == "!":
            return key, operator, frozenset()
        if self._peek()[0] in ("end", ","):
            return key, "exists", frozenset()
        kind, literal = self._next(values=False)
        if kind not in ("in", "notin", "=", "==", "!=", ">", "<"):
            raise KustomizeError(f"found '{literal}', expected: '=', '!=', '==', 'in', notin'")
        operator = kind
        if operator in ("in", "notin"):
            values = self._values()
            if not values:
                raise KustomizeError("for 'in', 'notin' operators, values set can't be empty")
        else:
            values = self._exact_value()
        if operator in (">", "<"):
            value = next(iter(values))
            if not re.fullmatch(r"[+-]?[0-9]+", value):
                raise KustomizeError("for 'Gt', 'Lt' operators, the value must be an integer")
        for value in values:
            _validate_label_value(key, value)
        return key, operator, frozenset(values)

    def _values(self) -> set[str]:
        kind, literal = self._next()
        if kind != "(":
            raise KustomizeError(f"found '{literal}' expected: '('")
        kind, literal = self._peek()
        if kind == ")":
            self._next()
            return {""}
        if kind not in ("id", ","):
            raise KustomizeError(f"found '{literal}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            kind, current = self._next()
            if kind == "id":
                values.add(current)
                following, after = self._peek()
                if following == ",":
                    continue
                if following == ")":
                    break
                raise KustomizeError(f"found '{after}', expected: ',' or ')'")
            if kind != ",":
                raise KustomizeError(f"found '{current}', expected: ',', or identifier")
            if not values:
                values.add("")  # "(,"
            following, _ = self._peek()
            if following == ")":
                values.add("")  # ",)"
                break
            if following == ",":
                self._next()
                values.add("")  # ",,"
        if self._next()[0] != ")":
            raise KustomizeError(f"found '{literal}', expected: ')'")
        return values

    def _exact_value(self) -> set[str]:
        kind, literal = self._peek()
        if kind in ("end", ","):
            return {""}
        kind, literal = self._next()
        if kind == "id":
            return {literal}
        raise KustomizeError(f"found '{literal}', expected: identifier")


_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def _validate_label_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    problems = []
    if slash and (not prefix or len(prefix) > 253 or not re.fullmatch(_DNS_SUBDOMAIN, prefix)):
        problems.append(
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not re.fullmatch(_NAME, name):
        problems.append(_NAME_MESSAGE)
    if problems:
        raise KustomizeError(f'invalid label key "{key}": {"; ".join(problems)}')


def _validate_label_value(key: str, value: str) -> None:
    if value == "" or (len(value) <= 63 and re.fullmatch(_NAME, value)):
        return
    problem = (
        "must be no more than 63 characters"
        if len(value) > 63
        else "a valid label must be an empty string or consist of alphanumeric characters, '-', "
        "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    )
    raise KustomizeError(f'invalid label value: "{value}": at key: "{key}": {problem}')
