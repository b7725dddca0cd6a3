"""Flux's stages and apply order."""

from __future__ import annotations

from tidegate.apply import ObjMetadata, is_class_definition, is_cluster_definition, sort_key

from .support import manifests


def test_stage_membership_follows_flux() -> None:
    objects = manifests("cluster.yaml", namespace="n", suffix="s")
    definitions = sorted(o["kind"] for o in objects if is_cluster_definition(o))
    assert definitions == ["ClusterRole", "Namespace"]
    classes = [
        o["kind"] for o in objects if not is_cluster_definition(o) and is_class_definition(o)
    ]
    assert classes == ["IngressClass"]
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    assert is_cluster_definition(crd)
    # A kind named Namespace in another group is not a cluster definition.
    assert not is_cluster_definition({"apiVersion": "example.com/v1", "kind": "Namespace"})


def test_sort_order() -> None:
    kinds = [
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("apps", "Deployment"),
        ("example.com", "Widget"),
        ("", "ConfigMap"),
        ("", "Namespace"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("", "Service"),
        ("networking.k8s.io", "Ingress"),
    ]
    metas = [ObjMetadata("ns", "x", group, kind) for group, kind in kinds]
    ordered = [m.kind for m in sorted(metas, key=sort_key)]
    assert ordered == [
        "CustomResourceDefinition",
        "Namespace",
        "ConfigMap",
        "Service",
        "Deployment",
        "Widget",
        "Ingress",
        "ValidatingWebhookConfiguration",
    ]
