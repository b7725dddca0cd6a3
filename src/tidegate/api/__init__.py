"""Python models of the Flux-compatible kinds tidegate serves, and their CRDs.

Each kind is declared once, as typed models (`Model` subclasses whose fields carry their API
facts through `field()`); from that come both the CRD's OpenAPI schema (`crds()`,
`crds_yaml()`) and the parser a controller uses on objects from the API server
(`OCIRepository.from_object(obj)`, with defaults applied and `InvalidObject` naming the bad
field). Types every kind shares — `Condition`, `Artifact`, object and Secret references,
`Duration` — live in one place for the kinds to come.
"""

from ._crd import CRD_API_VERSION, CRD_KIND, KINDS, crds, crds_yaml, custom_resource_definition
from ._duration import (
    DURATION_PATTERN,
    TIMEOUT_PATTERN,
    Duration,
    InvalidDuration,
    format_duration,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
)
from ._errors import InstallError, InvalidObject
from ._install import FIELD_MANAGER, install_crds
from ._meta import (
    Artifact,
    Condition,
    ConditionStatus,
    LocalObjectReference,
    NamespacedObjectKindReference,
    NamespacedObjectReference,
    ObjectMeta,
    ReconcileRequestStatus,
    SecretKeyReference,
)
from ._model import FieldInfo, Model, Rule, field, format_time
from ._ocirepository import (
    LAYER_COPY,
    LAYER_EXTRACT,
    LayerOperation,
    OCILayerSelector,
    OCIProvider,
    OCIRepository,
    OCIRepositoryRef,
    OCIRepositorySpec,
    OCIRepositoryStatus,
    OCIRepositoryVerification,
    OIDCIdentityMatch,
    VerificationProvider,
)
from ._resource import (
    AGE_COLUMN,
    READY_COLUMN,
    STATUS_COLUMN,
    PrinterColumn,
    Resource,
    ResourceInfo,
)

__all__ = [
    "AGE_COLUMN",
    "CRD_API_VERSION",
    "CRD_KIND",
    "DURATION_PATTERN",
    "FIELD_MANAGER",
    "KINDS",
    "LAYER_COPY",
    "LAYER_EXTRACT",
    "READY_COLUMN",
    "STATUS_COLUMN",
    "TIMEOUT_PATTERN",
    "Artifact",
    "Condition",
    "ConditionStatus",
    "Duration",
    "FieldInfo",
    "InstallError",
    "InvalidDuration",
    "InvalidObject",
    "LayerOperation",
    "LocalObjectReference",
    "Model",
    "NamespacedObjectKindReference",
    "NamespacedObjectReference",
    "OCILayerSelector",
    "OCIProvider",
    "OCIRepository",
    "OCIRepositoryRef",
    "OCIRepositorySpec",
    "OCIRepositoryStatus",
    "OCIRepositoryVerification",
    "OIDCIdentityMatch",
    "ObjectMeta",
    "PrinterColumn",
    "ReconcileRequestStatus",
    "Resource",
    "ResourceInfo",
    "Rule",
    "SecretKeyReference",
    "VerificationProvider",
    "crds",
    "crds_yaml",
    "custom_resource_definition",
    "field",
    "format_duration",
    "format_duration_ns",
    "format_time",
    "install_crds",
    "parse_duration",
    "parse_duration_ns",
]
