#!/usr/bin/env python3
"""Write src/tidegate/kustomize/data/merge_keys.json: the merge keys and patch strategies that
kustomize takes from the Kubernetes OpenAPI schema.

Two documents are read:

- the test environment's apiserver `/openapi/v2` (TIDEGATE_DEV_DIR when it holds a running
  environment, else a temporary one started for the run);
- the document kustomize itself embeds (kyaml/openapi/kubernetesapi): kustomize v5.5.0 ships the
  Kubernetes v1.21.2 schema, gzipped protobuf, inside every kubectl that embeds it.

kustomize merges with its embedded document, never with the cluster's, so the data file is written
from that one when a kubectl holding it is found (`--kubectl PATH`, else `kubectl` and its
`kubectl.*` siblings on PATH): strategic merge patches then merge and replace exactly the lists
kustomize merges and replaces. The script prints where the apiserver's document differs.
`--source apiserver` writes the apiserver's view instead (newer fields such as
`schedulingGates` then merge by key where kustomize replaces them).

Only what kustomize's walker reads is kept: for each definition, the fields that lead to a list
with `x-kubernetes-patch-strategy` (with `x-kubernetes-patch-merge-key`, or
`x-kubernetes-list-map-keys` when present, which kyaml prefers). kustomize also reads which
kinds are cluster scoped from the document's paths: the script checks that against
`_resource.is_cluster_scoped`.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "src" / "tidegate" / "kustomize" / "data" / "merge_keys.json"
KUSTOMIZE_VERSION = "v5.5.0"

Schema = dict[str, Any]


# -- the apiserver's document ------------------------------------------------------------------


async def _fetch_openapi(kubeconfig: Path) -> dict[str, Any]:
    from tidegate.kube import Client

    async with await Client.connect(str(kubeconfig)) as client:
        document = await client.request("GET", "/openapi/v2")
        crds = await client.request(
            "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        )
    # Kinds served by CRDs of the test environment are no part of Kubernetes' schema.
    crd_groups = {item["spec"]["group"] for item in crds.get("items", [])}
    document["x-crd-groups"] = sorted(crd_groups)
    return document


def apiserver_document() -> tuple[dict[str, Any], str]:
    """`/openapi/v2` of the test environment, and the Kubernetes version that served it."""
    from tidegate.testing import Environment

    directory = os.environ.get("TIDEGATE_DEV_DIR")
    if directory and Environment(directory).running():
        document = asyncio.run(_fetch_openapi(Environment(directory).kubeconfig))
    else:
        with (
            tempfile.TemporaryDirectory(prefix="tidegate-openapi-") as tmp,
            Environment(tmp, log=lambda msg: print(msg, file=sys.stderr)) as env,
        ):
            document = asyncio.run(_fetch_openapi(env.kubeconfig))
    return document, str(document.get("info", {}).get("version", "?"))


def from_json_document(document: dict[str, Any]) -> tuple[dict[str, Schema], dict[str, bool]]:
    """Definitions and the scope of each kind (True when namespaced) of a JSON OpenAPI v2."""
    crd_groups = set(document.get("x-crd-groups", []))
    definitions: dict[str, Schema] = {}
    for name, schema in document.get("definitions", {}).items():
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        if any(g.get("group") in crd_groups for g in gvks):
            continue
        definitions[name] = schema
    scopes: dict[str, bool] = {}
    for path, item in document.get("paths", {}).items():
        gvk = (item.get("get") or {}).get("x-kubernetes-group-version-kind")
        if isinstance(gvk, dict) and gvk.get("group") not in crd_groups:
            _record_scope(scopes, path, gvk)
    return definitions, scopes


# -- kustomize's embedded document -------------------------------------------------------------


def _kubectl_candidates(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    found = shutil.which("kubectl")
    if not found:
        return []
    real = Path(found).resolve()
    siblings = sorted(real.parent.glob("kubectl.*"), reverse=True)
    return [real, *siblings]


def _kustomize_version(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "version", "--client"], capture_output=True, text=True, timeout=30
        ).stdout
    except OSError:
        return ""
    match = re.search(r"Kustomize Version: (\S+)", out)
    return match.group(1) if match else ""


def _embedded_swaggers(binary: Path) -> Iterator[bytes]:
    """The gzipped OpenAPI v2 protobuf documents inside a Go binary (go:embed keeps them whole)."""
    data = binary.read_bytes()
    for match in re.finditer(rb"\x1f\x8b\x08", data):
        try:
            raw = zlib.decompressobj(31).decompress(
                data[match.start() : match.start() + 64_000_000]
            )
        except zlib.error:
            continue
        # A swagger document starts with field 1 (swagger: "2.0") then field 2 (info).
        if raw.startswith(b"\n\x032.0\x12") and b"x-kubernetes-group-version-kind" in raw:
            yield raw


def kustomize_document(explicit: str | None) -> tuple[bytes, str]:
    """kustomize's embedded Kubernetes schema, from the first kubectl that embeds kustomize
    `KUSTOMIZE_VERSION`, and the binary it came from."""
    for binary in _kubectl_candidates(explicit):
        if not binary.is_file():
            continue
        if not explicit and _kustomize_version(binary) != KUSTOMIZE_VERSION:
            continue
        for swagger in _embedded_swaggers(binary):
            return swagger, str(binary)
    raise SystemExit(
        f"no kubectl embedding kustomize {KUSTOMIZE_VERSION} found; pass --kubectl PATH "
        "or --source apiserver"
    )


# The protobuf form (gnostic openapi_v2): only the fields kyaml reads are decoded.


def _fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 2:
            length, i = _varint(buf, i)
            yield number, buf[i : i + length]
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def _named(buf: bytes) -> tuple[str, bytes]:
    name, value = "", b""
    for number, field in _fields(buf):
        if number == 1:
            name = field.decode()
        elif number == 2:
            value = field
    return name, value


def _any_value(buf: bytes) -> Any:
    for number, field in _fields(buf):
        if number == 2:  # Any.yaml
            return yaml.safe_load(field.decode())
    return None


def _pb_schema(buf: bytes) -> Schema:
    schema: Schema = {}
    for number, field in _fields(buf):
        if number == 1:
            schema["$ref"] = field.decode()
        elif number == 21:  # additional_properties: AdditionalPropertiesItem
            for inner, value in _fields(field):
                if inner == 1:
                    schema["additionalProperties"] = _pb_schema(value)
        elif number == 22:  # type: TypeItem
            schema["type"] = [v.decode() for inner, v in _fields(field) if inner == 1]
        elif number == 23:  # items: ItemsItem
            items = [_pb_schema(v) for inner, v in _fields(field) if inner == 1]
            if len(items) == 1:
                schema["items"] = items[0]
        elif number == 25:  # properties
            schema["properties"] = {
                name: _pb_schema(value)
                for name, value in (_named(v) for inner, v in _fields(field) if inner == 1)
            }
        elif number == 31:  # vendor_extension
            name, value = _named(field)
            schema[name] = _any_value(value)
    return schema


def from_protobuf_document(raw: bytes) -> tuple[dict[str, Schema], dict[str, bool], str]:
    definitions: dict[str, Schema] = {}
    scopes: dict[str, bool] = {}
    version = "?"
    for number, field in _fields(raw):
        if number == 2:  # info
            for inner, value in _fields(field):
                if inner == 2:
                    version = value.decode()
        elif number == 8:  # paths
            for inner, value in _fields(field):
                if inner != 2:
                    continue
                path, item = _named(value)
                for op_number, operation in _fields(item):
                    if op_number != 2:  # get
                        continue
                    for ext_number, ext in _fields(operation):
                        if ext_number == 13:
                            name, any_value = _named(ext)
                            if name == "x-kubernetes-group-version-kind":
                                _record_scope(scopes, path, _any_value(any_value))
        elif number == 9:  # definitions
            for inner, value in _fields(field):
                if inner == 1:
                    name, schema = _named(value)
                    definitions[name] = _pb_schema(schema)
    return definitions, scopes, version


# -- the compact form --------------------------------------------------------------------------


def _api_version(gvk: dict[str, str]) -> str:
    group, version = gvk.get("group", ""), gvk.get("version", "")
    return f"{group}/{version}" if group else version


def _record_scope(scopes: dict[str, bool], path: str, gvk: Any) -> None:
    # kyaml's findNamespaceability: namespaced if any GET path of the kind has a namespace.
    if not isinstance(gvk, dict) or "kind" not in gvk:
        return
    key = f"{_api_version(gvk)} {gvk['kind']}"
    if "namespaces/{namespace}" in path:
        scopes[key] = True
    else:
        scopes.setdefault(key, False)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _is_array(schema: Schema) -> bool:
    kind = schema.get("type")
    return kind == "array" or kind == ["array"]


def _compact_node(
    schema: Schema, definitions: dict[str, Schema], useful: set[str]
) -> dict[str, Any] | None:
    """kyaml's view of one schema: a ref replaces the whole schema; an array's items count only
    when the type is exactly `array`; None when no list below has a patch strategy."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return {"r": name} if name in useful else None
    node: dict[str, Any] = {}
    strategy = schema.get("x-kubernetes-patch-strategy")
    # kyaml consults a strategy only where it walks a list (metav1's LabelSelectorRequirement
    # puts one on the string `key`, which no list merge ever reads).
    if strategy and _is_array(schema):
        node["s"] = strategy
        keys = schema.get("x-kubernetes-list-map-keys")
        if not keys and schema.get("x-kubernetes-patch-merge-key"):
            keys = [schema["x-kubernetes-patch-merge-key"]]
        if keys:
            node["k"] = list(keys)
    properties = {}
    for field, value in (schema.get("properties") or {}).items():
        compact = _compact_node(value, definitions, useful)
        if compact is not None:
            properties[field] = compact
    if properties:
        node["p"] = properties
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        compact = _compact_node(additional, definitions, useful)
        if compact is not None:
            node["a"] = compact
    items = schema.get("items")
    if _is_array(schema) and isinstance(items, dict):
        compact = _compact_node(items, definitions, useful)
        if compact is not None:
            node["i"] = compact
    return node or None


