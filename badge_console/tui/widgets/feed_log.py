"""AwardLog: the Live feed's rows, newest first, drawn line by line from a bounded deque.

Not a DataTable on purpose: DataTable.remove_row rebuilds its index (about 4 ms a row at
1,000 rows) and refilling 1,000 rows costs ~75 ms, so trimming a full table ten times a
second under a flood would eat the UI thread. Here adding a batch is O(batch), dropping
the oldest is free (deque maxlen), and only the visible lines are ever rendered.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, tzinfo
from typing import Iterable, Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...core.feed import Award

COLUMNS = (("time", 8), ("id", 7), ("user", 7), ("badge", 22), ("table", 20), ("op", 9))
# grants and revocations are marked in the op column, each in a colour of its own
EVENT_MARK = {"grant": ("+ granted", "bold green"), "revoke": ("− revoked", "bold red")}


def clock(awarded_at: str | None, tz: tzinfo | None = None) -> str:
    """HH:MM:SS in `tz` (None: local time); notifications and catch-ups may carry
    different session time zones, so the instant is converted, not sliced."""
    if not awarded_at:
        return "--:--:--"
    try:
        return datetime.fromisoformat(awarded_at).astimezone(tz).strftime("%H:%M:%S")
    except ValueError:
        return awarded_at[11:19] or "--:--:--"


def header_line() -> Text:
    text = Text(style="bold")
    for name, width in COLUMNS:
        text.append(name.ljust(width + 1) if name != "id" else name.rjust(width) + " ")
    return text


def award_line(award: Award, tz: tzinfo | None = None) -> Text:
    def cell(value: object, width: int) -> str:
        value = "" if value is None else str(value)
        return (value if len(value) <= width else value[:width - 1] + "…").ljust(width) + " "

    text = Text(no_wrap=True)
    text.append(cell(clock(award.at or award.awarded_at, tz), 8), style="dim")
    text.append(f"#{award.id}".rjust(7) + " ", style="dim")
    text.append(cell(award.user_id, 7), style="bold")
    text.append(cell(award.name or award.code, 22), style="yellow")
    table = award.table or "-"
    text.append(cell(table.removeprefix("public."), 20))
    if award.event in EVENT_MARK:
        mark, style = EVENT_MARK[award.event]
        text.append(cell(mark, 9), style=style)
    elif award.op:
        text.append(cell(award.op.lower(), 9), style="cyan")
    else:  # read from the award table after a reconnect, not notified
        text.append(cell("catch-up", 9), style="magenta")
    return text


class AwardLog(ScrollView, can_focus=True):
    """At most `capacity` awards, newest on top; scrolled away from the top, the view
    stays on the rows being read while new ones arrive above."""

    DEFAULT_CSS = """
    AwardLog { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    def __init__(self, capacity: int, **kwargs):
        super().__init__(**kwargs)
        self.rows: deque[Award] = deque(maxlen=capacity)
        self.tz: tzinfo | None = None  # None: local time; tests fix it
        self.empty_text = "Waiting for awards…"  # the view says why no row shows

    @property
    def capacity(self) -> int:
        return self.rows.maxlen or 0

    def add(self, awards: Sequence[Award]) -> None:
        """Awards oldest first, as they arrived."""
        if not awards:
            return
        self.rows.extendleft(awards[-self.capacity:])
        self._resized()
        if self.scroll_y > 0:  # the reader scrolled down: keep their rows in place
            self.scroll_to(y=self.scroll_y + min(len(awards), self.capacity), animate=False,
                           immediate=True)
        self.refresh()

    def replace(self, awards_newest_first: Iterable[Award]) -> None:
        self.rows.clear()
        self.rows.extend(awards_newest_first)
        self._resized()
        self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def clear_rows(self) -> None:
        self.replace(())

    def _resized(self) -> None:
        self.virtual_size = Size(sum(w + 1 for _, w in COLUMNS), len(self.rows))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        base = self.rich_style
        if index >= len(self.rows):
            if not self.rows and y == 0:
                text = Text(self.empty_text, style="dim italic")
                return Strip(text.render(self.app.console), text.cell_len).crop_extend(
                    0, width, base)
            return Strip.blank(width, base)
        text = award_line(self.rows[index], self.tz)
        if index % 2 and self.app.current_theme.panel:  # zebra stripes, as the other grids
            base = base + Style(bgcolor=self.app.current_theme.panel)
        segments = list(Segment.apply_style(text.render(self.app.console), style=base))
        return Strip(segments, text.cell_len).crop_extend(0, width, base)
