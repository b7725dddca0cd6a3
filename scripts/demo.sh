#!/usr/bin/env bash
# The quick start. Today it shows the local environment only; the GitOps walk-through (push an
# artifact, reconcile a Kustomization) arrives with the Kustomization controller.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/tidegate-demo.XXXXXX")
trap '.venv/bin/tidegate dev down --dir "$dir/dev" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

echo "== tidegate dev up"
eval "$(.venv/bin/tidegate dev up --dir "$dir/dev")"
echo "KUBECONFIG=$KUBECONFIG"
echo "TIDEGATE_REGISTRY=$TIDEGATE_REGISTRY"

echo "== namespaces, read with tidegate.kube"
.venv/bin/python - <<'PY'
import asyncio
from tidegate.kube import Client

async def main() -> None:
    async with await Client.connect() as kube:
        listed = await kube.list("v1", "Namespace")
        for item in listed["items"]:
            print(" ", item["metadata"]["name"])
        version = await kube.request("GET", "/version")
        print("  server", version["gitVersion"])

asyncio.run(main())
PY

echo "== registry"
.venv/bin/python -c "import httpx, os; print('  GET /v2/ ->', httpx.get(f'http://{os.environ[\"TIDEGATE_REGISTRY\"]}/v2/').status_code)"

echo "== tidegate dev status"
.venv/bin/tidegate dev status --dir "$dir/dev"

echo "== tidegate dev down"
.venv/bin/tidegate dev down --dir "$dir/dev"
echo
echo "The GitOps quick start (push an artifact, reconcile it into the cluster) arrives with the"
echo "Kustomization controller; see README.md, 'What works today'."
