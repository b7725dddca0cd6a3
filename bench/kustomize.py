"""Build the kustomize corpus and a large overlay with tidegate and, side by side, with kubectl.

tidegate builds in-process (as the controller does: one process, many builds); kubectl runs
`kubectl kustomize DIR` as a subprocess per build (as a controller shelling out would). Both
build the same trees in the same run, interleaved, after one warm-up round that also compares
their outputs. Prints the median seconds per build and the ratio kubectl / tidegate (above 1:
tidegate is faster; the target is above 2).

    .venv/bin/python bench/kustomize.py [--runs N] [--apps N] [--envs N]

The large overlay: a base of --apps apps (a Deployment, a Service and a ConfigMap each, plus a
generated ConfigMap every Deployment refers to), and --envs overlays of it, each with a
namespace, a name prefix, labels with selectors, annotations, images, replicas, a merged and a
new generator, a strategic merge patch on every Deployment and a JSON 6902 patch on Services.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from tidegate.kustomize import KustomizeError, build_yaml

ROOT = Path(__file__).resolve().parents[1]


def load_corpus() -> ModuleType:
    """The corpus helpers (tests/kustomize/corpus/regenerate.py)."""
    path = ROOT / "tests" / "kustomize" / "corpus" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("kustomize_corpus", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: example/{name}:1.0
        ports:
        - containerPort: 8080
        envFrom:
        - configMapRef:
            name: {name}-config
        - configMapRef:
            name: shared-settings
        volumeMounts:
        - name: config
          mountPath: /etc/{name}
      volumes:
      - name: config
        configMap:
          name: {name}-config
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app: {name}
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
data:
  APP_NAME: {name}
  LISTEN: ":8080"
"""

OVERLAY = """\
namespace: {env}
namePrefix: {env}-
labels:
- pairs:
    env: {env}
  includeSelectors: true
commonAnnotations:
  owner: team-{env}
resources:
- ../base
images:
{images}
replicas:
- name: app-000
  count: 3
configMapGenerator:
- name: shared-settings
  behavior: merge
  literals:
  - ENVIRONMENT={env}
- name: {env}-extra
  literals:
  - REGION=eu-west-1
patches:
- target:
    kind: Deployment
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      template:
        spec:
          containers:
          - name: app
            resources:
              limits:
                memory: 256Mi
            env:
            - name: ENVIRONMENT
              value: {env}
- target:
    kind: Service
    name: app-0.*
  patch: |-
    - op: add
      path: /metadata/annotations/exposed
      value: "true"
"""


def make_overlay(root: Path, apps: int, envs: int) -> Path:
    """The large overlay's tree under `root`; returns the directory to build."""
    names = [f"app-{i:03d}" for i in range(apps)]
    base = root / "base"
    base.mkdir(parents=True)
    for name in names:
        (base / f"{name}.yaml").write_text(APP.format(name=name))
    resources = "".join(f"- {name}.yaml\n" for name in names)
    (base / "kustomization.yaml").write_text(
        f"resources:\n{resources}configMapGenerator:\n- name: shared-settings\n"
        "  literals:\n  - LOG_LEVEL=info\n  - TIMEOUT=30\n"
    )
    environments = [f"env{i}" for i in range(envs)]
    for env in environments:
        images = "".join(
            f'- name: example/{name}\n  newTag: "2.{i}"\n' for i, name in enumerate(names[:20])
        )
        (root / env).mkdir()
        (root / env / "kustomization.yaml").write_text(OVERLAY.format(env=env, images=images))
    (root / "kustomization.yaml").write_text(
        "resources:\n" + "".join(f"- {env}\n" for env in environments)
    )
    return root


def kubectl(directory: Path) -> str:
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


