"""The test environment: real etcd, kube-apiserver and OCI registry on 127.0.0.1.

Used by the pytest fixtures (`tidegate.testing.pytest_plugin`), by benchmarks, and by
`tidegate dev up|down|status`.
"""

from ._binaries import (
    COSIGN_VERSION,
    FLUX_VERSION,
    KUBERNETES_VERSION,
    KUSTOMIZE_CONTROLLER_VERSION,
    NOTATION_GO_VERSION,
    SOURCE_CONTROLLER_VERSION,
    Binaries,
    MissingPrerequisite,
    cache_dir,
    cosign_binary,
    find_binaries,
    flux_binary,
    kustomize_controller_binary,
    kustomize_controller_crds,
    notation_signer_binary,
    source_controller_binary,
    source_controller_crds,
)
from ._environment import AlreadyRunning, Environment, ProcessRecord, StartError

__all__ = [
    "COSIGN_VERSION",
    "FLUX_VERSION",
    "KUBERNETES_VERSION",
    "KUSTOMIZE_CONTROLLER_VERSION",
    "NOTATION_GO_VERSION",
    "SOURCE_CONTROLLER_VERSION",
    "AlreadyRunning",
    "Binaries",
    "Environment",
    "MissingPrerequisite",
    "ProcessRecord",
    "StartError",
    "cache_dir",
    "cosign_binary",
    "find_binaries",
    "flux_binary",
    "kustomize_controller_binary",
    "kustomize_controller_crds",
    "notation_signer_binary",
    "source_controller_binary",
    "source_controller_crds",
]
