"""The `replacements` field on its own (tidegate.kustomize._replacements).

The corpus's single-level replacement cases run here straight through `apply_replacements`; the
smaller cases below pin kustomize v5.5.0 behaviour found with `kubectl kustomize` (the
expectations were checked against it)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidegate.kustomize._errors import KustomizeError
from tidegate.kustomize._replacements import apply_replacements, split_field_path
from tidegate.kustomize._resource import ResId, Resource, ResourceList
from tidegate.kustomize._selectors import parse_label_selector

CORPUS = Path(__file__).parent / "corpus"
# Cases whose kustomization has only `resources` (files) and `replacements`.
CORPUS_CASES = [
    "replacements-basic",
    "replacements-create-and-wildcards",
    "replacements-delimiter-index",
    "replacements-field-paths",
    "replacements-path-files",
    "replacements-select-reject",
    "error-replacement-multiple-sources",
    "error-replacement-source-field-missing",
    "error-replacement-source-not-found",
    "error-replacement-target-field-missing",
]


class DirectoryLoader:
    """Reads files below one directory (the tests' stand-in for the build's loader)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read_text(self, path: str) -> str:
        return (self.root / path).read_text()

    def read_bytes(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


class NoFiles:
    def read_text(self, path: str) -> str:
        raise AssertionError(f"unexpected read of {path}")

    def read_bytes(self, path: str) -> bytes:
        raise AssertionError(f"unexpected read of {path}")


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


@pytest.mark.parametrize("name", CORPUS_CASES)
def test_corpus_case(name: str) -> None:
    case = CORPUS / name
    kustomization = yaml.safe_load((case / "kustomization.yaml").read_text())
    assert set(kustomization) == {"resources", "replacements"}
    resources = ResourceList(
        Resource(obj, origin=file)
        for file in kustomization["resources"]
        for obj in yaml.safe_load_all((case / file).read_text())
        if obj
    )
    error_file = case / "expected-error.txt"
    if error_file.is_file():
        with pytest.raises(KustomizeError) as failure:
            apply_replacements(resources, kustomization["replacements"], DirectoryLoader(case))
        for phrase in error_file.read_text().splitlines():
            assert phrase in str(failure.value)
        return
    apply_replacements(resources, kustomization["replacements"], DirectoryLoader(case))
    expected = {_key(o): o for o in yaml.safe_load_all((case / "expected.yaml").read_text())}
    assert {_key(o): _as_printed(o) for o in resources.objects()} == expected


def _as_printed(obj: dict[str, Any]) -> dict[str, Any]:
    """kustomize prints every annotation value as a string (a created `release: 2024.06`
    annotation reads "2024.06"); the build's output step does that, not replacements."""
    annotations = obj.get("metadata", {}).get("annotations")
    if annotations:
        obj["metadata"]["annotations"] = {k: str(v) for k, v in annotations.items()}
    return obj


def _build(objects: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resources = ResourceList(Resource(copy.deepcopy(o)) for o in objects)
    apply_replacements(resources, entries, NoFiles())
    return resources.objects()


CONFIG = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cfg"},
    "data": {"text": "5", "flag": True, "num": 7, "host": "a.b.example.com", "obj": {"x": 1}},
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 1,
        "paused": False,
        "template": {
            "spec": {
                "containers": [
                    {"name": "app", "image": "nginx", "args": ["--a", "--b=x", "c"]},
                    {"name": "application", "image": "busybox"},
                    {"name": "side", "image": "busybox"},
                ]
            }
        },
    },
}


def _replace(field: str, paths: list[str], **options: Any) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "source": {"kind": "ConfigMap", "fieldPath": field},
        "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": paths}],
    }
    if options:
        entry["targets"][0]["options"] = options
    return _build([CONFIG, DEPLOYMENT], [entry])


def _deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment")


