"""Rewrite the kubectl references of the build, yaml and error fixtures.

    .venv/bin/python tests/kustomize/testdata/regenerate.py          # rewrite
    .venv/bin/python tests/kustomize/testdata/regenerate.py --check  # only report differences

Needs `kubectl` (kustomize v5.5.0) on PATH. Each `build/*` and `yaml/*` case gets
`expected.yaml` (kubectl's stdout); each `errors/*` case gets `expected-error.txt`, kubectl's
message with the absolute path of `errors/` written `{errors}`. Cases listed in
`OWN_MESSAGES` keep a hand-written message: there tidegate words the error on purpose.

kubectl has no Flux generation step: for `flux/CASE/` it builds a copy of the tree with
`flux/CASE.kustomization.yaml` (the kustomization Flux generates, written by hand from
fluxcd/pkg's generator) as its kustomization, into `flux/CASE.expected.yaml`.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

TESTDATA = Path(__file__).resolve().parent
ERRORS = TESTDATA / "errors"
EXPECTED = "expected.yaml"
EXPECTED_ERROR = "expected-error.txt"
# tidegate's message differs from kubectl's on purpose (see each file).
OWN_MESSAGES: set[str] = set()


def build_cases() -> list[Path]:
    return sorted(
        p for group in ("build", "yaml") for p in (TESTDATA / group).iterdir() if p.is_dir()
    )


def error_cases() -> list[Path]:
    return sorted(p for p in ERRORS.iterdir() if p.is_dir())


def _corpus_tools() -> ModuleType:
    """The corpus's regenerate script, whose kubectl helpers serve both."""
    path = Path(__file__).parent.parent / "corpus" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("kustomize_corpus_tools", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TOOLS = _corpus_tools()
kubectl = _TOOLS.kubectl_kustomize
kubectl_error = _TOOLS.kubectl_error


def main(check: bool) -> int:
    changed = 0
    for case in build_cases():
        result = kubectl(case)
        if result.returncode != 0:
            print(f"{case.name}: kubectl failed: {result.stderr}", file=sys.stderr)
            return 1
        changed += _write(case / EXPECTED, result.stdout, check)
    for reference in sorted((TESTDATA / "flux").glob("*.kustomization.yaml")):
        case = reference.parent / reference.name.removesuffix(".kustomization.yaml")
        with tempfile.TemporaryDirectory() as scratch:
            tree = Path(scratch) / case.name
            shutil.copytree(case, tree, symlinks=True)
            shutil.copyfile(reference, tree / "kustomization.yaml")
            result = kubectl(tree)
        if result.returncode != 0:
            print(f"flux/{case.name}: kubectl failed: {result.stderr}", file=sys.stderr)
            return 1
        changed += _write(case.parent / f"{case.name}.expected.yaml", result.stdout, check)
    for case in error_cases():
        if case.name in OWN_MESSAGES:
            continue
        result = kubectl(case)
        if result.returncode == 0:
            print(f"{case.name}: kubectl succeeded", file=sys.stderr)
            return 1
        message = kubectl_error(result.stderr).replace(str(ERRORS), "{errors}")
        changed += _write(case / EXPECTED_ERROR, message + "\n", check)
    return 1 if check and changed else 0


def _write(path: Path, text: str, check: bool) -> int:
    if path.is_file() and path.read_text() == text:
        return 0
    print(f"{'differs' if check else 'wrote'}: {path.relative_to(TESTDATA)}")
    if not check:
        path.write_text(text)
    return 1


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
