"""Which files of a directory go into an artifact: Flux's default ignore list, `--ignore-paths`
and `.sourceignore` files, all in gitignore syntax."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# Flux's defaults (fluxcd/pkg sourceignore: VCS files and common binary formats).
DEFAULT_IGNORE = (
    ".git/",
    ".gitignore",
    ".gitmodules",
    ".gitattributes",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
)
SOURCEIGNORE = ".sourceignore"


class IgnoreRules:
    """Decides, for a path relative to the root, whether it is left out of the artifact.

    `patterns` replaces the defaults when given (as `--ignore-paths` does); `.sourceignore`
    files anywhere in the tree add patterns relative to their own folder.
    """

    def __init__(self, root: Path, patterns: Sequence[str] | None = None) -> None:
        import pathspec  # only pushes need it: keep it off the pull path's start-up

        lines = list(DEFAULT_IGNORE if patterns is None else patterns)
        for found in sorted(root.rglob(SOURCEIGNORE)):
            if found.is_symlink() or not found.is_file():
                continue
            folder = found.parent.relative_to(root).as_posix()
            for line in found.read_text(errors="replace").splitlines():
                lines.append(_anchor(line, "" if folder == "." else folder))
        self._spec = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, relative: str, *, is_dir: bool = False) -> bool:
        return self._spec.match_file(relative + "/" if is_dir else relative)


def _anchor(line: str, folder: str) -> str:
    """Rewrite a pattern from `folder/.sourceignore` so that it applies below that folder."""
    stripped = line.strip()
    if not folder or not stripped or stripped.startswith("#"):
        return stripped
    negate = stripped.startswith("!")
    body = stripped[1:] if negate else stripped
    # A pattern with a slash (other than a trailing one) is relative to its file's folder;
    # one without matches at any depth below it.
    rewritten = f"{folder}/{body.lstrip('/')}" if "/" in body.rstrip("/") else f"{folder}/**/{body}"
    return ("!" if negate else "") + rewritten