def _containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = _deployment(objects)["spec"]["template"]["spec"][
        "containers"
    ]
    return containers


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("spec.replicas", ["spec", "replicas"]),
        ("spec.data.[name=first].key", ["spec", "data", "[name=first]", "key"]),
        ("spec.data.[name=f.i.r.s.t.].key", ["spec", "data", "[name=f.i.r.s.t.]", "key"]),
        ("spec.data.[.name=.first].key", ["spec", "data", "[.name=.first]", "key"]),
        ("spec\\.replicas", ["spec.replicas"]),
        ("metadata.annotations.[a.b.c/d.e.f-g.]", ["metadata", "annotations", "a.b.c/d.e.f-g."]),
        ("metadata.annotations.[app]", ["metadata", "annotations", "[app]"]),
        ("spec.data.[name=f.i.[r.s.t..key", ["spec", "data", "[name=f.i.[r.s.t..key"]),
    ],
)
def test_split_field_path(path: str, parts: list[str]) -> None:
    assert split_field_path(path) == parts


def test_scalar_targets_keep_their_type() -> None:
    # "5" into `replicas: 1` stays an int; 7 into a string field becomes "7".
    objects = _replace("data.text", ["spec.replicas", "spec.template.spec.containers.0.image"])
    assert _deployment(objects)["spec"]["replicas"] == 5
    assert _containers(objects)[0]["image"] == "5"
    objects = _replace("data.num", ["metadata.labels.app"])
    assert _deployment(objects)["metadata"]["labels"]["app"] == "7"


def test_created_scalars_read_as_plain_yaml() -> None:
    # A created field has no type of its own: "5" becomes 5, as kustomize prints it.
    objects = _replace("data.text", ["spec.new.deep.field"], create=True)
    assert _deployment(objects)["spec"]["new"] == {"deep": {"field": 5}}


def test_incompatible_scalar_is_an_error() -> None:
    with pytest.raises(KustomizeError, match=r"cannot decode !!str `a.b.example.com` as a !!int"):
        _replace("data.host", ["spec.replicas"])
    with pytest.raises(KustomizeError, match=r"cannot decode !!int `5` as a !!bool"):
        _replace("data.text", ["spec.paused"])


def test_non_scalar_target_is_replaced_by_a_copy() -> None:
    objects = _replace("data.num", ["spec.template.spec.containers.*.args"])
    assert [c.get("args") for c in _containers(objects)] == [7, None, None]
    objects = _replace("data.obj", ["spec.template.spec.containers.0"])
    assert _containers(objects)[0] == {"x": 1}


def test_list_entries_match_as_unanchored_regular_expressions() -> None:
    objects = _replace("data.num", ["spec.template.spec.containers.[name=app].image"])
    assert [c["image"] for c in _containers(objects)] == ["7", "7", "busybox"]
    objects = _replace("data.num", ["spec.template.spec.containers.[name=si].image"])
    assert [c["image"] for c in _containers(objects)] == ["nginx", "busybox", "7"]
    objects = _replace("data.num", ["spec.template.spec.containers.0.args.[=-.*]"])
    assert _containers(objects)[0]["args"] == ["7", "7", "c"]


def test_create_appends_list_elements() -> None:
    objects = _replace("data.num", ["spec.template.spec.containers.[name=zzz].image"], create=True)
    assert _containers(objects)[-1] == {"name": "zzz", "image": 7}
    objects = _replace("data.num", ["spec.template.spec.containers.3.image"], create=True)
    assert _containers(objects)[-1] == {"image": 7}
    objects = _replace("data.num", ["spec.list.[=x]"], create=True)
    assert _deployment(objects)["spec"]["list"] == [7]


def test_create_through_wildcards() -> None:
    objects = _replace("data.num", ["spec.template.spec.containers.*.foo"], create=True)
    assert [c["foo"] for c in _containers(objects)] == [7, 7, 7]


