"""Errors of the OCI client and the artifact format, one hierarchy under `OCIError`."""

from __future__ import annotations


class OCIError(Exception):
    """Base class of every error raised by `tidegate.oci`."""


class InvalidReference(OCIError):
    """A reference that does not parse as `host[:port]/repo[:tag][@digest]`."""


class RegistryError(OCIError):
    """The registry answered with an error; carries its own error code and message."""

    def __init__(self, reference: str, status: int, code: str, message: str) -> None:
        detail = f"{code}: {message}" if code and message else code or message or f"HTTP {status}"
        super().__init__(f"'{reference}': {detail}")
        self.reference = reference
        self.status = status
        self.code = code
        self.message = message


class AuthenticationFailed(RegistryError):
    """The registry (or its token service) refused the credentials."""


class NotFound(RegistryError):
    """Manifest, blob or repository unknown to the registry."""


class DigestMismatch(OCIError):
    """Content read from the registry does not hash to the digest it was asked for."""


class ArtifactError(OCIError):
    """An artifact that is not what it should be: wrong media types, missing layer, …"""


class UnsafeArchive(ArtifactError):
    """An archive entry that would escape the output folder, a special file, or a bomb."""
