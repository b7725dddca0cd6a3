"""Errors of a build, worded as kustomize words them: which file, which field, what is wrong."""

from __future__ import annotations


class KustomizeError(Exception):
    """A build failed; the message says where and why."""


def json_kind(value: object) -> str:
    """The JSON type of a decoded value, as Go's encoding/json names it in errors
    (`cannot unmarshal number into Go value of type string`)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
