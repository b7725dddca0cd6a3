"""Strategic merge patch as kustomize v5.5.0 applies it (kyaml's merge2 walker); each expected
result here was checked with `kubectl kustomize`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tidegate.kustomize._errors import KustomizeError
from tidegate.kustomize._schema import patch_strategy, schema_for
from tidegate.kustomize._strategic import strategic_merge


def _deployment(pod: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", **metadata},
        "spec": {"template": {"spec": pod}},
    }


def _pod(result: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = result["spec"]["template"]["spec"]
    return pod


# -- maps and scalars ---------------------------------------------------------------------------


def test_maps_merge_and_null_removes() -> None:
    target = _deployment({}, labels={"a": "1", "b": "2"})
    patch = _deployment({}, labels={"b": None, "c": "3", "d": None})
    assert strategic_merge(target, patch)["metadata"]["labels"] == {"a": "1", "c": "3"}


def test_objects_own_nulls_stay_unless_the_patch_names_them() -> None:
    target = _deployment({"priority": None, "hostname": None})
    patch = _deployment({"hostname": None, "subdomain": "x"})
    assert _pod(strategic_merge(target, patch)) == {"priority": None, "subdomain": "x"}


def test_empty_maps_are_kept() -> None:
    target = _deployment({}, labels={"a": "1"})
    result = strategic_merge(target, {**_deployment({}, labels={"a": None}), "extra": {}})
    assert result["metadata"]["labels"] == {}
    assert result["extra"] == {}


def test_inputs_are_not_modified() -> None:
    target = _deployment({"containers": [{"name": "a", "image": "1"}]})
    patch = _deployment({"containers": [{"name": "a", "image": "2"}]})
    before = copy.deepcopy((target, patch))
    strategic_merge(target, patch)
    assert (target, patch) == before


# -- lists merged by key ------------------------------------------------------------------------


def test_containers_merge_by_name_patch_elements_first() -> None:
    target = _deployment({"containers": [{"name": "a", "image": "a:1"}, {"name": "b"}]})
    patch = _deployment({"containers": [{"name": "c"}, {"name": "a", "image": "a:2"}]})
    assert _pod(strategic_merge(target, patch))["containers"] == [
        {"name": "c"},
        {"name": "a", "image": "a:2"},
        {"name": "b"},
    ]


def test_env_volume_mounts_and_volumes_merge_by_key() -> None:
    target = _deployment(
        {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "A", "value": "1"}],
                    "volumeMounts": [{"mountPath": "/a", "name": "v1"}],
                }
            ],
            "volumes": [{"name": "v1", "emptyDir": {}}],
        }
    )
    patch = _deployment(
        {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
                    "volumeMounts": [{"mountPath": "/b", "name": "v2"}],
                }
            ],
            # merge,retainKeys: kustomize merges (and ignores retainKeys)
            "volumes": [{"name": "v2", "secret": {"secretName": "s"}}],
        }
    )
    pod = _pod(strategic_merge(target, patch))
    (container,) = pod["containers"]
    assert container["env"] == [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]
    assert container["volumeMounts"] == [
        {"mountPath": "/b", "name": "v2"},
        {"mountPath": "/a", "name": "v1"},
    ]
    assert pod["volumes"] == [
        {"name": "v2", "secret": {"secretName": "s"}},
        {"name": "v1", "emptyDir": {}},
    ]


def test_ports_merge_by_container_port_and_protocol() -> None:
    target = _deployment(
        {
            "containers": [
                {
                    "name": "a",
                    "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                }
            ]
        }
    )
    patch = _deployment(
        {
            "containers": [
                {
                    "name": "a",
                    "ports": [
                        {"containerPort": 53, "protocol": "TCP"},
                        {"containerPort": 80, "name": "http"},
                    ],
                }
            ]
        }
    )
    (container,) = _pod(strategic_merge(target, patch))["containers"]
    assert container["ports"] == [
        {"containerPort": 53, "protocol": "TCP"},
        {"containerPort": 80, "name": "http"},
        {"containerPort": 53, "protocol": "UDP"},
    ]


def test_elements_without_the_key_collapse_as_in_kustomize() -> None:
    # kyaml keeps only the last of an object's elements lacking the merge key.
    target = _deployment({"containers": [{"name": "a", "env": [{"value": "1"}, {"value": "2"}]}]})
    result = strategic_merge(target, _deployment({}))
    assert _pod(result)["containers"] == [{"name": "a", "env": [{"value": "2"}]}]


def test_duplicate_keys_collapse_to_the_last_element() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B"}, {"name": "A", "value": "2"}]
    result = strategic_merge(
        _deployment({"containers": [{"name": "a", "env": env}]}), _deployment({})
    )
    assert _pod(result)["containers"][0]["env"] == [{"name": "A", "value": "2"}, {"name": "B"}]


# -- lists of primitives and lists without a strategy -------------------------------------------


def test_finalizers_merge_as_a_set_patch_first() -> None:
    target = _deployment({}, finalizers=["a", "b"])
    patch = _deployment({}, finalizers=["c", "a"])
    assert strategic_merge(target, patch)["metadata"]["finalizers"] == ["c", "a", "b"]


def test_lists_without_strategy_are_replaced() -> None:
    target = _deployment(
        {"containers": [{"name": "a", "args": ["x", "y"]}], "tolerations": [{"key": "k"}]}
    )
    patch = _deployment({"containers": [{"name": "a", "args": ["z"]}], "tolerations": []})
    pod = _pod(strategic_merge(target, patch))
    assert pod["containers"][0]["args"] == ["z"]
    assert pod["tolerations"] == []


def test_fields_newer_than_kustomizes_schema_are_replaced() -> None:
    # kustomize's schema is Kubernetes 1.21's: schedulingGates (1.26) has no merge key there.
    target = _deployment({"schedulingGates": [{"name": "a"}]})
    patch = _deployment({"schedulingGates": [{"name": "b"}]})
    assert _pod(strategic_merge(target, patch))["schedulingGates"] == [{"name": "b"}]


def test_kinds_only_kustomizes_schema_has_still_merge() -> None:
    def cron(containers: list[dict[str, Any]]) -> dict[str, Any]:
        pod = {"containers": containers}
        job = {"jobTemplate": {"spec": {"template": {"spec": pod}}}}
        return {
            "apiVersion": "batch/v1beta1",
            "kind": "CronJob",
            "metadata": {"name": "c"},
            "spec": job,
        }

    result = strategic_merge(cron([{"name": "a"}]), cron([{"name": "b"}]))
    names = [
        c["name"] for c in result["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    ]
    assert names == ["b", "a"]


# -- custom resources ---------------------------------------------------------------------------


def test_kinds_without_schema_merge_like_a_json_merge_patch() -> None:
    target = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"items": [{"name": "a"}, {"name": "b"}], "settings": {"x": 1, "y": 2}},
    }
    patch = {**target, "spec": {"items": [{"name": "a", "size": 1}], "settings": {"y": None}}}
    assert strategic_merge(target, patch)["spec"] == {
        "items": [{"name": "a", "size": 1}],
        "settings": {"x": 1},
    }


def test_embedded_objects_merge_with_their_own_kinds_schema() -> None:
    def widget(containers: list[dict[str, Any]]) -> dict[str, Any]:
        template = _deployment({"containers": containers})
        return {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"template": template},
        }

    result = strategic_merge(widget([{"name": "a"}]), widget([{"name": "b"}]))
    assert _pod(result["spec"]["template"])["containers"] == [{"name": "b"}, {"name": "a"}]


# -- directives ---------------------------------------------------------------------------------


def test_patch_delete_removes_the_object() -> None:
    assert strategic_merge(_deployment({}), {**_deployment({}), "$patch": "delete"}) == {}


def test_patch_delete_on_a_map_and_an_element() -> None:
    target = _deployment({"nodeSelector": {"a": "b"}, "containers": [{"name": "a"}, {"name": "b"}]})
    patch = _deployment(
        {"nodeSelector": {"$patch": "delete"}, "containers": [{"name": "a", "$patch": "delete"}]}
    )
    assert _pod(strategic_merge(target, patch)) == {"containers": [{"name": "b"}]}


def test_patch_replace_on_a_map() -> None:
    target = _deployment({"nodeSelector": {"a": "b"}})
    patch = _deployment({"nodeSelector": {"$patch": "replace", "c": "d"}})
    assert _pod(strategic_merge(target, patch))["nodeSelector"] == {"c": "d"}


def test_patch_replace_and_delete_elements_of_a_list() -> None:
    target = _deployment({"containers": [{"name": "a"}], "volumes": [{"name": "v"}]})
    patch = _deployment(
        {
            "containers": [{"$patch": "replace"}, {"name": "b"}],
            "volumes": [{"$patch": "delete"}],
        }
    )
    assert _pod(strategic_merge(target, patch)) == {"containers": [{"name": "b"}]}


def test_patch_replace_on_one_element_does_nothing() -> None:
    # kyaml puts the object's element back over the replaced one.
    target = _deployment({"volumes": [{"name": "v", "configMap": {"name": "c"}}]})
    patch = _deployment(
        {"volumes": [{"name": "v", "$patch": "replace", "secret": {"secretName": "s"}}]}
    )
    assert _pod(strategic_merge(target, patch))["volumes"] == [
        {"name": "v", "configMap": {"name": "c"}}
    ]


def test_patch_directive_in_a_replaced_list_stays() -> None:
    target = _deployment({"containers": [{"name": "a", "args": ["x"]}]})
    patch = _deployment({"containers": [{"name": "a", "args": ["y", {"$patch": "replace"}]}]})
    assert _pod(strategic_merge(target, patch))["containers"][0]["args"] == [
        "y",
        {"$patch": "replace"},
    ]


def test_apimachinery_only_directives_are_copied_as_fields() -> None:
    target = _deployment({"containers": [{"name": "a", "args": ["x", "y"]}, {"name": "b"}]})
    patch = _deployment(
        {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "$retainKeys": ["containers"],
            "containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["x"]}],
        }
    )
    pod = _pod(strategic_merge(target, patch))
    assert pod["$setElementOrder/containers"] == [{"name": "b"}, {"name": "a"}]
    assert pod["$retainKeys"] == ["containers"]
    assert pod["containers"][0] == {
        "name": "a",
        "args": ["x", "y"],
        "$deleteFromPrimitiveList/args": ["x"],
    }


def test_unknown_directive() -> None:
    patch = _deployment({"nodeSelector": {"$patch": "remove"}})
    with pytest.raises(KustomizeError, match="unknown patch strategy 'remove'"):
        strategic_merge(_deployment({"nodeSelector": {}}), patch)


def test_list_against_map_is_an_error() -> None:
    with pytest.raises(KustomizeError) as caught:
        strategic_merge(_deployment({"containers": []}), _deployment({"containers": {"a": 1}}))
    assert str(caught.value) == (
        "wrong node kind: expected SequenceNode but got MappingNode: node contents:\n{a: 1}"
    )


# -- the schema data ----------------------------------------------------------------------------


def test_schema_lookups() -> None:
    assert patch_strategy("apps/v1", "Deployment", ["spec", "template", "spec", "containers"]) == (
        "merge",
        ("name",),
    )
    ports = ["spec", "template", "spec", "containers", "[]", "ports"]
    assert patch_strategy("apps/v1", "Deployment", ports) == (
        "merge",
        ("containerPort", "protocol"),
    )
    assert patch_strategy("v1", "Pod", ["spec", "volumes"]) == ("merge,retainKeys", ("name",))
    assert patch_strategy("v1", "Pod", ["metadata", "finalizers"]) == ("merge", ())
    assert patch_strategy("v1", "Pod", ["spec", "tolerations"]) == ("", ())
    assert schema_for("example.com/v1", "Widget") is None
