"""`source.toolkit.fluxcd.io/v1` OCIRepository: where to pull an OCI artifact from, which version,
how to authenticate and how to verify its signature.

Field for field as Flux's source-controller serves it (`api/v1/ocirepository_types.go` and
`ociverification_types.go`), so existing Flux manifests apply unchanged.
"""

from __future__ import annotations

from typing import Literal

from ._duration import TIMEOUT_PATTERN, Duration
from ._meta import (
    Artifact,
    Condition,
    LocalObjectReference,
    ReconcileRequestStatus,
)
from ._model import Model, field
from ._resource import (
    AGE_COLUMN,
    READY_COLUMN,
    STATUS_COLUMN,
    PrinterColumn,
    Resource,
    ResourceInfo,
)

OCIProvider = Literal["generic", "aws", "azure", "gcp"]
LayerOperation = Literal["extract", "copy"]
VerificationProvider = Literal["cosign", "notation"]

# `spec.layerSelector.operation`: what happens to the selected layer.
LAYER_EXTRACT = "extract"
LAYER_COPY = "copy"


class OCIRepositoryRef(Model):
    """Which version of the artifact to pull. When several are set, `digest` wins over `semver`,
    and `semver` over `tag`; with none, the `latest` tag is pulled."""

    digest: str = field(
        default="",
        description="Digest to pull, as `sha256:<hex>`. Takes precedence over semver.",
    )
    semver: str = field(
        default="",
        description=(
            "A semantic version range: the highest tag within it is pulled. Takes precedence "
            "over tag."
        ),
    )
    semver_filter: str = field(
        default="",
        description="A regular expression the tags in the semver range must also match.",
    )
    tag: str = field(default="", description="Tag of the artifact to pull; defaults to `latest`.")


class OCILayerSelector(Model):
    """Which layer of the artifact to take, and what to do with it."""

    media_type: str = field(
        default="",
        description=(
            "Media type of the layer to take: the first layer of that type is selected. "
            "When empty, the first layer is."
        ),
    )
    operation: LayerOperation | None = field(
        default=None,
        description=(
            "What to do with the selected layer: `extract` its (compressed tarball) content "
            "into the stored artifact, which is the default, or `copy` the layer as it is."
        ),
    )


class OIDCIdentityMatch(Model):
    """An identity that a keyless (Fulcio certificate) signature must carry."""

    issuer: str = field(
        description=(
            "A regular expression (Go syntax) the OIDC issuer in the signing certificate "
            "must match."
        ),
    )
    subject: str = field(
        description=(
            "A regular expression (Go syntax) the identity subject in the signing certificate "
            "must match."
        ),
    )


class OCIRepositoryVerification(Model):
    """How to check that the artifact is authentic before it is used."""

    provider: VerificationProvider = field(
        default="cosign",
        schema_default=True,
        required=True,
        description="The signing technology: `cosign` or `notation`.",
    )
    secret_ref: LocalObjectReference | None = field(
        default=None,
        description="Secret holding the trusted public keys (or Notation's trust material).",
    )
    match_oidc_identity: tuple[OIDCIdentityMatch, ...] = field(
        default=(),
        json="matchOIDCIdentity",
        description=(
            "For keyless cosign signatures: the identities to accept. The signature is "
            "verified when any one of them matches the certificate's issuer and subject."
        ),
    )
    trusted_root_secret_ref: LocalObjectReference | None = field(
        default=None,
        description=(
            "Secret with a Sigstore `trusted_root.json` key, to verify against self-hosted "
            "Sigstore services (own Fulcio CA, own Rekor) instead of the public ones."
        ),
    )


