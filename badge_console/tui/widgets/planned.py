"""A view that is not built yet says honestly what it will hold."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class PlannedView(VerticalScroll):
    """Subclasses set HEADING and PLANNED; the CLI command that works today is named."""

    HEADING = ""
    PLANNED = ""
    TODAY = ""

    def compose(self) -> ComposeResult:
        yield Static(self.HEADING, classes="planned-heading")
        yield Static("Not built yet in this version. This view will hold:", classes="planned-note")
        yield Static(self.PLANNED, classes="planned-text")
        if self.TODAY:
            yield Static(f"Today, from a shell: {self.TODAY}", classes="planned-today")
