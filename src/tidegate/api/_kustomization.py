"""`kustomize.toolkit.fluxcd.io/v1` Kustomization: which source artifact to build, how to build
it (path, target namespace, name prefix and suffix, patches, images, components, post-build
substitution) and how to apply, prune, health-check and order the result.

Field for field as Flux's kustomize-controller v1.9 serves it (`api/v1/kustomization_types.go`,
`reference_types.go` and `inventory_types.go`, with the types it takes from fluxcd/pkg's
`apis/meta` and `apis/kustomize`), so existing Flux manifests apply unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from ._duration import Duration
from ._meta import (
    Condition,
    LocalObjectReference,
    NamespacedObjectKindReference,
    ReconcileRequestStatus,
    SecretKeyReference,
)
from ._model import Model, Rule, field
from ._resource import (
    AGE_COLUMN,
    READY_COLUMN,
    STATUS_COLUMN,
    Resource,
    ResourceInfo,
)

SourceKind = Literal["OCIRepository", "GitRepository", "Bucket", "ExternalArtifact"]
DeletionPolicy = Literal["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]
SubstituteKind = Literal["Secret", "ConfigMap"]
SubstituteStrategy = Literal["WithVariables", "Always"]
BuildMetadataOption = Literal["originAnnotations", "transformerAnnotations"]
DecryptionProvider = Literal["sops"]

# `spec.deletionPolicy`: what happens to the applied objects when the Kustomization is deleted.
# An empty policy is MirrorPrune.
DELETION_POLICY_MIRROR_PRUNE = "MirrorPrune"
DELETION_POLICY_DELETE = "Delete"
DELETION_POLICY_WAIT_FOR_TERMINATION = "WaitForTermination"
DELETION_POLICY_ORPHAN = "Orphan"

# `spec.postBuild.substituteStrategy`: WithVariables (the default) substitutes only when at
# least one variable is defined; Always substitutes in any case, for `${var:=default}`.
SUBSTITUTE_WITH_VARIABLES = "WithVariables"
SUBSTITUTE_ALWAYS = "Always"

# The finalizer kustomize-controller puts on a Kustomization to prune on deletion.
KUSTOMIZATION_FINALIZER = "finalizers.fluxcd.io"

_KUBECONFIG_EXACTLY_ONE = (
    "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"
)


class CrossNamespaceSourceReference(Model):
    """The source whose artifact holds the manifests, in another namespace if one is given."""

    api_version: str = field(
        default="",
        json="apiVersion",
        description="API version of the source; when empty, the kind's preferred one.",
    )
    kind: SourceKind = field(
        description="Kind of the source: OCIRepository, GitRepository, Bucket or ExternalArtifact.",
    )
    name: str = field(description="Name of the source.")
    namespace: str = field(
        default="",
        description="Namespace of the source; defaults to the Kustomization's namespace.",
    )

    def __str__(self) -> str:
        """`Kind/name` or `Kind/namespace/name`, as Flux writes the reference in messages."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


class DependencyReference(Model):
    """Another Kustomization that must be ready first."""

    name: str = field(description="Name of the Kustomization depended on.")
    namespace: str = field(
        default="",
        description="Namespace of the Kustomization depended on; defaults to this one's.",
    )
    ready_expr: str = field(
        default="",
        description=(
            "A CEL expression over `dep` (the dependency) and `self` that decides whether the "
            "dependency is ready, in place of the built-in check (Ready and up to date)."
        ),
    )

    def __str__(self) -> str:
        """`[namespace/]name[@readyExpr]`, as Flux writes dependencies."""
        text = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{text}@{self.ready_expr}" if self.ready_expr else text


class KubeConfigReference(
    Model,
    validations=[
        Rule("has(self.configMapRef) || has(self.secretRef)", message=_KUBECONFIG_EXACTLY_ONE),
        Rule("!has(self.configMapRef) || !has(self.secretRef)", message=_KUBECONFIG_EXACTLY_ONE),
    ],
):
    """How to reach a remote cluster to apply to: a kubeconfig in a Secret, or the parameters of
    secret-less (workload identity) authentication in a ConfigMap. Exactly one is set."""

    config_map_ref: LocalObjectReference | None = field(
        default=None,
        description=(
            "ConfigMap with the parameters of secret-less authentication: `provider` (aws, "
            "azure, gcp or generic), `cluster`, `address`, `ca.crt`, `audiences` and "
            "`serviceAccountName`."
        ),
    )
    secret_ref: SecretKeyReference | None = field(
        default=None,
        description=(
            "Secret with a self-contained kubeconfig under `key` (default `value`, or "
            "`value.yaml`)."
        ),
    )


