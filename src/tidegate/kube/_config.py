"""Where the cluster is and how to authenticate: kubeconfig (incl. exec plugins) or in-cluster."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import ConfigException, load_incluster_config
from kubernetes_asyncio.config.kube_config import (
    ENV_KUBECONFIG_PATH_SEPARATOR,
    KubeConfigLoader,
    KubeConfigMerger,
)

from ._errors import ConfigError

_IN_CLUSTER_ENV = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
# Where the kubelet mounts a Pod's ServiceAccount token and the cluster CA.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class ClusterConfig:
    """A cluster endpoint plus the credential to use against it.

    `configuration` carries host and TLS settings; credentials that expire (exec plugins,
    projected in-cluster tokens) are refreshed by `authorization()` before each request.
    """

    configuration: Configuration
    source: str
    _loader: KubeConfigLoader | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return str(self.configuration.host)

    async def authorization(self, *, refresh: bool = False) -> str | None:
        """The `Authorization` header value, or None when the credential is a client cert.

        `refresh=True` discards a cached exec-plugin credential first (after a 401), as
        client-go does.
        """
        loader = self._loader
        if loader is not None and loader._user is not None and "exec" in loader._user:
            # The plugin ran when the kubeconfig was loaded. Run it again only when its
            # credential expires (the loader checks `expirationTimestamp`) or was rejected;
            # a credential without expiry lasts for the life of the client, as in client-go.
            if refresh and hasattr(loader, "exec_plugin_expiry"):
                del loader.exec_plugin_expiry
            if refresh or hasattr(loader, "exec_plugin_expiry"):
                await loader.load_from_exec_plugin()
            token = getattr(loader, "token", None)
            if token:
                self.configuration.api_key["BearerToken"] = token
        token = await self.configuration.get_api_key_with_prefix("BearerToken")
        if token:
            return str(token)
        if self.configuration.username and self.configuration.password:
            raw = f"{self.configuration.username}:{self.configuration.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None


def _kubeconfig_paths(explicit: str | os.PathLike[str] | None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    paths = [Path(p).expanduser() for p in env.split(ENV_KUBECONFIG_PATH_SEPARATOR) if p]
    if paths:
        return paths
    default = Path.home() / ".kube" / "config"
    return [default] if default.exists() else []


async def load_config(
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
) -> ClusterConfig:
    """Load the cluster configuration the way kubectl and Flux's controllers do.

    Order: an explicit kubeconfig path, then `$KUBECONFIG` (several files are merged), then
    `~/.kube/config`, then the in-cluster ServiceAccount.
    """
    paths = _kubeconfig_paths(kubeconfig)
    if paths:
        missing = [str(p) for p in paths if not p.exists()]
        if len(missing) == len(paths):
            raise ConfigError(f"kubeconfig not found: {', '.join(missing)}")
        return await _from_kubeconfig(paths, context)
    if all(os.environ.get(name) for name in _IN_CLUSTER_ENV):
        configuration = Configuration()
        try:
            load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration,
                token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
                cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
            )
        except ConfigException as exc:
            raise ConfigError(f"failed to load in-cluster config: {exc}") from exc
        return ClusterConfig(configuration, "in-cluster")
    raise ConfigError(
        "no cluster configuration: set KUBECONFIG or pass a kubeconfig, or run inside a cluster"
    )


async def _from_kubeconfig(paths: list[Path], context: str | None) -> ClusterConfig:
    joined = ENV_KUBECONFIG_PATH_SEPARATOR.join(str(p) for p in paths if p.exists())
    configuration = Configuration()
    try:
        merged: Any = KubeConfigMerger(joined).config
        loader = KubeConfigLoader(
            config_dict=merged,
            active_context=context,
            config_base_path=None,
        )
        await loader.load_and_set(configuration)
    except (ConfigException, OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"failed to load kubeconfig {joined}: {exc}") from exc
    name = loader.current_context["name"] if loader.current_context else "?"
    return ClusterConfig(configuration, f"kubeconfig {joined} (context {name})", loader)
