"""Namespace, prefix and suffix, labels, annotations, images and replicas; the behaviour
asserted here was checked against `kubectl kustomize` (v5.5.0), see also the fixtures under
testdata/transformers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tidegate.kustomize._errors import KustomizeError
from tidegate.kustomize._fieldspecs import FieldSpec, NameReference, TransformerConfig
from tidegate.kustomize._namereference import name_prefixes, name_suffixes
from tidegate.kustomize._resource import ResId, Resource, ResourceList
from tidegate.kustomize._transformers import (
    apply_annotations,
    apply_images,
    apply_labels,
    apply_name_prefix_suffix,
    apply_namespace,
    apply_replicas,
    split_image,
)


def _obj(api_version: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, **fields}


def _list(*objs: dict[str, Any]) -> ResourceList:
    return ResourceList(Resource(copy.deepcopy(o)) for o in objs)


def _deployment(**spec: Any) -> dict[str, Any]:
    return _obj("apps/v1", "Deployment", "d", spec=spec)


# --- namespace -------------------------------------------------------------------------------


def test_namespace_skips_cluster_scoped_kinds_by_api_version() -> None:
    resources = _list(
        _obj("v1", "ConfigMap", "cm"),
        _obj("rbac.authorization.k8s.io/v1", "ClusterRole", "cr"),
        # kustomize only knows the scopes of Kubernetes 1.21: these count as namespaced.
        _obj("rbac.authorization.k8s.io/v1alpha1", "ClusterRole", "old"),
        _obj("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "fs"),
        _obj("example.com/v1", "Foo", "foo"),
    )
    apply_namespace(resources, "target")
    assert [r.namespace for r in resources] == ["target", "", "target", "target", "target"]


def test_namespace_renames_v1_namespaces_only() -> None:
    resources = _list(_obj("v1", "Namespace", "ns1"), _obj("example.com/v1", "Namespace", "custom"))
    apply_namespace(resources, "target")
    assert [(r.name, r.namespace) for r in resources] == [("target", ""), ("custom", "target")]


def test_namespace_remembers_every_id_even_unchanged() -> None:
    resources = _list(
        {**_obj("v1", "ServiceAccount", "sa"), "metadata": {"name": "sa", "namespace": "apps"}}
    )
    apply_namespace(resources, "apps")
    (account,) = resources
    assert [(p.name, p.namespace) for p in account.previous] == [("sa", "apps")]


def test_namespace_conflict_is_an_error() -> None:
    resources = _list(_obj("v1", "Namespace", "a"), _obj("v1", "Namespace", "b"))
    with pytest.raises(KustomizeError, match="namespace transformation produces ID conflict"):
        apply_namespace(resources, "target")


def test_binding_subjects_named_default_get_the_namespace() -> None:
    binding = _obj(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rb",
        subjects=[
            {"kind": "ServiceAccount", "name": "default", "namespace": "elsewhere"},
            {"kind": "ServiceAccount", "name": "sa"},
            {"kind": "User", "name": "default"},
        ],
    )
    resources = _list(binding)
    apply_namespace(resources, "target")
    assert next(iter(resources)).obj["subjects"] == [
        {"kind": "ServiceAccount", "name": "default", "namespace": "target"},
        {"kind": "ServiceAccount", "name": "sa"},
        {"kind": "User", "name": "default", "namespace": "target"},
    ]


def test_namespace_of_apiservice_and_crd_conversion_services() -> None:
    api_service = _obj("apiregistration.k8s.io/v1", "APIService", "v1.x", spec={"group": "x"})
    crd = _obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "foos.x",
        spec={
            "conversion": {
                "webhook": {"clientConfig": {"service": {"name": "s", "namespace": "o"}}}
            }
        },
    )
    bare_crd = _obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "bars.x", spec={})
    webhook = _obj(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "vwc",
        webhooks=[{"name": "a", "clientConfig": {"service": {"name": "s", "namespace": "o"}}}],
    )
    resources = _list(api_service, crd, bare_crd, webhook)
    apply_namespace(resources, "target")
    objs = resources.objects()
    assert objs[0]["spec"] == {"group": "x", "service": {"namespace": "target"}}
    assert (
        objs[1]["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["namespace"] == "target"
    )
    assert objs[2]["spec"] == {}
    # kustomize v5.5.0 leaves webhook services alone.
    assert objs[3]["webhooks"][0]["clientConfig"]["service"]["namespace"] == "o"


# --- prefix and suffix -----------------------------------------------------------------------


def test_prefix_and_suffix_skip_crds_apiservices_and_namespaces() -> None:
    resources = _list(
        _obj("v1", "Service", "svc"),
        _obj("rbac.authorization.k8s.io/v1", "ClusterRole", "cr"),
        _obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "foos.x"),
        _obj("apiregistration.k8s.io/v1", "APIService", "v1.x"),
        _obj("v1", "Namespace", "ns"),
        _obj("example.com/v1", "Namespace", "custom"),
    )
    apply_name_prefix_suffix(resources, "pre-", "-suf")
    assert [r.name for r in resources] == [
        "pre-svc-suf",
        "pre-cr-suf",
        "foos.x",
        "v1.x",
        "ns",
        "custom",
    ]


def test_prefix_and_suffix_are_two_renames_and_are_remembered() -> None:
    resources = _list(_obj("v1", "Service", "svc"))
    apply_name_prefix_suffix(resources, "a-", "")
    apply_name_prefix_suffix(resources, "b-", "-z")
    (service,) = resources
    assert service.name == "b-a-svc-z"
    assert [p.name for p in service.previous] == ["svc", "a-svc", "b-a-svc"]
    assert name_prefixes(service) == ["a-", "b-"]
    assert name_suffixes(service) == ["-z"]


# --- labels and annotations ------------------------------------------------------------------


def test_common_labels_reach_selectors_and_templates() -> None:
    service = _obj("v1", "Service", "s")
    job = _obj("batch/v1", "Job", "j", spec={"template": {}})
    pdb = _obj("policy/v1", "PodDisruptionBudget", "p", spec={"selector": {}})
    daemon_set = _obj("apps/v1", "DaemonSet", "ds", spec={"selector": None})
    resources = _list(service, job, pdb, daemon_set)
    apply_labels(resources, [], {"app": "demo", "on": "true"})
    labels = {"app": "demo", "on": "true"}
    service, job, pdb, daemon_set = resources.objects()
    assert service["spec"] == {"selector": labels}
    # Optional selectors are only filled in when present.
    assert job["spec"] == {"template": {"metadata": {"labels": labels}}}
    assert pdb["spec"] == {"selector": {}}
    assert daemon_set["spec"] == {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}},
    }
    assert all(o["metadata"]["labels"] == labels for o in resources.objects())


def test_label_entries_choose_their_fields() -> None:
    claims = [{"metadata": {"name": "v"}}, {"spec": {}}]
    stateful_set = _obj("apps/v1", "StatefulSet", "ss", spec={"volumeClaimTemplates": claims})
    foo = _obj("example.com/v1", "Foo", "f", spec={"template": {}})
    resources = _list(stateful_set, foo)
    apply_labels(
        resources,
        [
            {"pairs": {"plain": "p"}},
            {"pairs": {"tmpl": "t"}, "includeTemplates": True},
            {
                "pairs": {"custom": "c"},
                "fields": [
                    {"path": "spec/template/metadata/labels", "kind": "Foo", "create": True}
                ],
            },
        ],
        {},
    )
    stateful_set, foo = resources.objects()
    assert stateful_set["metadata"]["labels"] == {"plain": "p", "tmpl": "t", "custom": "c"}
    assert stateful_set["spec"]["template"] == {"metadata": {"labels": {"tmpl": "t"}}}
    assert "selector" not in stateful_set["spec"]
    assert [c["metadata"]["labels"] for c in stateful_set["spec"]["volumeClaimTemplates"]] == [
        {"tmpl": "t"},
        {"tmpl": "t"},
    ]
    assert foo["spec"]["template"] == {"metadata": {"labels": {"custom": "c"}}}


def test_label_values_must_be_strings() -> None:
    with pytest.raises(KustomizeError) as error:
        apply_labels(_list(_deployment()), [], {"replicas": 1})
    assert str(error.value) == (
        "invalid Kustomization: json: cannot unmarshal number into Go struct field "
        "Kustomization.commonLabels of type string"
    )


def test_conflicting_label_fields_are_an_error() -> None:
    entry = {
        "pairs": {"a": "b"},
        "includeSelectors": True,
        "fields": [{"path": "spec/selector/matchLabels", "kind": "Deployment"}],
    }
    with pytest.raises(KustomizeError, match="failed to merge labels: conflicting fieldspecs"):
        apply_labels(_list(_deployment()), [entry], {})


def test_common_annotations_reach_pod_templates() -> None:
    cron_job = _obj("batch/v1", "CronJob", "cj", spec={"jobTemplate": {"spec": {"template": {}}}})
    resources = _list(_deployment(), cron_job)
    apply_annotations(resources, {"team": "core"})
    deployment, cron_job = resources.objects()
    team = {"team": "core"}
    assert deployment["spec"] == {"template": {"metadata": {"annotations": team}}}
    assert cron_job["spec"]["jobTemplate"] == {
        "metadata": {"annotations": team},
        "spec": {"template": {"metadata": {"annotations": team}}},
    }


# --- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("nginx", ("nginx", "", "")),
        ("nginx:1.0", ("nginx", "1.0", "")),
        ("nginx@sha256:aa", ("nginx", "", "sha256:aa")),
        ("nginx:1.0@sha256:aa", ("nginx", "1.0", "sha256:aa")),
        ("localhost:5000/app", ("localhost:5000/app", "", "")),
        ("localhost:5000/app:v1", ("localhost:5000/app", "v1", "")),
    ],
)
def test_split_image(image: str, parts: tuple[str, str, str]) -> None:
    assert split_image(image) == parts


def _pod(*images: str) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return _obj("v1", "Pod", "p", spec={"containers": containers})


def _images(resources: ResourceList) -> list[str]:
    return [c["image"] for c in resources.objects()[0]["spec"]["containers"]]


def test_images_change_name_tag_and_digest() -> None:
    resources = _list(_pod("nginx", "nginx:1.0@sha256:bb", "nginxx:1", "app@sha512:cc", "both:1"))
    apply_images(
        resources,
        [
            {"name": "nginx", "newName": "my.reg/nginx", "newTag": "2.0"},
            {"name": "app", "newName": "app2"},
            {"name": "both", "newTag": "t3", "digest": "sha256:ff"},
        ],
    )
    # Only sha256 digests match; a new tag drops the old digest.
    assert _images(resources) == [
        "my.reg/nginx:2.0",
        "my.reg/nginx:2.0",
        "nginxx:1",
        "app@sha512:cc",
        "both:t3@sha256:ff",
    ]


def test_image_names_with_registry_ports_and_regex_characters() -> None:
    resources = _list(_pod("localhost:5000/app", "reg.io/x:1", "regxio/x:1"))
    apply_images(
        resources,
        [
            {"name": "localhost:5000/app", "newTag": "v9"},
            {"name": "reg.io/x", "digest": "sha256:d"},
        ],
    )
    assert _images(resources) == ["localhost:5000/app:v9", "reg.io/x@sha256:d", "regxio/x@sha256:d"]


def test_images_anywhere_under_containers_but_not_in_crds() -> None:
    foo = _obj(
        "example.com/v1",
        "Foo",
        "f",
        spec={"deep": {"containers": [{"image": "nginx"}], "image": "nginx"}},
    )
    crd = _obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "x",
        spec={"containers": [{"image": "nginx"}]},
    )
    resources = _list(foo, crd)
    apply_images(resources, [{"name": "nginx", "newTag": "2"}])
    foo, crd = resources.objects()
    assert foo["spec"]["deep"] == {"containers": [{"image": "nginx:2"}], "image": "nginx"}
    assert crd["spec"]["containers"] == [{"image": "nginx"}]


# --- replicas --------------------------------------------------------------------------------


def test_replicas_match_current_or_earlier_names_of_any_group() -> None:
    resources = _list(
        _obj("apps/v1", "Deployment", "p-d", spec={"replicas": 1}),
        _obj("example.com/v1", "Deployment", "d"),
        _obj("v1", "Service", "d"),
    )
    first = next(iter(resources))
    first.previous.append(ResId("apps", "v1", "Deployment", "d"))
    apply_replicas(resources, [{"name": "d", "count": 3}])
    assert [o.get("spec") for o in resources.objects()] == [{"replicas": 3}, {"replicas": 3}, None]


def test_replicas_without_a_match_are_an_error() -> None:
    with pytest.raises(KustomizeError) as error:
        apply_replicas(_list(_deployment()), [{"name": "nope", "count": 1}])
    assert str(error.value) == (
        "resource with name nope does not match a config with the following GVK "
        "[Deployment.[noVer].[noGrp] StatefulSet.[noVer].[noGrp] ReplicaSet.[noVer].[noGrp] "
        "ReplicationController.[noVer].[noGrp]]"
    )


# --- configurations and crds -----------------------------------------------------------------

_DEFINITIONS: dict[str, Any] = {
    "example.com/app/v1.App": {
        "Schema": {
            "properties": {
                "apiVersion": {},
                "kind": {},
                "metadata": {},
                "spec": {"$ref": "example.com/app/v1.AppSpec"},
            }
        }
    },
    "example.com/app/v1.AppSpec": {
        "Schema": {
            "properties": {
                "podAnnotations": {"x-kubernetes-annotation": ""},
                "selector": {"x-kubernetes-label-selector": ""},
                "workloadName": {"x-kubernetes-identity": ""},
                "account": {
                    "x-kubernetes-object-ref-api-version": "v1",
                    "x-kubernetes-object-ref-kind": "ServiceAccount",
                    "x-kubernetes-object-ref-name-key": "accountName",
                },
            }
        }
    },
}


def test_crd_definitions_declare_field_specs() -> None:
    found = TransformerConfig.from_crd_definitions(_DEFINITIONS, "crd.json")
    assert found.common_annotations == [FieldSpec("spec/podAnnotations", "App")]
    assert found.common_labels == [FieldSpec("spec/selector", "App")]
    assert found.name_prefix == [FieldSpec("spec/workloadName", "App")]
    assert found.name_references == [
        NameReference("ServiceAccount", "", "v1", (FieldSpec("spec/account/accountName", "App"),))
    ]
    merged = TransformerConfig.default().merge(found)
    (account,) = [r for r in merged.name_references if r.kind == "ServiceAccount"]
    assert account.referrers[-1] == FieldSpec("spec/account/accountName", "App")


def test_crd_fields_get_prefixes_labels_and_annotations() -> None:
    config = TransformerConfig.default().merge(
        TransformerConfig.from_crd_definitions(_DEFINITIONS, "crd.json")
    )
    app = _obj("example.com/v1", "App", "app", spec={"podAnnotations": {}, "workloadName": "web"})
    resources = _list(app)
    apply_name_prefix_suffix(resources, "p-", "-s", config)
    apply_labels(resources, [], {"team": "a"}, config)
    apply_annotations(resources, {"owner": "b"}, config)
    (app,) = resources.objects()
    # The identity field takes the prefix only; a missing label selector is not created.
    assert app["metadata"]["name"] == "p-app-s"
    assert app["spec"] == {"podAnnotations": {"owner": "b"}, "workloadName": "p-web"}


def test_configurations_join_name_references_and_refuse_conflicts() -> None:
    document = {
        "nameReference": [
            {"kind": "Secret", "version": "v1", "fieldSpecs": [{"path": "spec/s", "kind": "B"}]}
        ],
        "commonLabels": [{"path": "metadata/labels"}],
    }
    config = TransformerConfig.from_configuration(document, "config.yaml")
    merged_refs = TransformerConfig.default().merge(
        TransformerConfig(name_references=config.name_references)
    )
    (secret,) = [r for r in merged_refs.name_references if r.kind == "Secret"]
    assert secret.referrers[-1] == FieldSpec("spec/s", "B")
    # metadata/labels is a default with create: true.
    with pytest.raises(KustomizeError, match="failed to merge CommonLabels fieldSpec"):
        TransformerConfig.default().merge(config)