class CommonMetadata(Model):
    """Labels and annotations set on every applied object, overriding the object's own."""

    annotations: dict[str, str] = field(
        default_factory=dict, description="Annotations to set on every object."
    )
    labels: dict[str, str] = field(
        default_factory=dict, description="Labels to set on every object."
    )


class Decryption(Model):
    """How to decrypt Secrets before applying them."""

    provider: DecryptionProvider = field(description="The decryption engine; only `sops`.")
    service_account_name: str = field(
        default="",
        description=(
            "ServiceAccount whose workload identity authenticates to cloud KMS services; a "
            "static credential in the Secret takes precedence."
        ),
    )
    secret_ref: LocalObjectReference | None = field(
        default=None,
        description="Secret with the decryption keys (age, OpenPGP) or KMS credentials.",
    )


class SubstituteReference(Model):
    """A ConfigMap or Secret whose data keys are post-build variables."""

    kind: SubstituteKind = field(description="Kind of the object: Secret or ConfigMap.")
    name: str = field(
        min_length=1,
        max_length=253,
        description="Name of the object, in the Kustomization's namespace.",
    )
    optional: bool = field(
        default=False,
        schema_default=True,
        description=(
            "Tolerate the object's absence, as if it were present and empty. Otherwise a "
            "missing object fails the reconciliation."
        ),
    )


class PostBuild(Model):
    """What to do with the manifests after kustomize built them: variable substitution."""

    substitute_strategy: SubstituteStrategy | None = field(
        default=None,
        description=(
            "WithVariables (the default) substitutes only when at least one variable is "
            "defined; Always substitutes in any case, so that `${var:=default}` takes effect."
        ),
    )
    substitute: dict[str, str] = field(
        default_factory=dict,
        description=(
            "Variables and their values, for `${var}` and the bash forms such as "
            "`${var:=default}`, `${var:position}` and `${var/substring/replacement}`. They take "
            "precedence over those from substituteFrom."
        ),
    )
    substitute_from: tuple[SubstituteReference, ...] = field(
        default=(),
        description=(
            "ConfigMaps and Secrets whose data keys are variables, later ones overriding "
            "earlier ones."
        ),
    )


class KustomizeSelector(Model):
    """Which objects a patch or rule applies to: all conditions set must match."""

    group: str = field(default="", description="API group of the objects.")
    version: str = field(default="", description="API version of the objects.")
    kind: str = field(default="", description="Kind of the objects.")
    namespace: str = field(default="", description="Namespace of the objects.")
    name: str = field(default="", description="Name of the objects (a regular expression).")
    annotation_selector: str = field(
        default="",
        description="A label selector expression matched against the objects' annotations.",
    )
    label_selector: str = field(
        default="",
        description="A label selector expression matched against the objects' labels.",
    )


class KustomizePatch(Model):
    """An inline strategic merge or JSON 6902 patch, and the objects it applies to."""

    patch: str = field(
        description=(
            "A strategic merge patch, or a JSON 6902 patch as an array of operations, as YAML."
        ),
    )
    target: KustomizeSelector | None = field(
        default=None,
        description="The objects to patch; for a strategic merge patch, its own id by default.",
    )


class KustomizeImage(Model):
    """A container image to rewrite: a new name, tag or digest for an image name."""

    name: str = field(description="The image name to match, without tag.")
    new_name: str = field(default="", description="The name to replace it with.")
    new_tag: str = field(default="", description="The tag to replace the original tag with.")
    digest: str = field(
        default="",
        description="The digest to replace the original tag with; newTag is then ignored.",
    )


class CustomHealthCheck(Model):
    """CEL expressions that tell the health of objects of one kind."""

    api_version: str = field(
        json="apiVersion", description="API version of the objects the expressions judge."
    )
    kind: str = field(default="", description="Kind of the objects the expressions judge.")
    current: str = field(
        description="CEL expression true when the object has reached its desired state.",
    )
    in_progress: str = field(
        default="",
        description="CEL expression true while the object has not yet reached it.",
    )
    failed: str = field(
        default="",
        description="CEL expression true when the object failed to reach it.",
    )


