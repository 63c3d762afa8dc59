"""Every repository path the code and docs name exists: no link to a moved or missing file.

The repository stands alone, so a document it names (``docs/reliability.md §4``, a Markdown
link, ``engine_svc/domain/ids.py`` in a doc) must be a file of this repository. The scan covers
the tracked text files (``git ls-files``: ``*.py``, ``*.md``, ``*.toml``, ``*.yaml``/``*.yml``,
``Makefile``, ``Dockerfile``; never ``gen/``) and checks three kinds of reference:

1. Markdown links ``[text](target)`` in ``*.md`` files, outside fenced code blocks: the target,
   without its ``#fragment``, must exist relative to the linking file. Links with a scheme
   (``https:``, ``mailto:``) and pure ``#anchors`` are not paths.
2. Any ``*.md`` name, anywhere: with a ``/`` it must exist relative to the repository root (or
   to the naming file); a bare name (``RESULTS.md``) must be the name of a tracked file.
3. Any path that starts with a top-level directory of the repository (``engine_svc/domain/``,
   ``meshkit/clock.py``, ``k8s/base/``): a file when it ends in an extension, else a directory.

What is not a reference: anything inside a URL (``https://...``); a path written as another
repository's, ``owner/repo: path`` (the house style for outside sources); a pattern or a
placeholder (containing ``*``, ``{``, ``<``, ``$``, ``...`` or ``…``). These rules hold in code
blocks too: an example that names a repository path names a real one.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
SCANNED_SUFFIXES = (".py", ".md", ".toml", ".yaml", ".yml")
SCANNED_NAMES = ("Makefile", "Dockerfile")
EXCLUDED_PREFIXES = ("gen/", ".venv/")
PLACEHOLDER_MARKS = ("*", "{", "}", "<", ">", "$", "...", "…", "%", "\\")

URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
EXTERNAL = re.compile(r"\b[\w.-]+/[\w.-]+:[ ]?[\w./-]+")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MD_NAME = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-][\w.-]*\.md)(?![\w-])")
PATH_TOKEN = re.compile(r"(?<![\w./-])((?:[\w.-]+/)+[\w.-]*)")
FENCE = re.compile(r"^\s*(```|~~~)")
FILE_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")


@dataclass(frozen=True)
class Reference:
    """A reference that does not resolve: where it is written and what it names."""

    source: str
    line: int
    target: str
    why: str

    def __str__(self) -> str:
        """Render as ``file:line: target (why)``."""
        return f"{self.source}:{self.line}: {self.target} ({self.why})"


@dataclass(frozen=True)
class Tree:
    """The repository's tracked files and directories, as POSIX paths relative to the root."""

    files: frozenset[str]
    directories: frozenset[str]
    top_level: frozenset[str]
    basenames: frozenset[str]

    @classmethod
    def of(cls, files: set[str]) -> Tree:
        """Build the tree from a set of tracked file paths."""
        directories = {str(parent) for f in files for parent in PurePosixPath(f).parents}
        directories.discard(".")
        top = {f.split("/", 1)[0] for f in files if "/" in f}
        return cls(
            files=frozenset(files),
            directories=frozenset(directories),
            top_level=frozenset(top),
            basenames=frozenset(PurePosixPath(f).name for f in files),
        )

    def exists(self, path: str) -> bool:
        """Tell whether ``path`` (relative, normalised) is a tracked file or directory."""
        path = path.rstrip("/")
        return path in self.files or path in self.directories


def _tracked_files() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return {f for f in out.split("\0") if f and (ROOT / f).exists()}


def _scanned(path: str) -> bool:
    if path.startswith(EXCLUDED_PREFIXES):
        return False
    name = PurePosixPath(path).name
    return name.endswith(SCANNED_SUFFIXES) or name in SCANNED_NAMES


