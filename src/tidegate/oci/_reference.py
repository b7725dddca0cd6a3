"""OCI references: `host[:port]/repository[:tag][@sha256:<hex>]`, optionally `oci://`-prefixed."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ._errors import InvalidReference

SCHEME = "oci://"
# From the distribution spec (reference grammar).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$"
)


@dataclass(frozen=True)
class Reference:
    """Where an artifact lives: registry host, repository, and a tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse `[oci://]host[:port]/repo[:tag][@sha256:…]`; the host is required, as in Flux."""
        raw = text.removeprefix(SCHEME)
        name, at, digest = raw.partition("@")
        if at and not _DIGEST.match(digest):
            raise InvalidReference(f"invalid reference '{text}': digest must be sha256:<64 hex>")
        host, slash, rest = name.partition("/")
        if not slash or not rest or not _HOST.match(host):
            raise InvalidReference(f"invalid reference '{text}': expected host[:port]/repository")
        repository, tag = rest, None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            repository, _, tag = rest.rpartition(":")
            if not _TAG.match(tag):
                raise InvalidReference(f"invalid reference '{text}': bad tag '{tag}'")
        if not _REPOSITORY.match(repository):
            raise InvalidReference(
                f"invalid reference '{text}': repository '{repository}' must be lowercase "
                "path components of letters, digits and separators"
            )
        return cls(host, repository, tag, digest or None)

    @property
    def name(self) -> str:
        """`host/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What goes after `/manifests/`: the digest if known, else the tag (default `latest`)."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        if not _TAG.match(tag):
            raise InvalidReference(f"invalid tag '{tag}'")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def url(self) -> str:
        return SCHEME + str(self)
