"""Measurable parts of the house style (../shared/notes/lesson-style.md), read from a notebook.

Used by tests/test_lesson_style.py (source checks), tests/test_notebooks.py (checks
on the executed notebook) and scripts/lesson_stats.py (the word-count table in the
closing notes). Only what a program can check honestly lives here: word counts of
the prose a learner sees, where the blog posts are named, and whether a sentence
that announces an output is followed by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_CELL_WORDS = 250
DETAILS_RE = re.compile(r"<details\b.*?</details>", re.S | re.I)
POST_RE = re.compile(r"\bposts?\s*(?:00[0-3]|[0-3])\b", re.I)
APPENDIX_RE = re.compile(r"^#+\s.*appendix", re.I | re.M)
HTML_TAG_RE = re.compile(r"<[^>]+>")


def visible(markdown: str) -> str:
    """The prose a learner sees without unfolding anything: ``<details>`` blocks removed."""
    return DETAILS_RE.sub("", markdown)


def words(text: str) -> int:
    """Words of prose: HTML tags and LaTeX commands do not count as words."""
    text = HTML_TAG_RE.sub(" ", text)
    return len([w for w in text.split() if re.search(r"[A-Za-z0-9]", w)])


def announces_output(markdown: str) -> bool:
    """True when the visible prose ends with ':' (a sentence that announces what comes next)."""
    text = visible(markdown).rstrip()
    return text.endswith(":")


def _source(cell: Any) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def appendix_start(cells: list[Any]) -> int:
    """Index of the first markdown cell whose heading says 'Appendix' (len(cells) if none)."""
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and APPENDIX_RE.search(_source(cell)):
            return i
    return len(cells)


def has_output(cell: Any) -> bool:
    """An executed code cell that shows something (a stream, a figure, a table, a widget)."""
    return cell["cell_type"] == "code" and bool(cell.get("outputs"))


@dataclass
class Stats:
    visible_words: int
    words_before_first_output: int | None  # None: not executed, or nothing is shown
    long_cells: list[tuple[int, int]]  # (cell index, visible words) over MAX_CELL_WORDS
    post_mentions: list[int]  # cells naming a blog post outside <details> and outside the appendix
    announcements_without_output: list[int]  # markdown cells ending in ':' not followed by output


def lesson_stats(cells: list[Any], executed: bool) -> Stats:
    """Style numbers of one lesson; output checks only when ``executed``."""
    end = appendix_start(cells)
    total, before, seen_output = 0, None, False
    long_cells, posts, silent = [], [], []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            text = _source(cell)
            n = words(visible(text))
            if i < end:
                total += n
                if n > MAX_CELL_WORDS:
                    long_cells.append((i, n))
                if POST_RE.search(visible(text)):
                    posts.append(i)
            if executed and announces_output(text):
                nxt = cells[i + 1] if i + 1 < len(cells) else None
                if nxt is None or not has_output(nxt):
                    silent.append(i)
        elif executed and not seen_output and has_output(cell):
            seen_output, before = True, total
    return Stats(total, before, long_cells, posts, silent)