def timed(build: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    output = build()
    return time.perf_counter() - start, output


def corpus_trees(corpus: ModuleType, scratch: Path) -> list[tuple[str, Path, Path]]:
    """(name, tree tidegate builds, tree kubectl builds) for every case that builds."""
    trees = []
    for case in corpus.case_dirs():
        if (case / corpus.EXPECTED_ERROR).is_file():
            continue
        tree = corpus.build_tree(case, scratch / "tidegate")
        reference = tree
        if not corpus.has_kustomization(case):
            # Flux's generation step: kubectl builds the kustomization Flux would write.
            reference = corpus.build_tree(case, scratch / "kubectl")
            text = (case / corpus.FLUX_REFERENCE).read_text()
            (reference / "kustomization.yaml").write_text(text)
        trees.append((case.name, tree, reference))
    return trees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--apps", type=int, default=100, help="apps in the large base")
    parser.add_argument("--envs", type=int, default=5, help="overlays of the large base")
    args = parser.parse_args()
    if shutil.which("kubectl") is None:
        sys.exit("kubectl is not on PATH")

    corpus = load_corpus()
    with tempfile.TemporaryDirectory(prefix="tidegate-bench-") as scratch_name:
        scratch = Path(scratch_name)
        for side in ("tidegate", "kubectl"):
            (scratch / side).mkdir()
        cases = corpus_trees(corpus, scratch)
        large = make_overlay(scratch / "large", args.apps, args.envs)
        jobs = [(name, tree, ref) for name, tree, ref in cases] + [("large", large, large)]
        times: dict[tuple[str, str], list[float]] = {}
        differ: list[str] = []
        failed: list[str] = []
        objects = 0
        # Interleaved, so that both meet the same cache state; the first round warms up,
        # compares the outputs and is not counted.
        for round_ in range(args.runs + 1):
            for name, tree, reference in jobs:
                try:
                    ours, ours_out = timed(lambda tree=tree: build_yaml(tree))
                except KustomizeError as exc:
                    if round_ == 0:
                        failed.append(f"{name}: {exc}")
                    continue
                theirs, theirs_out = timed(lambda reference=reference: kubectl(reference))
                if round_ == 0:
                    if ours_out != theirs_out:
                        differ.append(name)
                    if name == "large":
                        objects = theirs_out.count("\nkind: ") + theirs_out.startswith("kind: ")
                    continue
                times.setdefault((name, "tidegate"), []).append(ours)
                times.setdefault((name, "kubectl"), []).append(theirs)

    median = {key: statistics.median(values) for key, values in times.items()}
    corpus_names = sorted({name for name, _ in median} - {"large"})
    print(f"corpus: {len(corpus_names)} cases built by both; large overlay: {objects} objects "
          f"({args.apps} apps x {args.envs} overlays); {args.runs} runs each after one "
          "warm-up, interleaved; median seconds per build")  # fmt: skip
    print(f"{'':22}{'tidegate':>10}{'kubectl':>10}{'kubectl/tidegate':>18}")
    rows: list[tuple[str, float, float]] = []
    if corpus_names:
        rows.append(
            (
                "corpus, per case",
                statistics.median(median[(n, "tidegate")] for n in corpus_names),
                statistics.median(median[(n, "kubectl")] for n in corpus_names),
            )
        )
        rows.append(
            (
                "corpus, all cases",
                sum(median[(n, "tidegate")] for n in corpus_names),
                sum(median[(n, "kubectl")] for n in corpus_names),
            )
        )
    if ("large", "tidegate") in median:
        rows.append(("large overlay", median[("large", "tidegate")], median[("large", "kubectl")]))
    for label, ours, theirs in rows:
        print(f"{label:22}{ours:>10.4f}{theirs:>10.4f}{theirs / ours:>17.2f}x")
    if differ:
        print(f"outputs differ from kubectl's in {len(differ)} builds: {', '.join(differ)}")
    if failed:
        print(f"tidegate failed {len(failed)} builds (not timed):")
        for line in failed:
            print(f"  {line.splitlines()[0][:160]}")


if __name__ == "__main__":
    main()