def _normalise(path: str) -> str | None:
    """Resolve ``.`` and ``..`` segments; None when the path climbs out of the repository."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _is_placeholder(token: str) -> bool:
    return any(mark in token for mark in PLACEHOLDER_MARKS)


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group(0))


def _resolves(tree: Tree, source: str, target: str) -> bool:
    """Tell whether ``target`` names a tracked path, from the root or from the naming file."""
    base = str(PurePosixPath(source).parent)
    candidates = [target, f"{base}/{target}" if base != "." else target]
    for candidate in candidates:
        normal = _normalise(candidate)
        if normal and tree.exists(normal):
            return True
    return False


def check_text(source: str, text: str, tree: Tree) -> list[Reference]:
    """Return every reference in ``text`` (the content of ``source``) that does not resolve.

    Parameters
    ----------
    source
        The file's path relative to the repository root (relative links resolve from it).
    text
        The file's content.
    tree
        The repository's tracked paths.
    """
    broken: list[Reference] = []
    is_markdown = source.endswith(".md")
    in_fence = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if is_markdown and FENCE.match(raw):
            in_fence = not in_fence
            continue
        line = URL.sub(_blank, raw)
        if is_markdown and not in_fence:
            for match in MARKDOWN_LINK.finditer(raw):
                target = match.group(1).split("#", 1)[0]
                if not target or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                    continue
                normal = _normalise(f"{PurePosixPath(source).parent}/{target}")
                if normal is None or not tree.exists(normal):
                    broken.append(Reference(source, number, target, "link target missing"))
            line = MARKDOWN_LINK.sub(_blank, line)
        line = EXTERNAL.sub(_blank, line)
        seen: set[str] = set()
        for match in MD_NAME.finditer(line):
            name = match.group(1)
            seen.add(name)
            if _is_placeholder(name):
                continue
            if "/" in name:
                if not _resolves(tree, source, name):
                    broken.append(Reference(source, number, name, "no such document"))
            elif name not in tree.basenames:
                broken.append(Reference(source, number, name, "no tracked file of that name"))
        for match in PATH_TOKEN.finditer(line):
            token = match.group(1).rstrip(".,;:")
            first = token.split("/", 1)[0]
            if first not in tree.top_level or token in seen or _is_placeholder(token):
                continue
            end = match.end(1)
            if end < len(line) and line[end] in "*{<$…":
                continue
            last = token.rstrip("/").rsplit("/", 1)[-1]
            if not token.endswith("/") and not FILE_EXTENSION.search(last):
                # A bare ``pkg/name`` (no extension, no trailing slash) may be a module path,
                # a URL route or a Kubernetes name: only check it when it exists as neither.
                continue
            if not _resolves(tree, source, token):
                broken.append(Reference(source, number, token, "no such path"))
    return broken


def broken_references(tree: Tree | None = None) -> list[Reference]:
    """Scan every tracked text file of the repository and return the unresolved references."""
    files = _tracked_files()
    tree = tree or Tree.of(files)
    broken: list[Reference] = []
    for path in sorted(files):
        if _scanned(path):
            text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
            broken.extend(check_text(path, text, tree))
    return broken


def test_every_named_repository_path_exists() -> None:
    """No tracked file names a document or path the repository does not hold."""
    broken = broken_references()
    assert not broken, "references to paths not in the repository:\n" + "\n".join(
        str(b) for b in broken
    )


# The synthetic texts below spell missing paths in pieces, so that this file passes its own scan.
_MD = "." + "md"
_MISSING_DOC = "docs/no-such-doc" + _MD
_MISSING_MODULE = "engine_svc/" + "gone_module.py"
_MISSING_PACKAGE = "engine_svc/" + "copy/"
_OLD_DESIGN = "DESIGN" + _MD
_NOTES = "docs/notes" + _MD


def _synthetic_tree() -> Tree:
    return Tree.of(
        {
            "README" + _MD,
            "docs/design" + _MD,
            "docs/reliability" + _MD,
            "engine_svc/domain/ids.py",
            "meshkit/clock.py",
        }
    )


def test_checker_reports_a_missing_document_a_dead_link_and_a_stale_module_path() -> None:
    """The guard is real: each kind of broken reference in a synthetic text is reported."""
    text = "\n".join(
        [
            f"See {_MISSING_DOC} §2 and [the design](design{_MD}).",
            f"[gone](./missing{_MD}#part) and the old {_OLD_DESIGN} beside it.",
            f"The copier lives in `{_MISSING_MODULE}`, the ids in engine_svc/domain/ids.py.",
            f"Whole packages: engine_svc/domain/ and {_MISSING_PACKAGE}.",
        ]
    )
    broken = check_text(_NOTES, text, _synthetic_tree())
    found = {(b.line, b.target) for b in broken}
    assert found == {
        (1, _MISSING_DOC),
        (2, "./missing" + _MD),
        (2, _OLD_DESIGN),
        (3, _MISSING_MODULE),
        (4, _MISSING_PACKAGE),
    }


def test_checker_accepts_urls_other_repositories_placeholders_and_good_links() -> None:
    """URLs, ``owner/repo: path`` sources, patterns and resolving links are not reported."""
    text = "\n".join(
        [
            f"Spec: https://github.com/binance/binance-spot-api-docs/blob/master/errors{_MD}",
            f"Nautilus `nautechsystems/nautilus_trader: docs/concepts/live{_MD}` says so.",
            f"Each `<svc>/access.py`, `docs/*{_MD}`, and engine_svc/{{copy,domain}}/ are patterns.",
            f"[design](design{_MD}#4-public-contract), [root](../README{_MD}), [web](https://x.org)",
            "```",
            "meshkit/clock.py   the one SystemClock",
            "```",
            "A module path engine_svc/domain is not checked without an extension.",
        ]
    )
    assert check_text(_NOTES, text, _synthetic_tree()) == []


def test_checker_reports_missing_paths_in_python_comments() -> None:
    """A stale document name in a docstring or comment of code is reported too."""
    text = f'"""Names ({_OLD_DESIGN} §4.5)."""\n# see {_MISSING_DOC}\n'
    broken = check_text("recon_svc/metrics.py", text, _synthetic_tree())
    assert [(b.line, b.target) for b in broken] == [(1, _OLD_DESIGN), (2, _MISSING_DOC)]