def compact(definitions: dict[str, Schema], source: str) -> dict[str, Any]:
    # Which definitions lead to a patch strategy: grow the set until it stops changing.
    useful: set[str] = set()
    while True:
        grown = {
            name
            for name, schema in definitions.items()
            if name not in useful and _compact_node(schema, definitions, useful) is not None
        }
        if not grown:
            break
        useful |= grown
    compact_definitions = {}
    for name in sorted(useful):
        node = _compact_node(definitions[name], definitions, useful)
        assert node is not None
        compact_definitions[name] = node
    kinds: dict[str, dict[str, str]] = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if name in useful:
                kinds.setdefault(_api_version(gvk), {})[gvk["kind"]] = name
    return {
        "source": source,
        "kinds": {k: dict(sorted(v.items())) for k, v in sorted(kinds.items())},
        "definitions": compact_definitions,
    }


def check_scopes(scopes: dict[str, bool]) -> None:
    """kustomize also reads from its document which kinds are cluster scoped; tidegate keeps
    that list in `_resource`. Say so when the document disagrees with it."""
    from tidegate.kustomize._resource import is_cluster_scoped

    for key, namespaced in sorted(scopes.items()):
        api_version, kind = key.split(" ")
        if is_cluster_scoped(api_version, kind) == namespaced:
            scope = "namespaced" if namespaced else "cluster scoped"
            print(f"warning: {key} is {scope} in the document, not in _resource.is_cluster_scoped")


