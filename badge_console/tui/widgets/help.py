"""The help screen (`?` or F1): the keys of the view in front, then the keys that work
everywhere. Built from the bindings themselves, so it cannot drift from what the keys do;
Esc, `?` or F1 close it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def key_rows(app, bindings) -> list[tuple[str, str]]:
    """(key as shown, what it does) for each binding that has a description."""
    rows = []
    for binding in bindings:
        binding = binding if isinstance(binding, Binding) else Binding(*binding)
        if binding.description:
            rows.append((app.get_key_display(binding), binding.description))
    return rows


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 96%; height: auto; max-height: 90%;
                                  padding: 0 1; border: thick $primary; background: $surface; }
    """
    BINDINGS = [Binding("escape,question_mark,f1", "dismiss", "Close help")]

    def __init__(self, title: str, sections: list[tuple[str, list[tuple[str, str]]]]):
        """sections: (heading, [(key, description), ...]) in display order."""
        super().__init__()
        self.title_text = title
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        table.add_row(Text(self.title_text, style="bold"), "")
        for heading, rows in self.sections:
            table.add_row("", "")
            table.add_row(Text(heading, style="bold underline"), "")
            for key, description in rows:
                table.add_row(key, description)
        table.add_row("", "")
        table.add_row("", Text("Esc, ? or F1 close this help.", style="dim"))
        with VerticalScroll():
            yield Static(table, id="help-text")
