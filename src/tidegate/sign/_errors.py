"""The one error of signature verification."""

from __future__ import annotations


class VerificationError(Exception):
    """A signature check failed. The message says which check, and for which artifact."""
