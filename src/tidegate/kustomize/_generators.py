"""configMapGenerator and secretGenerator: ConfigMaps and Secrets made from literals, files
and env files, and how they merge with or replace objects of the same id from bases.

Facts from kustomize v5.5.0 (`api/kv`, `api/internal/generators`, `api/resmap`), checked
against `kubectl kustomize`:

- Pairs come from env files first, then literals, then files; a key seen twice is an error.
  Keys are not otherwise validated.
- A literal is `key=value`; a value wrapped in matching single or double quotes loses them.
- A file source is `path` (key: its base name) or `key=path`.
- An env file line is `KEY=value` after leading white space is dropped; empty lines and
  `#` comments are skipped, a line without `=` gives an empty value, the first line loses a
  UTF-8 byte order mark, and a line that is not UTF-8 is an error.
- ConfigMap values that are not UTF-8 go base64-encoded to `binaryData`; Secret values are
  all base64-encoded into `data` (which is always present), and `type` defaults to `Opaque`.
  Base64 of 70 characters or more is cut into lines of 70, each ending with a newline (this
  is part of the content hash too).
- `generatorOptions` merge into each generator's `options`: its labels and annotations win
  over the global ones, and a global `true` for `disableNameSuffixHash` or `immutable` wins.
"""

from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass
from typing import Any

from ._errors import KustomizeError
from ._fieldspecs import (
    bool_value,
    go_resid,
    string_list,
    string_map,
    string_value,
)
from ._hash import go_json
from ._loader import Loader
from ._namereference import copy_name_affixes
from ._resource import ResId, Resource, ResourceList, scalar_text

_BOM = b"\xef\xbb\xbf"

# Go's unicode.IsSpace, which kustomize uses to trim env file lines; Python's str.isspace
# also counts the ASCII separators \x1c-\x1f.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def generate(kustomization: dict[str, Any], loader: Loader) -> list[Resource]:
    """The ConfigMaps and Secrets a kustomization's generators make, in kustomize's order
    (ConfigMaps first), each carrying its `behavior` and whether it `needs_hash`."""
    global_options = _Options.read(kustomization.get("generatorOptions"), "generatorOptions")
    generated = []
    for field, kind, args_type in (
        ("configMapGenerator", "ConfigMap", "ConfigMapArgs"),
        ("secretGenerator", "Secret", "SecretArgs"),
    ):
        entries = kustomization.get(field)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise KustomizeError(
                f"invalid Kustomization: json: cannot unmarshal object into Go struct field "
                f"Kustomization.{field} of type []types.{args_type}"
            )
        for entry in entries:
            args = _Args.read(entry, field, args_type)
            generated.append(_generate_one(kind, args, global_options, loader))
    return generated


@dataclass
class _Options:
    labels: dict[str, str]
    annotations: dict[str, str]
    disable_name_suffix_hash: bool
    immutable: bool

    @classmethod
    def read(cls, raw: object, field: str) -> _Options:
        raw = _mapping(raw, f"GeneratorOptions.{field}")
        go = f"GeneratorOptions.{field}"
        return cls(
            labels=string_map(raw.get("labels"), f"{go}.labels"),
            annotations=string_map(raw.get("annotations"), f"{go}.annotations"),
            disable_name_suffix_hash=bool_value(
                raw.get("disableNameSuffixHash"), f"{go}.disableNameSuffixHash"
            ),
            immutable=bool_value(raw.get("immutable"), f"{go}.immutable"),
        )

    def merged_with(self, global_: _Options) -> _Options:
        """kustomize's `MergeGlobalOptionsIntoLocal`: local labels and annotations win, a
        global `true` wins."""
        return _Options(
            labels={**global_.labels, **self.labels},
            annotations={**global_.annotations, **self.annotations},
            disable_name_suffix_hash=self.disable_name_suffix_hash
            or global_.disable_name_suffix_hash,
            immutable=self.immutable or global_.immutable,
        )


