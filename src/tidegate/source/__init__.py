"""Sources: artifact storage and the artifact HTTP server.

`Storage` keeps each source object's artifacts as tarballs under
`<root>/<kind>/<namespace>/<name>/`, as Flux's source-controller does, and reports them as
`Artifact` values (`status.artifact`). `ArtifactServer` serves the storage root over HTTP.
"""

from ._server import ArtifactServer
from ._storage import (
    ARCHIVE_OPERATION_FAILED,
    DIRECTORY_CREATION_FAILED,
    GARBAGE_COLLECTION_FAILED,
    INVALID_PATH,
    LATEST,
    STAT_OPERATION_FAILED,
    SYMLINK_UPDATE_FAILED,
    Artifact,
    Storage,
    StorageError,
)

__all__ = [
    "ARCHIVE_OPERATION_FAILED",
    "DIRECTORY_CREATION_FAILED",
    "GARBAGE_COLLECTION_FAILED",
    "INVALID_PATH",
    "LATEST",
    "STAT_OPERATION_FAILED",
    "SYMLINK_UPDATE_FAILED",
    "Artifact",
    "ArtifactServer",
    "Storage",
    "StorageError",
]
