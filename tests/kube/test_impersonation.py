"""Per-call impersonation of ServiceAccounts and users, judged by the API server's RBAC."""

from __future__ import annotations

import pytest

from tidegate.kube import Client, Forbidden, Impersonation

pytestmark = pytest.mark.cluster


async def test_service_account_needs_a_role_binding(kube: Client, namespace: str) -> None:
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": namespace},
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "deployer", "namespace": namespace},
        }
    )
    deployer = Impersonation.service_account(namespace, "deployer")

    with pytest.raises(Forbidden) as denied:
        await kube.get("v1", "ConfigMap", "app", namespace, impersonate=deployer)
    assert denied.value.status == 403
    assert denied.value.reason == "Forbidden"
    assert f"system:serviceaccount:{namespace}:deployer" in denied.value.message

    await kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-configmaps", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        }
    )
    await kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "deployer-reads", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-configmaps",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": namespace}],
        }
    )
    got = await kube.get("v1", "ConfigMap", "app", namespace, impersonate=deployer)
    assert got["metadata"]["name"] == "app"
    # The binding grants reads only; the same identity still cannot write.
    with pytest.raises(Forbidden):
        await kube.delete("v1", "ConfigMap", "app", namespace, impersonate=deployer)
    # Impersonation is per call: the client itself is still the admin.
    await kube.delete("v1", "ConfigMap", "app", namespace)


async def test_impersonated_identity_as_the_server_sees_it(kube: Client, namespace: str) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    me = await kube.create(review)
    assert me["status"]["userInfo"]["username"] == "tidegate-admin"
    assert "system:masters" in me["status"]["userInfo"]["groups"]

    sa = await kube.create(review, impersonate=Impersonation.service_account(namespace, "bot"))
    info = sa["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{namespace}:bot"
    assert {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"} <= set(info["groups"])

    user = await kube.create(review, impersonate=Impersonation("jane", groups=("dev", "ops")))
    assert user["status"]["userInfo"]["username"] == "jane"
    assert {"dev", "ops"} <= set(user["status"]["userInfo"]["groups"])