@pytest.mark.parametrize(
    ("path", "create", "message"),
    [
        ("spec.nope", False, 'unable to find field "spec.nope" in replacement target'),
        (
            "spec.template.spec.containers.5.image",
            False,
            'unable to find field "spec.template.spec.containers.5.image" in replacement target: '
            "index 5 specified but only 3 elements found",
        ),
        (
            "spec.template.spec.containers.4.image",
            True,
            'unable to find or create field "spec.template.spec.containers.4.image" in '
            "replacement target: index 4 specified but only 3 elements found",
        ),
        (
            "metadata.*",
            False,
            "wrong node kind: expected SequenceNode but got MappingNode: node contents:",
        ),
        (
            "spec.replicas.x",
            False,
            "wrong node kind: expected MappingNode but got ScalarNode: node contents:\n1",
        ),
        (
            "metadata.labels.[app]",
            False,
            "list path element must contain fieldName=fieldValue for element to match",
        ),
    ],
)
def test_target_path_errors(path: str, create: bool, message: str) -> None:
    with pytest.raises(KustomizeError) as failure:
        _replace("data.num", [path], **({"create": True} if create else {}))
    assert message in str(failure.value)


def test_source_path_errors() -> None:
    with pytest.raises(KustomizeError, match="array index -1 cannot be negative"):
        _replace("data.obj.-1", ["spec.replicas"])
    with pytest.raises(
        KustomizeError,
        match=r"error looking up replacement source: wrong node kind: expected SequenceNode",
    ):
        _replace("data.obj.0", ["spec.replicas"])


def test_source_delimiter() -> None:
    entry = {
        "source": {
            "kind": "ConfigMap",
            "fieldPath": "data.host",
            "options": {"delimiter": ".", "index": 7},
        },
        "targets": [{"select": {"kind": "Deployment"}}],
    }
    with pytest.raises(KustomizeError, match=r"options\.index 7 is out of bounds for value a\.b"):
        _build([CONFIG, DEPLOYMENT], [entry])
    entry["source"]["fieldPath"] = "data.obj"
    with pytest.raises(KustomizeError, match="delimiter option can only be used with scalar"):
        _build([CONFIG, DEPLOYMENT], [entry])


