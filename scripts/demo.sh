#!/usr/bin/env bash
# The quick start: a local control plane and registry, the controllers, and the bundled example
# application (examples/quickstart) delivered as an OCI artifact, updated and pruned.
#
#   make demo                # everything is removed at the end, on failure and on Ctrl-C too
#   make demo ARGS=--keep    # (or KEEP=1) leave the environment and the controller running
set -euo pipefail
cd "$(dirname "$0")/.."

keep=${KEEP:-0}
[ "$keep" = 0 ] || keep=1
for arg in "$@"; do
    case $arg in
        --keep) keep=1 ;;
        -h | --help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown argument $arg (use --keep)" >&2; exit 2 ;;
    esac
done

tg=.venv/bin/tidegate
py=.venv/bin/python
devdir=.tidegate/demo
work=$(mktemp -d "${TMPDIR:-/tmp}/tidegate-demo.XXXXXX")
log=$work/controller.log
ctl_pid=""
dev_started=0
started=$(date +%s)

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
# Long commands run in the background and are waited for, so that Ctrl-C reaches the trap at
# once (bash defers traps until a foreground command ends) and the cleanup stops them.
child=""
fg() { "$@" & child=$!; wait "$child"; child=""; }
run() { printf '$ %s\n' "$*"; fg "$@"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ]; then
        echo >&2
        echo "demo: FAILED (exit $rc)." >&2
        if [ -s "$log" ]; then
            echo "demo: last lines of the controller log ($log):" >&2
            tail -n 40 "$log" >&2 || true
        fi
    fi
    if [ "$keep" = 1 ] && [ "$dev_started" = 1 ]; then
        echo
        echo "Kept (--keep). Use the environment with:"
        echo "  export KUBECONFIG=$KUBECONFIG TIDEGATE_REGISTRY=$TIDEGATE_REGISTRY"
        [ -n "$ctl_pid" ] && echo "  controller: pid $ctl_pid, log $log"
        echo "Remove it with:"
        [ -n "$ctl_pid" ] && echo "  kill $ctl_pid"
        echo "  $tg dev down --dir $devdir && rm -rf $work"
        exit "$rc"
    fi
    if [ -n "$ctl_pid" ] && kill -0 "$ctl_pid" 2>/dev/null; then
        kill -TERM "$ctl_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$ctl_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$ctl_pid" 2>/dev/null || true
        wait "$ctl_pid" 2>/dev/null || true
    fi
    if [ "$dev_started" = 1 ]; then
        $tg dev down --dir "$devdir" >/dev/null 2>&1 || echo "demo: tidegate dev down --dir $devdir failed" >&2
    fi
    rm -rf "$work"
    if [ "$rc" -eq 0 ]; then
        echo
        echo "Cleaned up: controller stopped, $devdir down, $work removed."
        echo "Done in $(($(date +%s) - started))s."
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

# The checks and listings below, over tidegate's Kubernetes client (no kubectl needed).
cat >"$work/kube.py" <<'PY'
import asyncio, sys, time
from tidegate.kube import Client, NotFound

NS, NAME = "default", "demo"
KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")

def ready(obj):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready":
            return c
    return {}

async def wait(kube, digest, timeout=120.0):
    """Until the Kustomization is Ready and has applied the artifact with this digest."""
    deadline = time.monotonic() + timeout
    while True:
        ks = await kube.get(*KS, NAME, NS)
        status, cond = ks.get("status") or {}, ready(ks)
        if cond.get("status") == "True" and status.get("lastAppliedRevision", "").endswith(digest):
            print(f"  Ready: {cond['reason']}: {cond['message']}")
            return
        if time.monotonic() > deadline:
            print(f"  timed out; Ready={cond.get('status')} {cond.get('reason')}: {cond.get('message')}")
            sys.exit(1)
        await asyncio.sleep(0.5)

async def status(kube):
    ks = await kube.get(*KS, NAME, NS)
    st, cond = ks["status"], ready(ks)
    print(f"  Kustomization {NS}/{NAME}: Ready={cond['status']} ({cond['reason']})")
    print(f"    lastAppliedRevision: {st.get('lastAppliedRevision')}")
    print(f"    inventory ({len(st['inventory']['entries'])} entries):")
    for e in st["inventory"]["entries"]:
        print(f"      {e['id']}  {e['v']}")

async def objects(kube):
    """Each object in the inventory, read back from the API server."""
    ks = await kube.get(*KS, NAME, NS)
    for e in ks["status"]["inventory"]["entries"]:
        ns, name, group, kind = e["id"].split("_")
        obj = await kube.get(f"{group}/{e['v']}" if group else e["v"], kind, name, ns or None)
        print(f"  {kind:<24} {(ns + '/' if ns else '') + name:<40} {detail(obj)}")

