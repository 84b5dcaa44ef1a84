"""The Dry run form's parts that need no widget: its choices and hints, the Request a run
is prepared as, and the sentence the view shows when the engine refuses a run.

The engine's errors carry facts (which input, which row, what PostgreSQL said); this
view words them in its own terms: the SET field, typed rows, the WHERE filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...core.definitions import Badge, BadgeFile
from ...core.errors import in_words
from ...core.sample_rows import Sample
from ..widgets.dryrun_results import failure_words

DRAFT = "__draft__"
DRAFT_LABEL = "✎ editor draft (unsaved)"
MODES = [("evaluate (read only)", "eval"), ("fire (rolled back)", "fire")]
OPS = [("as defined", "auto"), ("insert", "insert"), ("update", "update"),
       ("delete", "delete")]
SAMPLES = [("WHERE filter", "where"), ("rows typed by hand (JSON)", "rows")]
PLACEHOLDER = {"where": "a condition on the trigger table; empty: its first rows",
               "rows": '{"user_id": 3, "title": "new"} or a JSON list of such objects'}
# NEW.col / OLD.col (quoted or not) in a condition: the columns it reads, shown first
READS = re.compile(r'\b(?:new|old)\s*\.\s*(?:"([^"]+)"|(\w+))', re.IGNORECASE)
# The engine's error topics this view words its own way (core.errors.NEUTRAL has the rest)
WORDS = {
    "changes-json": "The SET changes are not valid JSON: {reason} at line {line}, "
                    "column {column}.",
    "changes-shape": "SET must be {shape}.",
    "changes-columns": "In SET, {columns} is not a column of {table}.",
    "changes-rejected": "PostgreSQL rejects the SET changes: {failure}.",
    "filter-rejected": "PostgreSQL rejects the WHERE filter: {failure}.",
    "changes-need-update": "SET changes apply to update badges only.",
}


def sentence(exc: BaseException) -> str:
    """One line for an error, in this view's words."""
    text = in_words(exc, WORDS, failure_words).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def columns_read(condition) -> list[str]:
    """The row columns a condition reads (NEW.x, OLD.x), in order, each once."""
    found = (quoted or plain.lower() for quoted, plain in READS.findall(str(condition or "")))
    return list(dict.fromkeys(found))


def rows_placeholder(badge: Badge | None, columns: list[tuple[str, str]]) -> str:
    """The hand-typed rows hint, in the picked badge's own columns."""
    if badge is None or not columns:
        return PLACEHOLDER["rows"]
    names = [name for name, _ in columns]
    first = [c for c in [badge.user_field, *columns_read(badge.condition)] if c in names]
    shown = list(dict.fromkeys(first + names))[:3]
    example = ", ".join(f'"{name}": …' for name in shown)
    return f"{{{example}}} or a JSON list of such objects (columns of {badge.trigger_table})"


@dataclass
class Request:
    """One run, prepared on the UI thread: the worker reads nothing from widgets."""

    label: str  # "collector (saved)" or "collector (draft)"
    code: str | None  # a saved badge, read from the file on disk by the worker
    draft: Badge | None  # or the editor's draft, with the working copy's settings
    bf: BadgeFile | None
    path: object
    sample: Sample
    mode: str
    op: str | None
