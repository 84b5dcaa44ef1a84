"""Loading badge.json for the console: the file, a new empty one, or why it is unusable.

One place words a load failure, so the header banner, the Badges view and the actions
that cannot work without the file all say the same thing (file, line, column, what to do).
"""

from __future__ import annotations

from pathlib import Path

from ..core.definitions import BadgeFile, load_badge_file
from ..core.errors import DefinitionError

RELOAD_HINT = "fix it, then ^p → Reload badges file"


def load(path: Path) -> tuple[BadgeFile | None, str]:
    """(the file or None, "" or one sentence saying why it is not loaded)."""
    try:
        return load_badge_file(path), ""
    except DefinitionError as exc:
        if exc.problems and exc.problems[0].kind == "missing-file":
            return BadgeFile(badges=[], path=path), ""
        first = exc.problems[0].message if exc.problems else str(exc)
        first = first.removesuffix("; fix the file and load it again").rstrip(".")
        more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        return None, f"{Path(path).name} not loaded: {first}{more}; {RELOAD_HINT}."


def refused(what: str, error: str) -> str:
    """Why an action that needs the loaded file does nothing."""
    return f"Cannot {what}: {error}"
