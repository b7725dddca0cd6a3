"""The corpus (tests/kustomize/corpus, see its README): every case built by tidegate equals
kustomize v5's output byte for byte, or fails with kustomize's error; where kubectl is on PATH,
each case is also compared live with `kubectl kustomize`."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from tidegate.kustomize import KustomizeError, build_yaml


def _load_corpus() -> ModuleType:
    path = Path(__file__).parent / "corpus" / "regenerate.py"
    spec = importlib.util.spec_from_file_location("kustomize_corpus", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus()
CASES: list[Path] = corpus.case_dirs()
# Cases kubectl can build directly (Flux's generation step is tidegate's, not kubectl's).
KUBECTL_CASES = [c for c in CASES if corpus.has_kustomization(c)]
# tidegate refuses remote resources; kubectl fetches them when the machine has network.
NOT_LIVE = {"error-remote-url": "kubectl fetches remote resources when it has network"}


def _ids(cases: list[Path]) -> list[str]:
    return [c.name for c in cases]


def _is_error_case(case: Path) -> bool:
    return (case / corpus.EXPECTED_ERROR).is_file()


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_build_matches_kustomize(case: Path, tmp_path: Path) -> None:
    tree = corpus.build_tree(case, tmp_path)
    if _is_error_case(case):
        with pytest.raises(KustomizeError) as failure:
            build_yaml(tree)
        message = str(failure.value)
        for phrase in corpus.expected_phrases(case):
            assert phrase in message
    else:
        assert build_yaml(tree) == (case / corpus.EXPECTED).read_text()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")
@pytest.mark.parametrize("case", KUBECTL_CASES, ids=_ids(KUBECTL_CASES))
def test_build_matches_kubectl_live(case: Path) -> None:
    if case.name in NOT_LIVE:
        pytest.skip(NOT_LIVE[case.name])
    reference = corpus.kubectl_kustomize(case)
    if reference.returncode != 0:
        with pytest.raises(KustomizeError):
            build_yaml(case)
    else:
        assert build_yaml(case) == reference.stdout


def test_corpus_covers_the_issue() -> None:
    """At least 60 cases, of which at least 10 are errors, and every case has its expectation."""
    assert len(CASES) >= 60
    assert sum(_is_error_case(c) for c in CASES) >= 10
    for case in CASES:
        assert _is_error_case(case) or (case / corpus.EXPECTED).is_file(), case.name
