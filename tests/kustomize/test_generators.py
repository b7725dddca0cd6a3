"""configMapGenerator and secretGenerator; the behaviour asserted here was checked against
`kubectl kustomize` (v5.5.0), see also the fixtures under testdata/generators."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.kustomize._errors import KustomizeError
from tidegate.kustomize._generators import generate, merge_generated
from tidegate.kustomize._resource import Resource, ResourceList


class MemoryLoader:
    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = files or {}

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def read_bytes(self, path: str) -> bytes:
        try:
            return self.files[path]
        except KeyError:
            raise KustomizeError(f"no such file '{path}'") from None


def _one(entry: dict[str, Any], files: dict[str, bytes] | None = None, **extra: Any) -> Resource:
    kind = "secretGenerator" if extra.pop("secret", False) else "configMapGenerator"
    (resource,) = generate({kind: [entry], **extra}, MemoryLoader(files))
    return resource


def test_literals_become_sorted_data_with_quotes_removed() -> None:
    cm = _one({"name": "x", "literals": ["b='single'", 'a="double"', "c='mixed\"", "d=", "e='"]})
    assert cm.obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"a": "double", "b": "single", "c": "'mixed\"", "d": "", "e": "'"},
    }
    assert cm.needs_hash
    assert cm.behavior == ""


def test_files_use_base_name_or_given_key_and_binary_goes_to_binary_data() -> None:
    files = {"dir/a.txt": b"hello\n", "bin.dat": b"\x00\x01\xff\xfe"}
    cm = _one({"name": "x", "files": ["dir/a.txt", "renamed=dir/a.txt", "bin.dat"]}, files)
    assert cm.obj["data"] == {"a.txt": "hello\n", "renamed": "hello\n"}
    assert cm.obj["binaryData"] == {"bin.dat": "AAH//g=="}


def test_env_files_follow_kustomize_line_rules() -> None:
    env = b'\xef\xbb\xbfA=1\n# comment\n  B = 2 \nC\nD="quoted"\nE=x=y\r\n\n   \t\nF=\n'
    cm = _one({"name": "x", "envs": ["app.env"]}, {"app.env": env})
    assert cm.obj["data"] == {"A": "1", "B ": " 2 ", "C": "", "D": '"quoted"', "E": "x=y", "F": ""}


def test_secret_values_are_base64_and_type_defaults_to_opaque() -> None:
    secret = _one({"name": "s", "literals": ["a=1"], "files": ["f"]}, {"f": b"\xff"}, secret=True)
    assert secret.obj["type"] == "Opaque"
    assert secret.obj["data"] == {"a": "MQ==", "f": "/w=="}
    assert "binaryData" not in secret.obj
    empty = _one({"name": "s", "type": "kubernetes.io/tls"}, secret=True)
    assert empty.obj["data"] == {}
    assert empty.obj["type"] == "kubernetes.io/tls"


def test_generator_options_merge_into_local_options() -> None:
    global_options = {
        "labels": {"glob": "g", "shared": "global"},
        "annotations": {"ga": "x"},
        "immutable": True,
    }
    cm = _one(
        {
            "name": "x",
            "namespace": "other",
            "options": {
                "labels": {"shared": "local"},
                "disableNameSuffixHash": True,
                "immutable": False,
            },
        },
        generatorOptions=global_options,
    )
    assert cm.obj["metadata"] == {
        "name": "x",
        "namespace": "other",
        "labels": {"glob": "g", "shared": "local"},
        "annotations": {"ga": "x"},
    }
    # A local false cannot override a global true.
    assert cm.obj["immutable"] is True
    assert not cm.needs_hash


def test_global_disable_name_suffix_hash_wins() -> None:
    cm = _one({"name": "x"}, generatorOptions={"disableNameSuffixHash": True})
    assert not cm.needs_hash
    assert "data" not in cm.obj


def test_configmaps_come_before_secrets_and_keep_their_behavior() -> None:
    generated = generate(
        {
            "secretGenerator": [{"name": "s"}],
            "configMapGenerator": [
                {"name": "a", "behavior": "merge"},
                {"name": "b", "behavior": "odd"},
            ],
        },
        MemoryLoader(),
    )
    assert [(r.kind, r.name, r.behavior) for r in generated] == [
        ("ConfigMap", "a", "merge"),
        ("ConfigMap", "b", ""),
        ("Secret", "s", ""),
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"literals": ["a=1"]}, "a configmap must have a name"),
        ({"name": "x", "literals": ["a=1", "a=2"]}, "configmap x illegally repeats the key `a`"),
        (
            {"name": "x", "literals": ["novalue"]},
            "literal sources [novalue]: invalid literal source novalue, expected key=value",
        ),
        ({"name": "x", "literals": ["=v"]}, "invalid literal source =v, expected key=value"),
        (
            {"name": "x", "files": ["=a.txt"]},
            'file sources: [=a.txt]: missing key name for file path "a.txt" in source "=a.txt"',
        ),
        ({"name": "x", "files": ["k="]}, 'missing file path for key name "k" in source "k="'),
        ({"name": "x", "files": ["k=a=b"]}, "key name or file path contains '='"),
        ({"name": "x", "files": ["missing.txt"]}, "file sources: [missing.txt]: no such file"),
        (
            {"name": "x", "envs": ["bad.env"]},
            "env source files: [bad.env]: line [65 61 255] has invalid utf8 bytes",
        ),
        ({"name": "x", "envs": ["a.env"], "literals": ["A=2"]}, "illegally repeats the key `A`"),
    ],
)
def test_errors_read_like_kustomize(entry: dict[str, Any], message: str) -> None:
    files = {"a.txt": b"hi", "bad.env": b"A=\xff\n", "a.env": b"A=1\n"}
    with pytest.raises(KustomizeError) as error:
        _one(entry, files)
    assert message in str(error.value)


# --- merge and replace -----------------------------------------------------------------------


def _base_configmap(name: str, current: str, needs_hash: bool = True) -> Resource:
    """A generated ConfigMap from a base that gave it a prefix."""
    resource = Resource(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"bl": "base", "both": "base"}},
            "data": {"a": "1", "b": "2"},
            "immutable": True,
        },
        needs_hash=needs_hash,
        origin="base",
    )
    resource.set_name(current)
    return resource


def _generated(entry: dict[str, Any]) -> Resource:
    (resource,) = generate({"configMapGenerator": [entry]}, MemoryLoader())
    return resource


def test_create_appends_and_conflicts_with_an_existing_id() -> None:
    resources = ResourceList([_base_configmap("cfg", "p-cfg")])
    merge_generated(resources, [_generated({"name": "other"})])
    assert [r.name for r in resources] == ["p-cfg", "other"]
    with pytest.raises(KustomizeError, match="exists; behavior must be merge or replace"):
        merge_generated(resources, [_generated({"name": "cfg", "literals": ["a=1"]})])


def test_merge_matches_an_earlier_name_and_keeps_name_labels_and_data() -> None:
    old = _base_configmap("cfg", "p-cfg")
    resources = ResourceList(
        [Resource({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}), old]
    )
    new = _generated(
        {
            "name": "cfg",
            "behavior": "merge",
            "literals": ["b=3", "c=4"],
            "options": {"labels": {"both": "overlay"}},
        }
    )
    merge_generated(resources, [new])
    merged = list(resources)[1]
    assert merged is new
    assert merged.obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "p-cfg", "labels": {"bl": "base", "both": "overlay"}},
        "data": {"a": "1", "b": "3", "c": "4"},
    }
    assert [p.name for p in merged.previous] == ["cfg"]
    assert merged.needs_hash


def test_replace_keeps_only_metadata() -> None:
    resources = ResourceList([_base_configmap("cfg", "p-cfg")])
    merge_generated(
        resources, [_generated({"name": "p-cfg", "behavior": "replace", "literals": ["r=1"]})]
    )
    (replaced,) = resources
    assert replaced.obj["data"] == {"r": "1"}
    assert replaced.obj["metadata"]["labels"] == {"bl": "base", "both": "base"}
    assert "immutable" not in replaced.obj


@pytest.mark.parametrize(
    ("base_hash", "overlay_hash", "hashed"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_merged_object_is_hashed_only_if_both_wanted_it(
    base_hash: bool, overlay_hash: bool, hashed: bool
) -> None:
    resources = ResourceList([_base_configmap("cfg", "cfg", needs_hash=base_hash)])
    options = {"disableNameSuffixHash": not overlay_hash}
    merge_generated(
        resources, [_generated({"name": "cfg", "behavior": "merge", "options": options})]
    )
    assert next(iter(resources)).needs_hash is hashed


def test_merge_or_replace_of_nothing_is_an_error() -> None:
    with pytest.raises(KustomizeError) as error:
        merge_generated(ResourceList(), [_generated({"name": "x", "behavior": "merge"})])
    assert str(error.value) == (
        'id resid.ResId{Gvk:resid.Gvk{Group:"", Version:"v1", Kind:"ConfigMap", '
        'isClusterScoped:false}, Name:"x", Namespace:""} does not exist; cannot merge or replace'
    )


def test_merge_with_two_candidates_is_an_error() -> None:
    resources = ResourceList([_base_configmap("cfg", "a-cfg"), _base_configmap("cfg", "b-cfg")])
    with pytest.raises(KustomizeError, match="found multiple objects"):
        merge_generated(resources, [_generated({"name": "cfg"})])
