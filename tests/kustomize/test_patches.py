"""The patch fields (`patches`, `patchesStrategicMerge`, `patchesJson6902`): target selection,
how a patch is told apart and applied, errors; and the fixture directories under
testdata/patches, whose expected output kubectl's kustomize v5.5.0 printed.

    .venv/bin/python tests/kustomize/test_patches.py   # rewrite the fixtures' kubectl output
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tidegate.kustomize import FileLoader, KustomizeError, build_yaml
from tidegate.kustomize._order import sort_resources
from tidegate.kustomize._patches import (
    apply_patches,
    apply_patches_json6902,
    apply_patches_strategic_merge,
)
from tidegate.kustomize._resource import Resource, ResourceList, resources_from_documents
from tidegate.kustomize._yaml import dump_all, parse_documents, parse_kustomization_yaml

FIXTURES = Path(__file__).parent / "testdata" / "patches"
CASES = sorted(p for p in FIXTURES.iterdir() if p.is_dir())
KUBECTL = shutil.which("kubectl")


def _obj(api_version: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, **fields.pop("metadata", {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}


def _list(*objs: dict[str, Any]) -> ResourceList:
    return ResourceList(Resource(copy.deepcopy(o)) for o in objs)


class _Files:
    """A loader over a dict of file contents."""

    def __init__(self, files: dict[str, str] | None = None) -> None:
        self.files = files or {}

    def read_text(self, path: str) -> str:
        if path not in self.files:
            raise KustomizeError(f"open {path}: no such file or directory")
        return self.files[path]

    def read_bytes(self, path: str) -> bytes:
        return self.read_text(path).encode()


def _annotate(name: str) -> str:
    return f'[{{"op": "add", "path": "/metadata/annotations/{name}", "value": "x"}}]'


def _hits(resources: ResourceList, name: str) -> list[str]:
    return [
        f"{r.kind}/{r.name}"
        for r in resources
        if name in (r.obj["metadata"].get("annotations") or {})
    ]


# -- target selection ---------------------------------------------------------------------------


def _targets() -> ResourceList:
    return _list(
        _obj("apps/v1", "Deployment", "web", metadata={"labels": {"app": "web", "tier": "fe"}}),
        _obj(
            "apps/v1",
            "Deployment",
            "web-canary",
            metadata={"namespace": "canary", "labels": {"app": "web", "track": "canary"}},
        ),
        _obj("v1", "ConfigMap", "web", metadata={"annotations": {"team": "blue"}}),
        _obj("rbac.authorization.k8s.io/v1", "ClusterRole", "web"),
    )


@pytest.mark.parametrize(
    ("target", "selected"),
    [
        ({"name": "web"}, ["Deployment/web", "ConfigMap/web", "ClusterRole/web"]),
        ({"name": "web.*", "kind": "Deploy.*"}, ["Deployment/web", "Deployment/web-canary"]),
        ({"name": "eb"}, []),  # anchored: the whole name must match
        ({"kind": "ConfigMap|ClusterRole"}, ["ConfigMap/web", "ClusterRole/web"]),
        ({"group": "apps", "version": "v1"}, ["Deployment/web", "Deployment/web-canary"]),
        ({"namespace": "default"}, ["Deployment/web", "ConfigMap/web"]),
        ({"namespace": "can.*"}, ["Deployment/web-canary"]),
        ({"labelSelector": "app=web,track!=canary"}, ["Deployment/web"]),
        ({"labelSelector": "track"}, ["Deployment/web-canary"]),
        ({"labelSelector": "!track,app"}, ["Deployment/web"]),
        ({"labelSelector": "tier in (fe,be)"}, ["Deployment/web"]),
        ({"labelSelector": "app notin (web)", "kind": "ConfigMap"}, ["ConfigMap/web"]),
        ({"annotationSelector": "team=blue"}, ["ConfigMap/web"]),
    ],
)
def test_targets(target: dict[str, str], selected: list[str]) -> None:
    resources = _targets()
    apply_patches(resources, [{"target": target, "patch": _annotate("hit")}], _Files())
    assert _hits(resources, "hit") == selected


def test_targets_follow_earlier_names_and_namespaces() -> None:
    resources = _list(_obj("v1", "ConfigMap", "config"))
    (config,) = resources
    config.set_name("prod-config")
    apply_patches(resources, [{"target": {"name": "config"}, "patch": _annotate("hit")}], _Files())
    assert _hits(resources, "hit") == ["ConfigMap/prod-config"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"labelSelector": "app in (web"},
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        ({"labelSelector": "a b"}, "found 'b', expected: '=', '!=', '==', 'in', notin'"),
        ({"labelSelector": "app==web,"}, "found '', expected: identifier after ','"),
        ({"labelSelector": "App_=x"}, 'invalid label key "App_": name part must consist of'),
        ({"name": "we(b"}, "error parsing regexp: "),
    ],
)
def test_bad_targets(target: dict[str, str], message: str) -> None:
    with pytest.raises(KustomizeError, match=re.escape(message)):
        apply_patches(_targets(), [{"target": target, "patch": _annotate("hit")}], _Files())


# -- patches: strategic merge -------------------------------------------------------------------


def test_patch_without_target_goes_to_its_own_object() -> None:
    resources = _list(_obj("v1", "ConfigMap", "a", data={"x": "1"}), _obj("v1", "ConfigMap", "b"))
    patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  y: '2'\n"
    apply_patches(resources, [{"patch": patch}], _Files())
    assert [r.obj.get("data") for r in resources] == [{"x": "1", "y": "2"}, None]


def test_patch_without_matching_object() -> None:
    resources = _list(_obj("apps/v1", "Deployment", "web", metadata={"namespace": "apps"}))
    patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: {}\n"
    with pytest.raises(KustomizeError) as caught:
        apply_patches(resources, [{"patch": patch}], _Files())
    assert str(caught.value) == (
        'no resource matches strategic merge patch "Deployment.v1.apps/web.[noNs]": no matches '
        "for Id Deployment.v1.apps/web.[noNs]; failed to find unique target for patch "
        "Deployment.v1.apps/web.[noNs]"
    )


def test_patch_file_with_several_documents_and_a_deletion() -> None:
    resources = _list(_obj("v1", "ConfigMap", "keep"), _obj("v1", "ConfigMap", "drop"))
    files = {
        "p.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\ndata: {a: '1'}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: drop}\n$patch: delete\n"
    }
    apply_patches(resources, [{"path": "p.yaml"}], _Files(files))
    assert [(r.name, r.obj.get("data")) for r in resources] == [("keep", {"a": "1"})]


def test_targeted_patch_keeps_names_kinds_and_namespaces() -> None:
    resources = _list(_obj("v1", "ConfigMap", "cm", metadata={"namespace": "apps"}))
    patch = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: other\n  namespace: x\ndata: {a: b}\n"
    apply_patches(resources, [{"target": {"kind": "ConfigMap"}, "patch": patch}], _Files())
    (cm,) = resources
    assert (cm.kind, cm.name, cm.namespace, cm.obj["data"]) == (
        "ConfigMap",
        "cm",
        "apps",
        {"a": "b"},
    )
    assert cm.previous == []


def test_allowed_rename_is_remembered() -> None:
    resources = _list(_obj("v1", "ConfigMap", "cm"))
    patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: renamed\n"
    entry = {"target": {"kind": "ConfigMap"}, "patch": patch, "options": {"allowNameChange": True}}
    apply_patches(resources, [entry], _Files())
    (cm,) = resources
    assert cm.name == "renamed"
    assert [(rid.kind, rid.name) for rid in cm.ids()] == [
        ("ConfigMap", "cm"),
        ("ConfigMap", "renamed"),
    ]


def test_allowed_renames_to_one_id_conflict() -> None:
    resources = _list(_obj("v1", "ConfigMap", "a"), _obj("v1", "ConfigMap", "b"))
    patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: same\n"
    entry = {"target": {"kind": "ConfigMap"}, "patch": patch, "options": {"allowNameChange": True}}
    with pytest.raises(
        KustomizeError, match=re.escape("already registered id: ConfigMap.v1.[noGrp]/same")
    ):
        apply_patches(resources, [entry], _Files())


def test_targeted_patch_labels_become_strings() -> None:
    # kustomize copies a targeted patch's labels and annotations through SetLabels: a null
    # label is then the string "null" (and no longer removes the label).
    resources = _list(_obj("v1", "ConfigMap", "cm", metadata={"labels": {"a": "1"}}))
    patch = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  labels: {a: null, b: 2}\n"
    apply_patches(resources, [{"target": {"kind": "ConfigMap"}, "patch": patch}], _Files())
    assert resources[0].obj["metadata"]["labels"] == {"a": "null", "b": "2"}


# -- patches: telling strategic merge from JSON 6902 --------------------------------------------


@pytest.mark.parametrize(
    ("entry", "files", "message"),
    [
        (
            {"target": {"kind": "ConfigMap"}},
            {},
            "must specify one of patch and path in\ntarget:\n  kind: ConfigMap",
        ),
        ({"patch": "spec: {}"}, {}, 'unable to parse SM or JSON patch from [patch: "spec: {}"]'),
        (
            {"path": "p.yaml", "target": {"kind": "ConfigMap"}},
            {"p.yaml": "---\n# only a comment\n"},
            'illegally qualifies as both an SM and JSON patch: [path: "p.yaml"]',
        ),
        (
            {"patch": "- op: add\n  path: /data\n  value: {}"},
            {},
            "must specify a target for JSON patch "
            '[patch: "- op: add\\n  path: /data\\n  value: {}"]',
        ),
    ],
)
def test_patch_kind_errors(entry: dict[str, Any], files: dict[str, str], message: str) -> None:
    with pytest.raises(KustomizeError) as caught:
        apply_patches(_list(_obj("v1", "ConfigMap", "cm")), [entry], _Files(files))
    assert message in str(caught.value)


def test_configuration_errors_name_the_transformer() -> None:
    with pytest.raises(KustomizeError) as caught:
        apply_patches(_list(), [{"patch": "spec: {}", "target": {"kind": "X"}}], _Files())
    assert str(caught.value).startswith(
        "trouble configuring builtin PatchTransformer with config: `\n"
        "patch: 'spec: {}'\ntarget:\n  kind: X\n`: unable to parse"
    )


# -- patches: JSON 6902 -------------------------------------------------------------------------


def test_json_patch_sees_kustomize_build_annotations() -> None:
    # kustomize remembers the id before a JSON patch in annotations of the object: so adding
    # one annotation works on an object without any.
    resources = _list(_obj("v1", "ConfigMap", "cm"))
    apply_patches(resources, [{"target": {"kind": "ConfigMap"}, "patch": _annotate("a")}], _Files())
    (cm,) = resources
    assert cm.obj["metadata"] == {"name": "cm", "annotations": {"a": "x"}}
    assert [rid.name for rid in cm.previous] == ["cm"]


def test_json_patch_renames_are_remembered() -> None:
    resources = _list(_obj("v1", "ConfigMap", "cm"))
    patch = '[{"op": "replace", "path": "/metadata/name", "value": "new"}]'
    apply_patches(resources, [{"target": {"kind": "ConfigMap"}, "patch": patch}], _Files())
    assert [rid.name for rid in resources[0].ids()] == ["cm", "new"]


# -- patchesStrategicMerge and patchesJson6902 --------------------------------------------------


def test_patches_strategic_merge_files_and_inline() -> None:
    resources = _list(_obj("v1", "ConfigMap", "cm"))
    files = {"p.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: '1'}\n"}
    inline = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {b: '2'}\n"
    apply_patches_strategic_merge(resources, ["p.yaml", inline], _Files(files))
    assert resources[0].obj["data"] == {"a": "1", "b": "2"}


def test_patches_strategic_merge_without_target() -> None:
    inline = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"
    with pytest.raises(KustomizeError) as caught:
        apply_patches_strategic_merge(_list(_obj("v1", "ConfigMap", "cm")), [inline], _Files())
    assert str(caught.value) == (
        "no matches for Id ConfigMap.v1.[noGrp]/other.[noNs]; failed to find unique target for "
        "patch ConfigMap.v1.[noGrp]/other.[noNs]"
    )


def test_patches_json6902_needs_a_target_name() -> None:
    entry = {"target": {"kind": "ConfigMap"}, "patch": "[]"}
    with pytest.raises(KustomizeError, match="must specify the target name"):
        apply_patches_json6902(_list(_obj("v1", "ConfigMap", "cm")), [entry], _Files())


def test_patches_json6902_from_yaml_file() -> None:
    resources = _list(_obj("v1", "ConfigMap", "cm"))
    files = {"ops.yaml": "- op: add\n  path: /data\n  value: {a: '1'}\n"}
    entry = {"target": {"version": "v1", "kind": "ConfigMap", "name": "cm"}, "path": "ops.yaml"}
    apply_patches_json6902(resources, [entry], _Files(files))
    assert resources[0].obj["data"] == {"a": "1"}
    assert resources[0].previous == []  # unlike `patches:`, no id remembered


def test_patches_json6902_errors_show_the_json() -> None:
    entry = {"target": {"kind": "ConfigMap", "name": "cm"}, "patch": "op: add"}
    with pytest.raises(KustomizeError) as caught:
        apply_patches_json6902(_list(_obj("v1", "ConfigMap", "cm")), [entry], _Files())
    assert str(caught.value).endswith(
        'decoding {"op":"add"}: json: cannot unmarshal object into Go value of type jsonpatch.Patch'
    )


# -- fixture directories ------------------------------------------------------------------------


def _build_patches_only(directory: Path) -> str:
    """What a build of a fixture gives: its resources, then the three patch fields in
    kustomize's order, in kustomize's output order. (The fixtures use no other field.)"""
    kustomization = parse_kustomization_yaml((directory / "kustomization.yaml").read_text())
    loader = FileLoader(directory)
    resources = ResourceList()
    for path in kustomization.get("resources") or []:
        documents = parse_documents(loader.read_text(path), path)
        resources.extend(resources_from_documents(documents, path))
    if "patchesStrategicMerge" in kustomization:
        apply_patches_strategic_merge(resources, kustomization["patchesStrategicMerge"], loader)
    if "patches" in kustomization:
        apply_patches(resources, kustomization["patches"], loader)
    if "patchesJson6902" in kustomization:
        apply_patches_json6902(resources, kustomization["patchesJson6902"], loader)
    ordered = sort_resources(list(resources), kustomization.get("sortOptions"))
    return dump_all([r.obj for r in ordered])


def _expected(case: Path) -> tuple[str | None, str | None]:
    output, error = case / "expected.yaml", case / "expected-error.txt"
    return (
        output.read_text() if output.exists() else None,
        error.read_text().rstrip("\n") if error.exists() else None,
    )


def _result(build: Any, case: Path) -> tuple[str | None, str | None]:
    try:
        return build(case), None
    except KustomizeError as exc:
        return None, str(exc)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture(case: Path) -> None:
    assert _result(_build_patches_only, case) == _expected(case)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture_full_build(case: Path) -> None:
    assert _result(build_yaml, case) == _expected(case)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture_live_kubectl(case: Path) -> None:
    assert _kubectl(case) == _expected(case)


def _kubectl(case: Path) -> tuple[str | None, str | None]:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(case)], capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout, None
    quoted = re.search(r'err="((?:[^"\\]|\\.)*)"', done.stderr)
    if quoted:
        message = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), quoted[1])
        return None, message
    block = re.search(r"err=<\n(.*?)\n >", done.stderr, re.DOTALL)
    assert block, done.stderr
    return None, "\n".join(line.removeprefix("\t") for line in block[1].splitlines())


if __name__ == "__main__":
    for fixture in CASES:
        output, error = _kubectl(fixture)
        for name, text in (("expected.yaml", output), ("expected-error.txt", error)):
            target = fixture / name
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.write_text(text if name.endswith(".yaml") else text + "\n")
        print(fixture.name, "error" if error else "ok", file=sys.stderr)