class OCIRepositorySpec(Model):
    """The desired state of an OCIRepository."""

    url: str = field(
        pattern=r"^oci://.*$",
        description="Address of the OCI repository, as `oci://<registry>/<repository>`.",
    )
    ref: OCIRepositoryRef | None = field(
        default=None,
        description="Which version of the artifact to pull; the `latest` tag when not set.",
    )
    layer_selector: OCILayerSelector | None = field(
        default=None,
        description="Which layer of the artifact to take; the first one when not set.",
    )
    provider: OCIProvider = field(
        default="generic",
        schema_default=True,
        description=(
            "How to authenticate to the registry: `generic` (a Secret, a ServiceAccount's "
            "image pull secrets or anonymous), or the workload identity of `aws`, `azure` or "
            "`gcp`."
        ),
    )
    secret_ref: LocalObjectReference | None = field(
        default=None,
        description=(
            "Secret of type `kubernetes.io/dockerconfigjson` with credentials for the registry."
        ),
    )
    verify: OCIRepositoryVerification | None = field(
        default=None,
        description="Verify the artifact's signature before using it.",
    )
    service_account_name: str = field(
        default="",
        description=(
            "ServiceAccount whose image pull secrets authenticate to the registry, or whose "
            "workload identity does for a cloud provider."
        ),
    )
    cert_secret_ref: LocalObjectReference | None = field(
        default=None,
        description=(
            "Secret of type `Opaque` or `kubernetes.io/tls` with TLS material for the registry: "
            "`ca.crt` to trust a private CA, and `tls.crt` with `tls.key` to present a client "
            "certificate."
        ),
    )
    proxy_secret_ref: LocalObjectReference | None = field(
        default=None,
        description="Secret with the proxy (`address`, `username`, `password`) for the registry.",
    )
    interval: Duration = field(
        description=(
            "How often to look for a new version of the artifact. Approximate: reconciliations "
            "may be spread out with some jitter."
        ),
    )
    timeout: Duration = field(
        default=Duration("60s"),
        schema_default=True,
        pattern=TIMEOUT_PATTERN,
        description="Timeout of registry operations such as pulling; defaults to 60s.",
    )
    ignore: str | None = field(
        default=None,
        description=(
            "Paths to leave out of the stored artifact, in `.sourceignore` (gitignore) syntax; "
            "replaces the default list."
        ),
    )
    insecure: bool = field(
        default=False,
        description="Talk to the registry over plain HTTP, without TLS.",
    )
    suspend: bool = field(
        default=False,
        description="Stop reconciling this source until set back to false.",
    )


class OCIRepositoryStatus(ReconcileRequestStatus):
    """The observed state of an OCIRepository."""

    observed_generation: int = field(
        default=0,
        description="The last `.metadata.generation` the controller acted on; -1 before that.",
    )
    conditions: tuple[Condition, ...] = field(
        default=(),
        description="The conditions of the OCIRepository (Ready, Reconciling, Stalled, ...).",
    )
    url: str = field(
        default="",
        description="Download address of the artifact from the last successful sync.",
    )
    artifact: Artifact | None = field(
        default=None,
        description="The artifact produced by the last successful sync.",
    )
    observed_ignore: str | None = field(
        default=None,
        description="The ignore patterns the current artifact was built with.",
    )
    observed_layer_selector: OCILayerSelector | None = field(
        default=None,
        description="The layer selector the current artifact was built with.",
    )


class OCIRepository(Resource):
    """An OCI repository to pull artifacts from; each new version becomes a stored artifact
    that other controllers (Kustomization, HelmRelease) consume."""

    info = ResourceInfo(
        group="source.toolkit.fluxcd.io",
        version="v1",
        kind="OCIRepository",
        plural="ocirepositories",
        singular="ocirepository",
        short_names=("ocirepo",),
        categories=("all", "fluxcd", "fluxcd-sources"),
        printer_columns=(
            PrinterColumn("URL", "string", ".spec.url"),
            READY_COLUMN,
            STATUS_COLUMN,
            AGE_COLUMN,
        ),
    )

    spec: OCIRepositorySpec = field(required=False)
    status: OCIRepositoryStatus = field(
        # Flux's CRD defaults the status so that a new object reads observedGeneration -1.
        default_factory=lambda: OCIRepositoryStatus(observed_generation=-1),
        schema_default=True,
    )
