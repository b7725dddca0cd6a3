"""Rewrite the corpus's expected outputs from `kubectl kustomize` (kustomize v5).

    .venv/bin/python tests/kustomize/corpus/regenerate.py [--check] [CASE ...]

For each case directory: `expected.yaml` becomes the stdout of `kubectl kustomize CASE`. A case
with `expected-error.txt` is an error case: its phrases are chosen by hand, so they are not
rewritten; the script checks that kubectl still fails and that its message holds every phrase.
A case without a kustomization file exercises Flux's generation step, which kubectl does not
have: its expected output is built from `flux-reference.kustomization` (the file Flux would
generate), placed as the kustomization of a copy of the case. With --check nothing is written
and every difference is reported (exit status 1).

tests/kustomize/test_corpus.py and bench/kustomize.py load this file for the helpers below.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
EXPECTED = "expected.yaml"
EXPECTED_ERROR = "expected-error.txt"
FLUX_REFERENCE = "flux-reference.kustomization"
# Files of the corpus, not of the case: a build must not see them.
BOOKKEEPING = (EXPECTED, EXPECTED_ERROR, FLUX_REFERENCE)


def case_dirs() -> list[Path]:
    """Every case of the corpus, by name."""
    return sorted(p for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def has_kustomization(case: Path) -> bool:
    return any((case / name).is_file() for name in KUSTOMIZATION_FILES)


def expected_phrases(case: Path) -> list[str]:
    """The phrases an error case's message must hold, one per line."""
    text = (case / EXPECTED_ERROR).read_text()
    return [line for line in text.splitlines() if line.strip()]


def build_tree(case: Path, destination: Path) -> Path:
    """The directory to build for `case`: the case itself, or for a Flux-generation case (no
    kustomization file) a copy without the corpus's own files, which Flux would otherwise pick
    up as resources."""
    if has_kustomization(case):
        return case
    target = destination / case.name
    shutil.copytree(case, target, symlinks=True, ignore=shutil.ignore_patterns(*BOOKKEEPING))
    return target


def kubectl_kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )


def kubectl_error(stderr: str) -> str:
    """kustomize's message out of kubectl's log line (`err="…"` quoted, or `err=<` … `>`)."""
    quoted = re.search(r'err="((?:[^"\\]|\\.)*)"', stderr)
    if quoted:
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), quoted[1])
    block = re.search(r"err=<\n(.*?)\n >", stderr, re.DOTALL)
    if block:
        return "\n".join(line.removeprefix("\t") for line in block[1].splitlines())
    return stderr


def reference_output(case: Path) -> subprocess.CompletedProcess[str]:
    """kubectl's build of `case`; a Flux-generation case is built from its reference
    kustomization."""
    if has_kustomization(case):
        return kubectl_kustomize(case)
    with tempfile.TemporaryDirectory(prefix="tidegate-corpus-") as scratch:
        tree = build_tree(case, Path(scratch))
        reference = case / FLUX_REFERENCE
        if reference.is_file():
            (tree / "kustomization.yaml").write_text(reference.read_text())
        return kubectl_kustomize(tree)


def regenerate(case: Path, check: bool) -> str | None:
    """Refresh one case; the problem found, if any."""
    if (case / EXPECTED_ERROR).is_file():
        if not has_kustomization(case):
            return None  # Flux's generation fails before kustomize runs: no kubectl reference
        result = reference_output(case)
        if result.returncode == 0:
            return "kubectl succeeded, but the case expects an error"
        message = kubectl_error(result.stderr)
        missing = [p for p in expected_phrases(case) if p not in message]
        return f"kubectl's error lacks {missing}: {message}" if missing else None
    result = reference_output(case)
    if result.returncode != 0:
        return f"kubectl failed: {result.stderr.strip()}"
    expected = case / EXPECTED
    if expected.is_file() and expected.read_text() == result.stdout:
        return None
    if check:
        return f"{EXPECTED} differs from kubectl's output"
    expected.write_text(result.stdout)
    print(f"wrote {expected.relative_to(CORPUS)}")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--check", action="store_true", help="report differences, write nothing")
    args = parser.parse_args()
    if shutil.which("kubectl") is None:
        sys.exit("kubectl is not on PATH")
    cases = [CORPUS / name for name in args.cases] if args.cases else case_dirs()
    problems = 0
    for case in cases:
        problem = regenerate(case, args.check)
        if problem:
            problems += 1
            print(f"{case.name}: {problem}")
    version = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True)
    print(f"{len(cases)} cases, {problems} problems ({version.stdout.strip().splitlines()[-1]})")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
