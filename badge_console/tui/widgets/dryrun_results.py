"""What a dry run found: the grid of sample rows, the summary, notes and the EXPLAIN.

A display widget only: `show(result)` fills it from a core `DryRunResult`; it never
talks to the database. The EXPLAIN (fetched with every run) stays hidden until
`toggle_explain()`. Failed statements are worded by `failure_words`, the Dry run view's
words for them (the view's error line uses it too). Styles: the Dry run section of
app.tcss.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from ...core.dryrun import DryRunResult, RowResult
from ...core.errors import StatementFailure

ROW_WIDTH = 60  # characters of the sample row shown in the grid
WINNERS_SHOWN = 25  # users named in the summary line; the grid has every row
COLUMNS = (("#", "index"), ("user", "user"), ("holds already", "holds"),
           ("value / error", "value"), ("would award", "award"), ("sample row", "row"))


def failure_words(failure: StatementFailure) -> str:
    """A failed statement as this view says it: a busy table is retried when it is quieter
    (the console has no lock-timeout option)."""
    return f"{failure}; retry when it is quieter" if failure.kind == "lock" else str(failure)


def _holds(holds: bool | None) -> Text:
    if holds is None:
        return Text("?", style="dim")
    return Text("yes", style="yellow") if holds else Text("no", style="dim")


def _value(row: RowResult) -> Text:
    if row.error:
        return Text(f"✗ {failure_words(row.error)}", style="red")
    if row.levels:  # a series: its value and each level reached or not
        return Text(row.reached(), style="green" if row.would_award else "")
    if row.value is None:
        return Text("NULL", style="dim")
    return Text("true", style="green") if row.value else Text("false")


def _row_text(row: dict, first: tuple[str, ...] = ()) -> str:
    """The sample row as key=value, the columns the condition reads first (so the cut
    at ROW_WIDTH never hides them)."""
    keys = [k for k in first if k in row] + [k for k in row if k not in first]
    text = "  ".join(f"{key}={row[key]}" for key in keys)
    return text if len(text) <= ROW_WIDTH else text[:ROW_WIDTH - 1] + "…"


def grid_cells(row: RowResult, first: tuple[str, ...] = ()) -> tuple:
    """The cells of one grid line (also what tests read back)."""
    award = Text("✓ award", style="bold green") if row.would_award else Text("—", style="dim")
    return (str(row.index), Text(row.user if row.user is not None else "NULL"),
            _holds(row.holds), _value(row), award, _row_text(row.row, first))


class DryRunResults(Vertical):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.result: DryRunResult | None = None

    def compose(self) -> ComposeResult:
        yield DataTable(id="dr-grid", zebra_stripes=True, cursor_type="row")
        yield Static("", id="dr-summary")
        with VerticalScroll(id="dr-notes"):
            yield Static("", id="dr-notes-text")
        with VerticalScroll(id="dr-explain"):
            yield Static("", id="dr-explain-text")

    def on_mount(self) -> None:
        self._reset_grid()
        self.query_one("#dr-summary", Static).display = False

    def _reset_grid(self) -> None:
        """Rows and columns anew: a column keeps no width from an earlier, longer run."""
        grid = self.query_one("#dr-grid", DataTable)
        grid.clear(columns=True)
        for label, key in COLUMNS:
            grid.add_column(label, key=key)

    def clear(self) -> None:
        self.result = None
        self._reset_grid()
        self.query_one("#dr-summary", Static).display = False
        self.query_one("#dr-notes-text", Static).update("")
        self.query_one("#dr-explain-text", Static).update("")

    def show(self, result: DryRunResult, badge_label: str,
             first_columns: list[str] | tuple[str, ...] = ()) -> None:
        self.result = result
        self._reset_grid()
        grid = self.query_one("#dr-grid", DataTable)
        for row in result.rows:
            grid.add_row(*grid_cells(row, tuple(first_columns)), key=str(row.index))
        summary = Text(f"{badge_label} on {result.table} ({result.op}, "
                       f"{'fire' if result.mode == 'fire' else 'evaluate'}): ", style="bold")
        summary.append(result.summary(failure_words))
        if result.winners:
            summary.append("\nWould award: ", style="dim")
            shown = result.winners[:WINNERS_SHOWN]
            summary.append(", ".join(shown), style="green")
            if len(result.winners) > len(shown):
                summary.append(f" … and {len(result.winners) - len(shown)} more "
                               "(the grid has them all)", style="dim")
        fired = result.fire
        if fired is not None:
            users = ", ".join(a["user_id"] for a in fired.awarded) or "nobody"
            summary.append("\nThe real trigger awarded: ", style="dim")
            summary.append(users, style="green" if fired.awarded else "")
            if fired.error:
                summary.append(f"\nWrite failed: {failure_words(fired.error)}", style="red")
            for error in fired.trigger_errors:
                summary.append(f"\nTrigger error (on_error skip): {error}", style="red")
        box = self.query_one("#dr-summary", Static)
        box.update(summary)
        box.display = True
        notes = Text()
        for i, note in enumerate(result.notes):
            notes.append(("\n" if i else "") + f"• {note}", style="dim")
        self.query_one("#dr-notes-text", Static).update(notes)
        explain = Text("EXPLAIN of the trigger's query for the first sample row\n",
                       style="bold") if result.explain else Text()
        explain.append(result.explain or "No EXPLAIN: the sample had no rows.")
        self.query_one("#dr-explain-text", Static).update(explain)

    def toggle_explain(self) -> bool:
        """Show or hide the EXPLAIN; returns whether it is shown now."""
        self.toggle_class("-explain")
        return self.has_class("-explain")
