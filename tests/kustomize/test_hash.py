"""The content hash suffix; every expected value was printed by `kubectl kustomize` (v5.5.0)."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.kustomize._hash import apply_hash_suffixes, content_hash, go_json
from tidegate.kustomize._resource import Resource, ResourceList


def _cm(name: str = "cm", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}


def _secret(type_: str = "Opaque", **fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "type": type_,
        **fields,
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_cm(data={"x": "1", "y": "hello"}), "877gg4b757"),
        (_cm(data={"a": "1", "b": "1"}), "8gchk5bfmb"),
        (_cm(data={"a": "1", "b": "2"}), "7gdc49gk6d"),
        (_cm(), "6ct58987ht"),
        (
            _cm(
                data={"a.txt": "hello\nworld\n", "renamed": "hello\nworld\n"},
                binaryData={"bin.dat": "AAH//g=="},
            ),
            "d96tgtf2b9",
        ),
        (_cm(data={"bom.txt": "\ufeffx"}), "ffkk5985k5"),
        (_secret(data={"x": "MQ=="}), "bf2648c599"),
        (_secret("kubernetes.io/tls", data={"x": "MQ=="}), "79cg2k2tfk"),
        (_secret(data={}), "46f8b28mk5"),
        (_secret(data={"a": "MQ==", "b": "Mg=="}), "8fb7cfch84"),
    ],
)
def test_hash_matches_kubectl(obj: dict[str, Any], expected: str) -> None:
    assert content_hash(obj) == expected


def test_hash_ignores_name_labels_and_annotations() -> None:
    # kustomize looks the name up under the key "metadata/name", which never exists.
    plain = _cm("a", data={"x": "1", "y": "hello"})
    other = _cm("b", data={"x": "1", "y": "hello"})
    other["metadata"]["labels"] = {"l": "v"}
    assert content_hash(plain) == content_hash(other) == "877gg4b757"


def test_hash_escapes_like_go() -> None:
    # Go escapes <, > and & (and U+2028/9) in JSON strings; kubectl printed 7c92b4fm2b.
    weird = "tab\there\x01\x1b\x7f\u2028 ünï <b>&amp;\r\n\b\f"
    obj = _cm(data={"weird.txt": weird, "html": '<a href="x">&</a>', "uni": "日本"})
    assert content_hash(obj) == "7c92b4fm2b"
    assert go_json({"k": "<&>"}) == '{"k":"\\u003c\\u0026\\u003e"}'


def test_suffix_goes_on_generated_objects_only() -> None:
    generated = Resource(_cm("cfg", data={"x": "1", "y": "hello"}), needs_hash=True)
    plain = Resource(_cm("plain", data={"x": "1"}))
    resources = ResourceList([generated, plain])
    apply_hash_suffixes(resources)
    assert [r.name for r in resources] == ["cfg-877gg4b757", "plain"]
    assert [p.name for p in generated.previous] == ["cfg"]
