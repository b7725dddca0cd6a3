"""Errors of a build, worded as kustomize words them: which file, which field, what is wrong."""

from __future__ import annotations


class KustomizeError(Exception):
    """A build failed; the message says where and why."""
