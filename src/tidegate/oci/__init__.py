"""OCI registries and Flux artifacts.

`Registry` is a distribution client on `tidegate._http` (auth from challenges, docker config and
credential helpers; blobs, manifests, tags, referrers; digests checked on every read).
`push`, `pull`, `tag`, `list_artifacts` and `diff` work with artifacts in Flux's format.
"""

from ._artifact import (
    CREATED,
    FLUX_CONFIG,
    FLUX_CONTENT,
    REPRODUCIBLE_CREATED,
    REVISION,
    SOURCE,
    ArtifactInfo,
    Difference,
    PullResult,
    PushResult,
    artifact_manifest,
    build_layer,
    diff,
    download_layer,
    extract_layer,
    fetch_manifest,
    list_artifacts,
    pull,
    push,
    select_layer,
    tag,
)
from ._auth import Credentials, config_credentials, docker_credentials
from ._client import (
    DOCKER_MANIFEST,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    Registry,
    sha256_digest,
)
from ._errors import (
    ArtifactError,
    AuthenticationFailed,
    DigestMismatch,
    InvalidReference,
    NotFound,
    OCIError,
    RegistryError,
    UnsafeArchive,
)
from ._reference import Reference
from ._tarball import DEFAULT_MAX_SIZE

__all__ = [
    "CREATED",
    "DEFAULT_MAX_SIZE",
    "DOCKER_MANIFEST",
    "FLUX_CONFIG",
    "FLUX_CONTENT",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "REPRODUCIBLE_CREATED",
    "REVISION",
    "SOURCE",
    "ArtifactError",
    "ArtifactInfo",
    "AuthenticationFailed",
    "Credentials",
    "Difference",
    "DigestMismatch",
    "InvalidReference",
    "Manifest",
    "NotFound",
    "OCIError",
    "PullResult",
    "PushResult",
    "Reference",
    "Registry",
    "RegistryError",
    "UnsafeArchive",
    "artifact_manifest",
    "build_layer",
    "config_credentials",
    "diff",
    "docker_credentials",
    "download_layer",
    "extract_layer",
    "fetch_manifest",
    "list_artifacts",
    "pull",
    "push",
    "select_layer",
    "sha256_digest",
    "tag",
]