class IgnoreRule(Model):
    """Fields that drift detection and apply leave alone."""

    paths: tuple[str, ...] = field(
        description="JSON Pointers (RFC 6901) of the fields to ignore.",
    )
    target: KustomizeSelector | None = field(
        default=None,
        description="The objects the rule applies to; all the Kustomization's when not set.",
    )


class KustomizationSpec(Model):
    """The desired state of a Kustomization."""

    common_metadata: CommonMetadata | None = field(
        default=None,
        description=(
            "Labels and annotations set on every applied object, overriding any with the same key."
        ),
    )
    depends_on: tuple[DependencyReference, ...] = field(
        default=(),
        description="Kustomizations that must be ready before this one is reconciled.",
    )
    decryption: Decryption | None = field(
        default=None,
        description="Decrypt Secrets before applying them.",
    )
    interval: Duration = field(
        description=(
            "How often to reconcile, correcting drift. Approximate: reconciliations may be "
            "spread out with some jitter."
        ),
    )
    retry_interval: Duration | None = field(
        default=None,
        description="How soon to retry after a failed reconciliation; defaults to interval.",
    )
    kube_config: KubeConfigReference | None = field(
        default=None,
        description=(
            "Reconcile on a remote cluster. With serviceAccountName, that ServiceAccount is "
            "impersonated on the remote cluster."
        ),
    )
    path: str = field(
        default="",
        description=(
            "Directory in the artifact with the kustomization file, or the plain manifests to "
            "generate one for; the artifact's root when empty."
        ),
    )
    post_build: PostBuild | None = field(
        default=None,
        description="What to do with the manifests after the build: variable substitution.",
    )
    prune: bool = field(
        description="Delete the objects that a new revision no longer contains.",
    )
    deletion_policy: DeletionPolicy | None = field(
        default=None,
        description=(
            "What happens to the applied objects when the Kustomization is deleted: "
            "MirrorPrune (the default: deleted when prune is true, orphaned otherwise), "
            "Delete, WaitForTermination or Orphan."
        ),
    )
    health_checks: tuple[NamespacedObjectKindReference, ...] = field(
        default=(),
        description="Objects whose health decides whether the Kustomization is healthy.",
    )
    name_prefix: str = field(
        default="",
        min_length=1,
        max_length=200,
        description="A prefix for the names of all objects.",
    )
    name_suffix: str = field(
        default="",
        min_length=1,
        max_length=200,
        description="A suffix for the names of all objects.",
    )
    patches: tuple[KustomizePatch, ...] = field(
        default=(),
        description=(
            "Strategic merge and JSON 6902 patches, inline, selecting objects by kind, name, "
            "label and annotation."
        ),
    )
    images: tuple[KustomizeImage, ...] = field(
        default=(),
        description="New names, tags or digests for container images.",
    )
    service_account_name: str = field(
        default="",
        description="ServiceAccount to impersonate when reconciling.",
    )
    source_ref: CrossNamespaceSourceReference = field(
        description="The source whose artifact holds the manifests.",
    )
    suspend: bool = field(
        default=False,
        description="Stop reconciling until set back to false; a reconciliation under way ends.",
    )
    target_namespace: str = field(
        default="",
        min_length=1,
        max_length=63,
        description="Namespace of all namespaced objects, set or overriding kustomize's.",
    )
    timeout: Duration | None = field(
        default=None,
        description=(
            "Timeout of building, applying and health checking; defaults to interval less 30s, "
            "at least 30s."
        ),
    )
    force: bool = field(
        default=False,
        schema_default=True,
        description="Recreate objects whose update fails on an immutable field.",
    )
    wait: bool = field(
        default=False,
        description="Check the health of every applied object; healthChecks is then ignored.",
    )
    build_metadata: tuple[BuildMetadataOption, ...] = field(
        default=(),
        description=(
            "kustomize build metadata to add to the built objects: originAnnotations, "
            "transformerAnnotations."
        ),
    )
    components: tuple[str, ...] = field(
        default=(),
        description="Paths of kustomize Components, local and relative to path.",
    )
    ignore_missing_components: bool = field(
        default=False,
        description="Leave out components whose path is not in the artifact, instead of failing.",
    )
    health_check_exprs: tuple[CustomHealthCheck, ...] = field(
        default=(),
        description=(
            "CEL expressions for the health of custom resources, used with wait or healthChecks."
        ),
    )
    ignore: tuple[IgnoreRule, ...] = field(
        default=(),
        description="Fields that drift detection and apply leave alone.",
    )


