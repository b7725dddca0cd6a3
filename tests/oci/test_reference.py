from __future__ import annotations

import pytest

from tidegate.oci import InvalidReference, Reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci://ghcr.io/org/app:v1.0.0", ("ghcr.io", "org/app", "v1.0.0", None)),
        ("127.0.0.1:5000/app", ("127.0.0.1:5000", "app", None, None)),
        (f"localhost:5000/a/b/c:main@{DIGEST}", ("localhost:5000", "a/b/c", "main", DIGEST)),
        (f"oci://registry.example.com/app@{DIGEST}", ("registry.example.com", "app", None, DIGEST)),
    ],
)
def test_parse(text: str, expected: tuple[str, str, str | None, str | None]) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expected
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text",
    ["app:v1", "oci://", "ghcr.io/Org/App:v1", "ghcr.io/app:bad/tag", "ghcr.io/app@sha256:xyz",
     "ghcr.io/app:-x", "ghcr.io//app"],
)  # fmt: skip
def test_invalid(text: str) -> None:
    with pytest.raises(InvalidReference, match="invalid reference"):
        Reference.parse(text)


def test_identifier_and_url() -> None:
    ref = Reference.parse("ghcr.io/app")
    assert ref.identifier == "latest"
    assert ref.with_tag("v2").url == "oci://ghcr.io/app:v2"
    assert ref.with_digest(DIGEST).identifier == DIGEST
