"""Inventory ids and entries exactly as Flux writes `status.inventory`, and change sets."""

from __future__ import annotations

import json

import pytest

from tidegate.apply import (
    Action,
    ChangeSet,
    ChangeSetEntry,
    Inventory,
    InventoryEntry,
    InventoryError,
    ObjMetadata,
)


def test_ids_follow_flux_format() -> None:
    deployment = ObjMetadata("apps", "podinfo", "apps", "Deployment")
    assert deployment.id == "apps_podinfo_apps_Deployment"
    assert ObjMetadata("default", "settings", "", "ConfigMap").id == "default_settings__ConfigMap"
    assert ObjMetadata("", "apps", "", "Namespace").id == "_apps__Namespace"
    crd = ObjMetadata("", "widgets.example.com", "apiextensions.k8s.io", "CustomResourceDefinition")
    assert crd.id == "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition"


def test_rbac_names_transcode_colons() -> None:
    role = ObjMetadata("", "system:flux:view", "rbac.authorization.k8s.io", "ClusterRole")
    assert role.id == "_system__flux__view_rbac.authorization.k8s.io_ClusterRole"
    assert ObjMetadata.parse(role.id) == role


@pytest.mark.parametrize(
    "value",
    [
        "apps_podinfo_apps_Deployment",
        "default_settings__ConfigMap",
        "_apps__Namespace",
        "flux-system_my.app_source.toolkit.fluxcd.io_OCIRepository",
    ],
)
def test_parse_round_trips(value: str) -> None:
    assert ObjMetadata.parse(value).id == value


@pytest.mark.parametrize("value", ["", "nounderscore", "a_b", "ns_too_many_fields__Kind"])
def test_parse_rejects_malformed_ids(value: str) -> None:
    with pytest.raises(InventoryError):
        ObjMetadata.parse(value)


def test_from_object_and_subject() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "a"},
    }
    meta = ObjMetadata.from_object(obj)
    assert meta == ObjMetadata("a", "web", "apps", "Deployment")
    assert meta.subject == "Deployment/a/web"
    assert ObjMetadata("", "a", "", "Namespace").subject == "Namespace/a"


def test_status_round_trip_and_api_version() -> None:
    status = {
        "entries": [
            {"id": "_apps__Namespace", "v": "v1"},
            {"id": "apps_podinfo_apps_Deployment", "v": "v1"},
            {"id": "apps_podinfo_autoscaling_HorizontalPodAutoscaler", "v": "v2"},
        ]
    }
    inventory = Inventory.from_status(status)
    assert inventory.to_status() == status
    assert [e.api_version for e in inventory] == ["v1", "apps/v1", "autoscaling/v2"]
    assert Inventory.from_status(None).to_status() == {"entries": []}
    with pytest.raises(InventoryError):
        Inventory.from_status({"entries": [{"id": "broken", "v": "v1"}]})


def test_diff_lists_what_left_in_apply_order() -> None:
    old = Inventory.from_status(
        {
            "entries": [
                {"id": "_apps__Namespace", "v": "v1"},
                {"id": "apps_web_apps_Deployment", "v": "v1"},
                {"id": "apps_settings__ConfigMap", "v": "v1"},
                {"id": "apps_web_autoscaling_HorizontalPodAutoscaler", "v": "v2beta2"},
                {
                    "id": "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition",
                    "v": "v1",
                },
            ]
        }
    )
    # The HPA moved to another version: the same object, so not stale.
    new = Inventory.from_status(
        {
            "entries": [
                {"id": "apps_web_apps_Deployment", "v": "v1"},
                {"id": "apps_web_autoscaling_HorizontalPodAutoscaler", "v": "v2"},
            ]
        }
    )
    stale = old.diff(new)
    assert [e.id for e in stale] == [
        "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition",
        "_apps__Namespace",
        "apps_settings__ConfigMap",
    ]
    assert new.diff(old) == []

    new.merge([InventoryEntry("apps_settings__ConfigMap", "v1"), new.entries[0]])
    assert [e.id for e in new] == [
        "apps_web_apps_Deployment",
        "apps_web_autoscaling_HorizontalPodAutoscaler",
        "apps_settings__ConfigMap",
    ]


def test_changeset_reports_as_flux() -> None:
    changeset = ChangeSet(
        [
            ChangeSetEntry(ObjMetadata("", "apps", "", "Namespace"), "v1", Action.UNCHANGED),
            ChangeSetEntry(ObjMetadata("apps", "web", "apps", "Deployment"), "v1", Action.CREATED),
            ChangeSetEntry(ObjMetadata("apps", "cfg", "", "ConfigMap"), "v1", Action.SKIPPED),
            ChangeSetEntry(ObjMetadata("apps", "svc", "", "Service"), "v1", Action.CONFIGURED),
        ]
    )
    assert changeset.to_map() == {
        "Namespace/apps": "unchanged",
        "Deployment/apps/web": "created",
        "ConfigMap/apps/cfg": "skipped",
        "Service/apps/svc": "configured",
    }
    assert str(changeset.changed()) == "Deployment/apps/web created\nService/apps/svc configured"
    message, _, output = changeset.summary().partition(" {")
    assert message == "server-side apply completed"
    assert json.loads("{" + output) == changeset.to_map()
    assert changeset.inventory().to_status() == {
        "entries": [
            {"id": "_apps__Namespace", "v": "v1"},
            {"id": "apps_web_apps_Deployment", "v": "v1"},
            {"id": "apps_cfg__ConfigMap", "v": "v1"},
            {"id": "apps_svc__Service", "v": "v1"},
        ]
    }
