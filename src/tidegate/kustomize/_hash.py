"""The content hash kustomize appends to the names of generated ConfigMaps and Secrets.

kustomize (`api/hasher`) encodes a ConfigMap as the JSON object `{data, kind, name}` (plus
`binaryData` when it is a mapping) and a Secret as `{data, kind, name, type}` (plus
`stringData`), hashes it with SHA-256 and keeps the first ten hex digits, with `0 1 3 a e`
replaced by `g h k m t` so that the suffix never reads as a number or a word. The `name` it
hashes is always empty: it looks the name up with the single key `metadata/name`, which no
object has. Other kinds are hashed as their whole JSON encoding.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ._resource import ResourceList

_ENCODE = str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"})

# Go's encoding/json escapes these even inside strings; Python's does not.
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_json(value: object) -> str:
    """`json.Marshal` of Go: sorted keys, no spaces, raw UTF-8, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def encode_hash(encoded: str) -> str:
    digest = hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:10].translate(_ENCODE)


def _map_or_empty(value: object) -> object:
    # kustomize reads mappings as JSON objects and anything else as its text; a missing
    # field counts as the empty string.
    if value is None:
        return ""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


def content_hash(obj: dict[str, Any]) -> str:
    """The ten-character suffix kustomize computes for this object."""
    kind = obj.get("kind")
    if kind == "ConfigMap":
        fields: dict[str, object] = {
            "kind": "ConfigMap",
            "name": "",
            "data": _map_or_empty(obj.get("data")),
        }
        if isinstance(obj.get("binaryData"), dict):
            fields["binaryData"] = _map_or_empty(obj["binaryData"])
        return encode_hash(go_json(fields))
    if kind == "Secret":
        fields = {
            "kind": "Secret",
            "type": _map_or_empty(obj.get("type")),
            "name": "",
            "data": _map_or_empty(obj.get("data")),
        }
        if isinstance(obj.get("stringData"), dict):
            fields["stringData"] = _map_or_empty(obj["stringData"])
        return encode_hash(go_json(fields))
    return encode_hash(go_json(obj))


def apply_hash_suffixes(resources: ResourceList) -> None:
    """Append `-<hash>` to the name of every resource whose generator asked for it.

    kustomize does this once per build, for the top-level kustomization only: after all
    resources of every level have been accumulated and the top level's transformers have run
    (so the hash covers the final data, and the name already carries every prefix and
    suffix), and right before name references are fixed (`fix_name_references`), which then
    carries the hashed names into Deployments, Pods and the rest. Nested kustomizations
    never hash. The rename is recorded through `Resource.set_name`.
    """
    for resource in resources:
        if resource.needs_hash:
            resource.set_name(f"{resource.name}-{content_hash(resource.obj)}")
