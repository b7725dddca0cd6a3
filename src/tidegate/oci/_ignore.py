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

# What Flux's source-controller leaves out of stored artifacts when no custom rules exist
# (fluxcd/pkg sourceignore: VCS, extensions, CI configs, CLI configs).
VCS_IGNORE = DEFAULT_IGNORE[:4]
STORAGE_IGNORE = (
    *DEFAULT_IGNORE,
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
    "**/.goreleaser.yml",
    "**/.sops.yaml",
    "**/.flux.yaml",
)


class IgnoreRules:
    """Decides, for a path relative to the root, whether it is left out of the artifact.

    `patterns` replaces the defaults when given (as `--ignore-paths` does); `.sourceignore`
    files anywhere in the tree add patterns relative to their own folder. `extra` patterns
    (an OCIRepository's `spec.ignore`) come last, relative to the root, so they take precedence
    over `.sourceignore` files as in Flux.
    """

    def __init__(
        self, root: Path, patterns: Sequence[str] | None = None, *, extra: Sequence[str] = ()
    ) -> None:
        lines = [*(DEFAULT_IGNORE if patterns is None else patterns), *_sourceignore(root)]
        self._compile([*lines, *extra])

    @classmethod
    def for_storage(cls, root: Path, ignore: str | None) -> IgnoreRules:
        """The rules Flux's source-controller archives a fetched source with.

        `.sourceignore` files and the object's `spec.ignore` (which comes last, so it wins);
        only when neither holds a pattern do the full defaults apply — VCS files, binary
        extensions, CI and CLI configs. Custom rules keep only the VCS defaults, as in Flux.
        """
        custom = [*_sourceignore(root), *(ignore or "").splitlines()]
        effective = [line for line in custom if line.strip() and not line.strip().startswith("#")]
        rules = cls.__new__(cls)
        rules._compile([*VCS_IGNORE, *custom] if effective else list(STORAGE_IGNORE))
        return rules

    def _compile(self, lines: Sequence[str]) -> None:
        import pathspec  # only pushes need it: keep it off the pull path's start-up

        self._spec = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, relative: str, *, is_dir: bool = False) -> bool:
        return self._spec.match_file(relative + "/" if is_dir else relative)


def _sourceignore(root: Path) -> list[str]:
    """The patterns of every `.sourceignore` below `root`, made relative to the root."""
    lines: list[str] = []
    for found in sorted(root.rglob(SOURCEIGNORE)):
        if found.is_symlink() or not found.is_file():
            continue
        folder = found.parent.relative_to(root).as_posix()
        for line in found.read_text(errors="replace").splitlines():
            lines.append(_anchor(line, "" if folder == "." else folder))
    return lines


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