def detail(obj):
    kind = obj["kind"]
    if kind == "Deployment":
        c = obj["spec"]["template"]["spec"]["containers"][0]
        return f"replicas={obj['spec']['replicas']} image={c['image']}"
    if kind == "ConfigMap":
        return ", ".join(f"{k}={v}" for k, v in obj["data"].items())
    if kind == "Service":
        return f"{obj['spec']['type']} {obj['spec']['clusterIP']}:{obj['spec']['ports'][0]['port']}"
    if kind == "HorizontalPodAutoscaler":
        return f"{obj['spec']['minReplicas']}..{obj['spec']['maxReplicas']} replicas"
    labels = obj["metadata"].get("labels") or {}
    return f"owner={labels.get('kustomize.toolkit.fluxcd.io/namespace')}/{labels.get('kustomize.toolkit.fluxcd.io/name')}"

async def gone(kube, api_version, kind, name, ns):
    try:
        await kube.get(api_version, kind, name, ns)
    except NotFound:
        print(f"  {kind} {ns}/{name}: NotFound (pruned)")
        return
    print(f"  {kind} {ns}/{name} still exists")
    sys.exit(1)

async def main():
    async with await Client.connect() as kube:
        cmd, *args = sys.argv[1:]
        await globals()[cmd](kube, *args)

asyncio.run(main())
PY
kube() { fg "$py" "$work/kube.py" "$@"; }

step "1. Start the dev environment (etcd, kube-apiserver, OCI registry) in $devdir"
if [ -e "$devdir" ]; then
    # Only the demo's own folder: left over from an earlier `--keep` run.
    $tg dev down --dir "$devdir" >/dev/null 2>&1 || true
fi
dev_started=1
fg $tg dev up --dir "$devdir" >"$work/env"
env_lines=$(cat "$work/env")
eval "$env_lines"
echo "$env_lines"

step "2. Install the CRDs"
run $tg install --crds-only

step "3. Start the controllers (source, kustomize) in the background"
read -r storage_port metrics_port health_port < <("$py" -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks: s.close()')
mkdir -p "$work/storage"
printf '$ %s\n' "tidegate controller run --storage-path $work/storage --storage-addr 127.0.0.1:$storage_port ... 2> $log &"
$tg controller run \
    --storage-path "$work/storage" \
    --storage-addr "127.0.0.1:$storage_port" --storage-adv-addr "127.0.0.1:$storage_port" \
    --metrics-addr "127.0.0.1:$metrics_port" --health-addr "127.0.0.1:$health_port" \
    >"$log" 2>&1 &
ctl_pid=$!
fg "$py" - "$health_port" "$ctl_pid" <<'PY'
import os, sys, time, httpx
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("  the controller exited")
    try:
        if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
            print(f"  controller ready (pid {pid}, /readyz on 127.0.0.1:{port})")
            sys.exit(0)
    except httpx.HTTPError:
        pass
    time.sleep(0.3)
sys.exit("  the controller did not become ready in 60s")
PY

repo=oci://$TIDEGATE_REGISTRY/demo/app

step "4. Push the example application v1 (examples/quickstart/v1) and tag it latest"
ls examples/quickstart/v1
run $tg push artifact "$repo:v1" -f examples/quickstart/v1 --source examples/quickstart \
    --revision v1@sha1:0000000000000000000000000000000000000001 --insecure-registry \
    | tee "$work/digest"
digest1=$(tail -n 1 "$work/digest")
run $tg tag artifact "$repo:v1" --tag latest --insecure-registry

step "5. Create the OCIRepository"
run $tg create source oci demo --url "$repo" --tag latest --insecure --interval 10m -n default

step "6. Create the Kustomization (prune, path ./, source OCIRepository/demo)"
ks_args=(demo --source OCIRepository/demo --path ./ --prune --interval 10m -n default)
$tg create kustomization "${ks_args[@]}" --export | sed 's/^/  /'
run $tg create kustomization "${ks_args[@]}"

step "7. Wait until the Kustomization is Ready with v1"
kube wait "${digest1##*@}"

step "8. tidegate get sources oci -A"
$tg get sources oci -A

step "9. tidegate get kustomizations -A, and the Kustomization's status"
$tg get kustomizations -A
kube status

step "10. Applied objects, read back from the API server"
kube objects

step "11. Push v2: HorizontalPodAutoscaler removed, Deployment image 6.7.0 -> 6.7.1"
diff -r examples/quickstart/v1 examples/quickstart/v2 | sed 's/^/  /' || true
run $tg push artifact "$repo:v2" -f examples/quickstart/v2 --source examples/quickstart \
    --revision v2@sha1:0000000000000000000000000000000000000002 --insecure-registry \
    | tee "$work/digest"
digest2=$(tail -n 1 "$work/digest")
run $tg tag artifact "$repo:v2" --tag latest --insecure-registry

step "12. Reconcile the source now"
run $tg reconcile source oci demo -n default

step "13. Wait until the Kustomization applied v2"
kube wait "${digest2##*@}"
$tg get kustomizations -A
kube status

step "14. The changed Deployment, and the pruned HorizontalPodAutoscaler"
kube objects
kube gone autoscaling/v2 HorizontalPodAutoscaler podinfo tidegate-demo
$tg get sources oci -A

echo
echo "demo: all steps passed."
