"""Rewrite the kubectl references of the Flux spec cases.

    .venv/bin/python tests/kustomize/testdata/flux-spec/regenerate.py          # rewrite
    .venv/bin/python tests/kustomize/testdata/flux-spec/regenerate.py --check  # only compare

Each case holds a Flux Kustomization (`ks.yaml`), the artifact it builds (`source/`) and, written
by hand from fluxcd/pkg's `GenerateManifest`, the kustomization Flux writes at `spec.path` for
it (`kustomization.yaml`). kubectl (kustomize v5.5.0) builds a copy of `source/` with that
kustomization in place, as Flux does (load restrictions off, output not sorted: kubectl gets
`sortOptions: {order: fifo}` for that, when the kustomization sets none), into `expected.yaml`.
Where Flux does more after the build (`commonMetadata`), `render.kustomization.yaml` says the
same in kustomize's terms, around the built directory, and kubectl builds that instead.
kubectl cannot substitute variables: a case with `postBuild` keeps the `expected.yaml` it has
(Flux's own).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

CASES = Path(__file__).resolve().parent
KUSTOMIZATION_FILE_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if (p / "ks.yaml").is_file())


def spec_of(case: Path) -> dict[str, object]:
    spec: dict[str, object] = yaml.safe_load((case / "ks.yaml").read_text())["spec"]
    return spec


def kubectl_build(case: Path) -> subprocess.CompletedProcess[str]:
    spec = spec_of(case)
    with tempfile.TemporaryDirectory(prefix="tidegate-flux-spec-") as scratch:
        source = Path(scratch) / "source"
        shutil.copytree(case / "source", source, symlinks=True)
        directory = source / str(spec.get("path") or ".")
        for name in KUSTOMIZATION_FILE_NAMES:
            (directory / name).unlink(missing_ok=True)
        kustomization = yaml.safe_load((case / "kustomization.yaml").read_text())
        unsorted = "sortOptions" not in kustomization
        render = case / "render.kustomization.yaml"
        if render.is_file():
            shutil.copyfile(case / "kustomization.yaml", directory / "kustomization.yaml")
            directory = Path(scratch) / "render"
            directory.mkdir()
            kustomization = yaml.safe_load(render.read_text())
        if unsorted:
            kustomization["sortOptions"] = {"order": "fifo"}
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return subprocess.run(
            ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )


def main(check: bool) -> int:
    changed = 0
    for case in cases():
        if "postBuild" in spec_of(case):
            print(f"{case.name}: post-build substitution, expected.yaml kept")
            continue
        result = kubectl_build(case)
        if result.returncode != 0:
            print(f"{case.name}: kubectl failed: {result.stderr}", file=sys.stderr)
            return 1
        expected = case / "expected.yaml"
        if expected.is_file() and expected.read_text() == result.stdout:
            continue
        changed += 1
        print(f"{case.name}: {'differs' if check else 'rewritten'}")
        if not check:
            expected.write_text(result.stdout)
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