# -- comparing ---------------------------------------------------------------------------------


def _strategies(data: dict[str, Any]) -> dict[str, dict[str, tuple[str, tuple[str, ...]]]]:
    """For each kind, the field paths with a patch strategy (`[]` for list elements)."""
    definitions = data["definitions"]
    result: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {}

    def walk(node: dict[str, Any], path: list[str], out: dict[str, Any], seen: list[str]) -> None:
        if "r" in node:
            if node["r"] in seen:
                return
            seen = [*seen, node["r"]]
            node = definitions[node["r"]]
        if "s" in node:
            out[".".join(path)] = (node["s"], tuple(node.get("k", ())))
        for field, child in node.get("p", {}).items():
            walk(child, [*path, field], out, seen)
        if "a" in node:
            walk(node["a"], [*path, "*"], out, seen)
        if "i" in node:
            walk(node["i"], [*path, "[]"], out, seen)

    for api_version, kinds in data["kinds"].items():
        for kind, name in kinds.items():
            if kind.endswith("List"):
                continue
            out: dict[str, Any] = {}
            walk({"r": name}, [], out, [])
            result[f"{api_version} {kind}"] = out
    return result


def report_differences(ours: dict[str, Any], theirs: dict[str, Any], label: str) -> None:
    a, b = _strategies(ours), _strategies(theirs)
    only_ours = sorted(set(a) - set(b))
    only_theirs = sorted(set(b) - set(a))
    print(f"kinds only in the written data ({len(only_ours)}): {', '.join(only_ours)}")
    print(f"kinds only in {label} ({len(only_theirs)}): {', '.join(only_theirs)}")
    for kind in sorted(set(a) & set(b)):
        for path in sorted(set(a[kind]) | set(b[kind])):
            if a[kind].get(path) != b[kind].get(path):
                print(f"  {kind} {path}: written {a[kind].get(path)}, {label} {b[kind].get(path)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=["kustomize", "apiserver"], default="kustomize")
    parser.add_argument(
        "--kubectl", help="a kubectl binary embedding kustomize " + KUSTOMIZE_VERSION
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    server_doc, server_version = apiserver_document()
    server_defs, server_scopes = from_json_document(server_doc)
    server_data = compact(server_defs, f"Kubernetes {server_version} apiserver")
    if args.source == "apiserver":
        data = server_data
        check_scopes(server_scopes)
    else:
        raw, binary = kustomize_document(args.kubectl)
        k_defs, k_scopes, k_version = from_protobuf_document(raw)
        source = f"kustomize {KUSTOMIZE_VERSION} built-in OpenAPI (Kubernetes {k_version})"
        print(f"kustomize's schema: Kubernetes {k_version}, embedded in {binary}")
        data = compact(k_defs, source)
        check_scopes(k_scopes)
        report_differences(data, server_data, f"the {server_version} apiserver")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, sort_keys=True, indent=1, separators=(",", ":")) + "\n"
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text)} bytes, {len(data['definitions'])} definitions)")
    # gzip size, for the curious: the file is read once per process.
    print(f"  ({len(gzip.compress(text.encode()))} bytes gzipped)")


if __name__ == "__main__":
    main()