def test_source_selector_descriptions_in_errors() -> None:
    entry: dict[str, Any] = {
        "source": {
            "version": "v1",
            "name": "cfg",
            "namespace": "ns1",
            "fieldPath": "data.x",
            "options": {"delimiter": ".", "index": 2},
        },
        "targets": [{"select": {"kind": "Deployment"}}],
    }
    with pytest.raises(KustomizeError) as failure:
        _build([CONFIG, DEPLOYMENT], [entry])
    assert str(failure.value) == (
        "nothing selected by [noKind].v1.[noGrp]/cfg.ns1:data.x:.(2), create=false"
    )
    # No namespace and "default" are the same namespace.
    entry["source"] = {"name": "cfg", "namespace": "default", "fieldPath": "data.nul"}
    with pytest.raises(KustomizeError) as failure:
        _build([CONFIG, DEPLOYMENT], [entry])
    assert str(failure.value) == (
        "fieldPath `data.nul` is missing for replacement source "
        "[noKind].[noVer].[noGrp]/cfg.default"
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"source": {"kind": "ConfigMap"}}, "replacements must specify a source and at least"),
        ({"source": {"kind": "ConfigMap"}, "targets": []}, "must specify a source and at least"),
        ({"targets": [{"select": {}}]}, "replacements must specify a source and at least one"),
        (
            {"source": {"kind": "ConfigMap"}, "targets": [{"fieldPaths": ["a"]}]},
            "target must specify resources to select",
        ),
        (
            {"source": {"kind": "ConfigMap"}, "targets": [{"select": {}, "fieldPath": ["a"]}]},
            'invalid Kustomization: json: unknown field "fieldPath"',
        ),
        (
            {"path": "r.yaml", "source": {"kind": "ConfigMap"}},
            "cannot specify both path and inline replacement",
        ),
    ],
)
def test_malformed_replacements(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(KustomizeError, match=message):
        _build([CONFIG, DEPLOYMENT], [entry])


def test_replacement_files(tmp_path: Path) -> None:
    (tmp_path / "number.yaml").write_text("- 1\n")
    (tmp_path / "text.yaml").write_text("hello\n")
    for name, message in [
        ("number.yaml", "json: cannot unmarshal number into Go value of type types.Replacement"),
        ("text.yaml", "unsupported replacement type encountered within replacement path: string"),
    ]:
        with pytest.raises(KustomizeError, match=message):
            apply_replacements(ResourceList(), [{"path": name}], DirectoryLoader(tmp_path))
    # In a file, `targets: []` is a list of no targets (inline it is no list at all).
    (tmp_path / "empty.yaml").write_text("source: {kind: ConfigMap}\ntargets: []\n")
    resources = ResourceList([Resource(copy.deepcopy(CONFIG))])
    apply_replacements(resources, [{"path": "empty.yaml"}], DirectoryLoader(tmp_path))
    assert resources.objects() == [CONFIG]


def test_objects_are_selected_by_earlier_names() -> None:
    config = Resource(copy.deepcopy(CONFIG))
    config.set_name("dev-cfg")
    config.set_namespace("shop")
    deployment = Resource(copy.deepcopy(DEPLOYMENT))
    deployment.set_name("dev-web")
    resources = ResourceList([config, deployment])
    entry = {
        "source": {"kind": "ConfigMap", "name": "cfg", "namespace": "default"},
        "targets": [
            {
                "select": {"name": "web"},
                "fieldPaths": ["metadata.annotations.config"],
                "options": {"create": True},
            }
        ],
    }
    apply_replacements(resources, [entry], NoFiles())
    assert deployment.obj["metadata"]["annotations"] == {"config": "dev-cfg"}


def test_reject_by_any_id_and_by_either_half() -> None:
    # Rejecting the earlier name rejects the object, as rejecting its current name does.
    deployment = Resource(copy.deepcopy(DEPLOYMENT))
    deployment.set_name("dev-web")
    config = Resource(copy.deepcopy(CONFIG))
    resources = ResourceList([config, deployment])
    target: dict[str, Any] = {
        "select": {"kind": "Deployment"},
        "fieldPaths": ["metadata.labels.from"],
        "options": {"create": True},
    }
    entry = {"source": {"kind": "ConfigMap"}, "targets": [target]}
    for reject in ({"name": "web"}, {"name": "dev-web"}):
        target["reject"] = [reject]
        apply_replacements(resources, [entry], NoFiles())
        assert "from" not in deployment.obj["metadata"]["labels"]
    # A reject with an id and a label selector rejects by either half.
    target["reject"] = [{"kind": "Service", "labelSelector": "app=web"}]
    apply_replacements(resources, [entry], NoFiles())
    assert "from" not in deployment.obj["metadata"]["labels"]
    target["reject"] = [{"kind": "Service"}]
    apply_replacements(resources, [entry], NoFiles())
    assert deployment.obj["metadata"]["labels"]["from"] == "cfg"


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "api"}, False),
        ("app!=web", {}, True),
        ("app in (web,api)", {"app": "api"}, True),
        ("app in (web, api)", {"app": "db"}, False),
        ("app notin (web)", {}, True),
        ("app notin (web)", {"app": "web"}, False),
        ("app,tier", {"app": "x"}, False),
        ("app,tier", {"app": "x", "tier": "y"}, True),
        ("!app", {"tier": "y"}, True),
        ("!app", {"app": "y"}, False),
        ("tier=fe, app=web", {"tier": "fe", "app": "web"}, True),
        ("count>2", {"count": "3"}, True),
        ("count<2", {"count": "3"}, False),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is matches


def test_label_selector_errors_read_like_kubernetes() -> None:
    with pytest.raises(KustomizeError) as failure:
        parse_label_selector("bad selector!")
    assert str(failure.value) == (
        "unable to parse requirement: found 'selector', expected: '=', '!=', '==', 'in', notin'"
    )


def test_ids_of_previous_names_use_the_current_group_and_version() -> None:
    resource = Resource(copy.deepcopy(DEPLOYMENT), previous=[ResId("", "", "Deployment", "old")])
    entry = {
        "source": {"kind": "ConfigMap"},
        "targets": [
            {
                "select": {"group": "apps", "version": "v1", "name": "old"},
                "fieldPaths": ["metadata.labels.app"],
            }
        ],
    }
    resources = ResourceList([Resource(copy.deepcopy(CONFIG)), resource])
    apply_replacements(resources, [entry], NoFiles())
    assert resource.obj["metadata"]["labels"]["app"] == "cfg"