class ResourceRef(Model):
    """One applied object, as the inventory records it."""

    id: str = field(description="The object as `<namespace>_<name>_<group>_<kind>`.")
    version: str = field(json="v", description="API version of the object's kind.")


class ResourceInventory(Model):
    """The objects applied by the last successful reconciliation."""

    entries: tuple[ResourceRef, ...] = field(
        default=(),
        # Go's `json:"entries"`: written even when empty, and required by the schema.
        required=True,
        description="The applied objects.",
    )


class Snapshot(Model):
    """One entry of the reconciliation history: a set of applied manifests and how its
    reconciliations went."""

    digest: str = field(description="Digest of the applied manifests, as `<algorithm>:<hex>`.")
    first_reconciled: dt.datetime = field(description="When it was first reconciled.")
    last_reconciled: dt.datetime = field(description="When it was last reconciled.")
    # A string without a pattern in Flux's schema: kept as written (`2.818583s`).
    last_reconciled_duration: str = field(description="How long the last reconciliation took.")
    last_reconciled_status: str = field(
        description="Reason of the last reconciliation's outcome, e.g. ReconciliationSucceeded.",
    )
    total_reconciliations: int = field(description="How many reconciliations it has had.")
    metadata: dict[str, str] = field(
        default_factory=dict,
        description="More about it, such as the source revision.",
    )


class KustomizationStatus(ReconcileRequestStatus):
    """The observed state of a Kustomization."""

    observed_generation: int = field(
        default=0,
        description="The last `.metadata.generation` the controller acted on; -1 before that.",
    )
    conditions: tuple[Condition, ...] = field(
        default=(),
        description="The conditions of the Kustomization (Ready, Reconciling, Stalled, Healthy).",
    )
    last_applied_revision: str = field(
        default="",
        description="Revision of the source artifact last applied successfully.",
    )
    last_applied_origin_revision: str = field(
        default="",
        description=(
            "Origin revision of the artifact last applied successfully, such as its "
            "`org.opencontainers.image.revision` annotation."
        ),
    )
    last_attempted_revision: str = field(
        default="",
        description="Revision of the source artifact of the last reconciliation attempt.",
    )
    inventory: ResourceInventory | None = field(
        default=None,
        description="The objects applied by the last successful reconciliation.",
    )
    history: tuple[Snapshot, ...] = field(
        default=(),
        description="The last reconciliations, most recent first.",
    )


class Kustomization(Resource):
    """A set of manifests from a source artifact, built with kustomize and kept applied on the
    cluster: drift corrected, removed objects pruned, health checked."""

    info = ResourceInfo(
        group="kustomize.toolkit.fluxcd.io",
        version="v1",
        kind="Kustomization",
        plural="kustomizations",
        singular="kustomization",
        short_names=("ks",),
        categories=("all", "fluxcd", "fluxcd-appliers"),
        printer_columns=(AGE_COLUMN, READY_COLUMN, STATUS_COLUMN),
    )

    spec: KustomizationSpec = field(required=False)
    status: KustomizationStatus = field(
        # Flux's CRD defaults the status so that a new object reads observedGeneration -1.
        default_factory=lambda: KustomizationStatus(observed_generation=-1),
        schema_default=True,
    )

    @property
    def deletion_policy(self) -> DeletionPolicy:
        """The deletion policy in force: MirrorPrune when the spec sets none."""
        return self.spec.deletion_policy or "MirrorPrune"

    @property
    def timeout(self) -> float:
        """Seconds allowed for build, apply and health checks: `spec.timeout`, or the interval
        less 30s; never under 30s (kustomize-controller's GetTimeout)."""
        seconds = (
            float(self.spec.timeout)
            if self.spec.timeout is not None
            else float(self.spec.interval) - 30.0
        )
        return max(seconds, 30.0)

    @property
    def retry_interval(self) -> float:
        """Seconds until a failed reconciliation is retried: `spec.retryInterval`, or the
        interval."""
        if self.spec.retry_interval is not None:
            return float(self.spec.retry_interval)
        return float(self.spec.interval)
