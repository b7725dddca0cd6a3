"""Types every kind shares: Kubernetes' `ObjectMeta` and `Condition`, and Flux's `meta` package
(object and Secret references, `Artifact`, the reconcile-request status)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ._model import Model, field

# Facts of metav1.Condition's validation, as the API server's own types declare them.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
# Flux's `meta.Artifact.digest`: `<algorithm>:<encoded>`.
DIGEST_PATTERN = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"

ConditionStatus = Literal["True", "False", "Unknown"]


class ObjectMeta(Model, opaque=True):
    """Standard object metadata. CRDs publish it as a bare object (the API server knows its
    schema); the fields a controller reads are parsed. `managedFields` is not."""

    name: str = ""
    generate_name: str = ""
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: dt.datetime | None = None
    deletion_timestamp: dt.datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    owner_references: tuple[dict[str, Any], ...] = ()


class LocalObjectReference(Model):
    """A reference to an object in the same namespace as the object that holds it."""

    name: str = field(description="Name of the referenced object.")


class SecretKeyReference(Model):
    """A reference to one key of a Secret in the same namespace."""

    name: str = field(description="Name of the Secret.")
    key: str = field(
        default="",
        description="Key in the Secret's data; when empty, the consumer's default key is used.",
    )


class NamespacedObjectReference(Model):
    """A reference to an object, in another namespace if one is given."""

    name: str = field(description="Name of the referenced object.")
    namespace: str = field(
        default="",
        description="Namespace of the referenced object; defaults to the referrer's namespace.",
    )


class NamespacedObjectKindReference(Model):
    """A reference to an object of a given kind, in another namespace if one is given."""

    api_version: str = field(
        default="",
        json="apiVersion",
        description="API version of the referenced object; when empty, the kind's preferred one.",
    )
    kind: str = field(description="Kind of the referenced object.")
    name: str = field(description="Name of the referenced object.")
    namespace: str = field(
        default="",
        description="Namespace of the referenced object; defaults to the referrer's namespace.",
    )


class Condition(Model):
    """One aspect of an object's current state, as `status.conditions` lists them."""

    type: str = field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of the condition, in CamelCase or as `example.com/CamelCase`.",
    )
    status: ConditionStatus = field(
        description="Whether the condition holds: True, False or Unknown."
    )
    observed_generation: int = field(
        default=0,
        minimum=0,
        description=(
            "The `.metadata.generation` the condition was computed from; when it is behind the "
            "object's generation, the condition is out of date."
        ),
    )
    last_transition_time: dt.datetime = field(
        description="When the condition last changed its status.",
    )
    reason: str = field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="A CamelCase identifier of why the condition last changed, for programs.",
    )
    message: str = field(
        max_length=32768,
        description="A human-readable account of the change; may be empty.",
    )


class Artifact(Model):
    """A file a source controller produced and serves over HTTP, such as a tarball of an
    OCI artifact's content."""

    path: str = field(
        description="Path of the file relative to the root of the controller's artifact storage.",
    )
    url: str = field(
        description="HTTP address from which consumers such as a kustomize controller fetch it.",
    )
    revision: str = field(
        description="Human-readable identifier of the origin, such as `<tag>@sha256:<hex>`.",
    )
    digest: str = field(
        pattern=DIGEST_PATTERN,
        description="Digest of the file as `<algorithm>:<checksum>`.",
    )
    last_update_time: dt.datetime = field(description="When the artifact last changed.")
    size: int | None = field(default=None, description="Size of the file in bytes.")
    metadata: dict[str, str] = field(
        default_factory=dict,
        description="Upstream information about the origin, such as OCI annotations.",
    )


class ReconcileRequestStatus(Model):
    """Status fields of kinds that honour the `reconcile.fluxcd.io/requestedAt` annotation."""

    last_handled_reconcile_at: str = field(
        default="",
        description=(
            "The value of the `reconcile.fluxcd.io/requestedAt` annotation last acted on, so "
            "that a new value is noticed."
        ),
    )
