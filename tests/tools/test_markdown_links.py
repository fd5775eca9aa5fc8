"""Every relative link in the repository's Markdown leads somewhere.

Each Markdown file git knows of (tracked, or new and not ignored) is read; every inline link,
image and reference definition that is not a URL must name a file or folder that exists, and a
``#fragment`` into a Markdown file must name one of its headings, slugged as GitHub slugs them
(``## How it keeps data safe`` is ``#how-it-keeps-data-safe``). Links inside code (fenced
blocks and inline code spans) are text, not links, and are left alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Folders that hold other projects' Markdown (installed packages, caches), never ours.
SKIPPED_DIRS = frozenset(
    {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".local"}
)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
# [text](destination "title"), and ![alt](destination): the destination is group 1 or 2.
INLINE_LINK = re.compile(
    r"\[[^\]\n]*\]\(\s*(?:<([^>\n]*)>|([^\s)]*))(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*(?:<([^>\n]*)>|(\S+))")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# What GitHub's rendering leaves of inline markup in a heading's text.
MARKDOWN_LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
EMPHASIS = re.compile(r"(\*{1,3}|_{1,3})(\S(?:.*?\S)?)\1")
HTML_TAG = re.compile(r"<[^>\n]+>")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}: ({self.target})"


def markdown_files() -> list[Path]:
    """The Markdown files git tracks, and new ones it does not ignore."""
    git = shutil.which("git")
    if git is not None and (ROOT / ".git").exists():
        listed = subprocess.run(
            [git, "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode("utf-8")
        names = sorted({name for name in listed.split("\0") if name})
        files = [ROOT / name for name in names]
    else:
        files = sorted(ROOT.rglob("*.md"))
    return [
        path
        for path in files
        if path.is_file() and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
    ]


def outside_code_blocks(text: str) -> Iterator[tuple[int, str]]:
    """The numbered lines of ``text`` that are not inside a fenced code block."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        marker = FENCE.match(line)
        if fence is None:
            if marker:
                fence = marker.group(1)
            else:
                yield number, line
        elif marker and marker.group(1).startswith(fence) and not line.strip().strip(fence[0]):
            fence = None


def links_in(path: Path) -> Iterator[Link]:
    for number, raw in outside_code_blocks(path.read_text(encoding="utf-8")):
        line = CODE_SPAN.sub(lambda span: " " * len(span.group(0)), raw)
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            yield Link(path, number, definition.group(1) or definition.group(2))
            continue
        for match in INLINE_LINK.finditer(line):
            target = match.group(1) if match.group(1) is not None else match.group(2)
            yield Link(path, number, target)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lowercased, punctuation dropped."""
    text = MARKDOWN_LINK_TEXT.sub(r"\1", heading)
    text = text.replace("`", "")
    text = EMPHASIS.sub(r"\2", text)
    text = HTML_TAG.sub("", text)
    kept = []
    for char in text.strip().lower():
        category = unicodedata.category(char)
        if char in " -_" or category[0] in "LNM" or category == "Pc":
            kept.append("-" if char == " " else char)
    return "".join(kept)


def heading_texts(text: str) -> Iterator[str]:
    previous: str | None = None
    for _, line in outside_code_blocks(text):
        atx = ATX_HEADING.match(line)
        if atx:
            yield atx.group(2) or ""
            previous = None
            continue
        underline = SETEXT_UNDERLINE.match(line)
        if underline and previous is not None and previous.strip():
            yield previous.strip()
            previous = None
            continue
        previous = line if not line.startswith((" " * 4, "\t")) else None


def anchors(path: Path) -> frozenset[str]:
    """Every fragment a link may name in ``path``: heading slugs (numbered as GitHub numbers
    repeats: ``-1``, ``-2``) and explicit HTML anchors."""
    text = path.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in heading_texts(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR.findall(text))
    return frozenset(found)


def problem(link: Link) -> str | None:
    """Why ``link`` leads nowhere, or None when it resolves (or is not a relative link)."""
    if not link.target or SCHEME.match(link.target) or link.target.startswith("//"):
        return None
    location, _, fragment = link.target.partition("#")
    location = unquote(location.partition("?")[0])
    if not location:
        target = link.source
    elif location.startswith("/"):
        target = ROOT / location.lstrip("/")
    else:
        target = link.source.parent / location
    target = target.resolve()
    if not target.is_relative_to(ROOT):
        return "leads outside the repository"
    if not target.exists():
        return f"no such file: {target.relative_to(ROOT)}"
    is_markdown = target.is_file() and target.suffix.lower() == ".md"
    if fragment and is_markdown and unquote(fragment).lower() not in anchors(target):
        return f"no heading #{fragment} in {target.relative_to(ROOT)}"
    return None


def test_the_slugs_are_githubs() -> None:
    assert slug("How it keeps data safe") == "how-it-keeps-data-safe"
    assert (
        slug("Docker where there is none: `ecom-docker`")
        == "docker-where-there-is-none-ecom-docker"
    )
    assert slug("Verifier at 1M orders") == "verifier-at-1m-orders"
    assert slug("The DLQ after 1,000,000 deletes (an optional run)") == (
        "the-dlq-after-1000000-deletes-an-optional-run"
    )
    assert slug("Verifying the nodes: `SSL_VERIFY`") == "verifying-the-nodes-ssl_verify"
    assert slug("**Bold** and [a link](x.md) — dash") == "bold-and-a-link--dash"


def test_repeated_headings_are_numbered(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A\n\n## Usage\n\n```\n# not a heading\n```\n\n## Usage\n\nB\n-\n")
    assert anchors(page) == {"a", "usage", "usage-1", "b"}


def test_code_is_not_searched_for_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[x](a.md) `[y](b.md)`\n\n```md\n[z](c.md)\n```\n[w]: <d e.md>\n")
    assert [link.target for link in links_in(page)] == ["a.md", "d e.md"]


@pytest.fixture(scope="module")
def every_link() -> list[Link]:
    return [link for path in markdown_files() for link in links_in(path)]


def test_the_repository_has_markdown_with_links(every_link: list[Link]) -> None:
    sources = {link.source.relative_to(ROOT).as_posix() for link in every_link}
    assert {"README.md", "CHANGELOG.md"} <= sources


def test_every_relative_link_resolves(every_link: list[Link]) -> None:
    broken = [f"{link}: {reason}" for link in every_link if (reason := problem(link)) is not None]
    assert not broken, "broken links:\n" + "\n".join(broken)