@dataclass
class _Args:
    name: str
    namespace: str
    behavior: str
    type: str
    env_files: list[str]
    literals: list[str]
    files: list[str]
    options: _Options

    @classmethod
    def read(cls, raw: object, field: str, args_type: str) -> _Args:
        go = f"{args_type}.{field}"
        raw = _mapping(raw, go)
        env = string_value(raw.get("env"), f"{go}.env")
        return cls(
            name=string_value(raw.get("name"), f"{go}.name"),
            namespace=string_value(raw.get("namespace"), f"{go}.namespace"),
            behavior=string_value(raw.get("behavior"), f"{go}.behavior"),
            type=string_value(raw.get("type"), f"{go}.type"),
            env_files=string_list(raw.get("envs"), f"{go}.envs") + ([env] if env else []),
            literals=string_list(raw.get("literals"), f"{go}.literals"),
            files=string_list(raw.get("files"), f"{go}.files"),
            options=_Options.read(raw.get("options"), f"{field}.options"),
        )


def _mapping(raw: object, go_field: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        kind = "array" if isinstance(raw, list) else "string"
        raise KustomizeError(
            f"invalid Kustomization: json: cannot unmarshal {kind} into Go struct field "
            f"{go_field} of type object"
        )
    return raw


def _generate_one(kind: str, args: _Args, global_options: _Options, loader: Loader) -> Resource:
    if not args.name:
        # kustomize says "configmap" for Secrets too.
        raise KustomizeError("a configmap must have a name")
    options = args.options.merged_with(global_options)
    pairs = _load_pairs(args, loader)

    metadata: dict[str, Any] = {"name": args.name}
    if args.namespace:
        metadata["namespace"] = args.namespace
    if options.labels:
        metadata["labels"] = dict(sorted(options.labels.items()))
    if options.annotations:
        metadata["annotations"] = dict(sorted(options.annotations.items()))
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": metadata}

    if kind == "ConfigMap":
        data: dict[str, str] = {}
        binary: dict[str, str] = {}
        for key, value in sorted(pairs.items()):
            try:
                data[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                binary[key] = _base64_lines(value)
        if data:
            obj["data"] = data
        if binary:
            obj["binaryData"] = binary
    else:
        obj["type"] = args.type or "Opaque"
        obj["data"] = {k: _base64_lines(v) for k, v in sorted(pairs.items())}
    if options.immutable:
        obj["immutable"] = True

    # Any behavior but these three is "unspecified", which kustomize treats as create.
    behavior = args.behavior if args.behavior in ("create", "merge", "replace") else ""
    return Resource(
        obj,
        origin="configMapGenerator" if kind == "ConfigMap" else "secretGenerator",
        behavior=behavior,
        needs_hash=not options.disable_name_suffix_hash,
    )


def _base64_lines(value: bytes) -> str:
    """Base64 as kustomize writes it into `data` and `binaryData`: in lines of 70 characters,
    each ending with a newline, once there is more than one."""
    encoded = base64.b64encode(value).decode("ascii")
    if len(encoded) < 70:
        return encoded
    return "".join(encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70))


def _load_pairs(args: _Args, loader: Loader) -> dict[str, bytes]:
    pairs: list[tuple[str, bytes]] = []
    for path in args.env_files:
        try:
            pairs += _env_file_pairs(loader.read_bytes(path))
        except (KustomizeError, OSError) as exc:
            raise KustomizeError(
                f"loading KV pairs: env source files: [{' '.join(args.env_files)}]: {exc}"
            ) from exc
    for literal in args.literals:
        pairs.append(_literal_pair(literal, args.literals))
    for source in args.files:
        try:
            key, path = _parse_file_source(source)
            pairs.append((key, loader.read_bytes(path)))
        except (KustomizeError, OSError) as exc:
            raise KustomizeError(
                f"loading KV pairs: file sources: [{' '.join(args.files)}]: {exc}"
            ) from exc

    found: dict[str, bytes] = {}
    for key, value in pairs:
        if key in found:
            raise KustomizeError(f"configmap {args.name} illegally repeats the key `{key}`")
        found[key] = value
    return found


def _literal_pair(source: str, all_sources: list[str]) -> tuple[str, bytes]:
    key, sep, value = source.partition("=")
    if not sep or not key:
        raise KustomizeError(
            f"loading KV pairs: literal sources [{' '.join(all_sources)}]: "
            f"invalid literal source {source}, expected key=value"
        )
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key, value.encode("utf-8")


def _parse_file_source(source: str) -> tuple[str, str]:
    if "=" not in source:
        return _go_base(source), source
    key, _, path = source.partition("=")
    if not key:
        raise KustomizeError(f'missing key name for file path "{path}" in source "{source}"')
    if "=" in path:
        raise KustomizeError(f"source \"{source}\" key name or file path contains '='")
    if not path:
        raise KustomizeError(f'missing file path for key name "{key}" in source "{source}"')
    return key, path


def _go_base(path: str) -> str:
    """Go's `path.Base`: the last element, trailing slashes ignored."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    return posixpath.basename(stripped)


def _env_file_pairs(content: bytes) -> list[tuple[str, bytes]]:
    pairs = []
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = " ".join(str(b) for b in raw)
            text = raw.decode("utf-8", "replace")
            raise KustomizeError(f"line [{shown}] has invalid utf8 bytes : {text}") from exc
        if number == 0 and raw.startswith(_BOM):
            line = line[1:]
        line = line.lstrip(_GO_SPACE)
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        pairs.append((key, value.encode("utf-8")))
    return pairs


# --- merging into what bases produced --------------------------------------------------------


def merge_generated(resources: ResourceList, generated: list[Resource]) -> None:
    """Add generated objects to the resources of a kustomization, as kustomize absorbs them.

    A generated object is matched against the current and every earlier id of the resources
    (so an overlay's `cfg` finds its base's `cfg` after the base added a prefix). With no
    match it is added (merge or replace is then an error); with one match, `merge` and
    `replace` take its place in the list: labels and annotations merged over the old ones,
    the old name and namespace kept, and for `merge` the old `data` and `binaryData` under the
    new. The result gets a hash suffix only if both the old and the new object wanted one.
    """
    index = _IdIndex(resources)
    for new in generated:
        rid = new.id()
        matches = index.matches(rid)
        if not matches:
            if new.behavior in ("merge", "replace"):
                raise KustomizeError(f"id {go_resid(rid)} does not exist; cannot merge or replace")
            resources.append(new)
            index.add(new)
            continue
        if len(matches) > 1:
            found = " ".join(go_json(m.obj) for m in matches)
            raise KustomizeError(
                f"found multiple objects [{found}] that could accept merge of {rid}"
            )
        old = matches[0]
        if new.behavior not in ("merge", "replace"):
            raise KustomizeError(f"id {go_resid(rid)} exists; behavior must be merge or replace")
        _take_place_of(new, old)
        if new.behavior == "merge":
            for field in ("data", "binaryData"):
                merged = {**_data_map(old.obj.get(field)), **_data_map(new.obj.get(field))}
                if merged:
                    new.obj[field] = dict(sorted(merged.items()))
                else:
                    new.obj.pop(field, None)
        resources.replace(old, new)
        index.replace(old, new)


class _IdIndex:
    """The resources by every id they have had, for matching generated objects."""

    def __init__(self, resources: ResourceList) -> None:
        self._by_id: dict[tuple[str, str, str, str, str], list[Resource]] = {}
        for resource in resources:
            self.add(resource)

    def add(self, resource: Resource) -> None:
        for key in dict.fromkeys(rid.key() for rid in resource.ids()):
            self._by_id.setdefault(key, []).append(resource)

    def matches(self, rid: ResId) -> list[Resource]:
        return list(self._by_id.get(rid.key(), []))

    def replace(self, old: Resource, new: Resource) -> None:
        for holders in self._by_id.values():
            for i, holder in enumerate(holders):
                if holder is old:
                    holders[i] = new


def _take_place_of(new: Resource, old: Resource) -> None:
    meta = new.metadata
    for field in ("labels", "annotations"):
        merged = {**_data_map(old.metadata.get(field)), **_data_map(meta.get(field))}
        if merged:
            meta[field] = merged
        else:
            meta.pop(field, None)
    meta["name"] = old.name
    if old.namespace:
        meta["namespace"] = old.namespace
    else:
        meta.pop("namespace", None)
    new.previous = list(old.previous)
    # kubectl kustomize v5.5.0 hashes the result only if both objects asked for a hash.
    new.needs_hash = old.needs_hash and new.needs_hash
    new.origin = old.origin or new.origin
    new.refs_from = list(old.refs_from)
    copy_name_affixes(old, new)


def _data_map(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): scalar_text(v) for k, v in raw.items()}
