"""Backfill panel: per badge how many users would be / were awarded, a progress bar
and one status line. Pure presentation of core `Backfill` and `BackfillProgress`."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, ProgressBar, Static

from ...core.backfill import Backfill, BackfillItem, BackfillProgress

SCALE = 1000  # progress bar steps per badge
WHO_WIDTH = 52  # the last column; at 120 columns the table then fits without scrolling


def _who(item: BackfillItem) -> Text:
    if not item.applicable:
        return Text(item.reason, style="dim")
    if not item.would_award:
        return Text("nobody qualifies now", style="dim")
    more = ", …" if item.would_award > len(item.sample) else ""
    return Text("users " + ", ".join(map(str, item.sample)) + more)


class BackfillPanel(Vertical):
    """Title, table (badge, table, would award, awarded, who), progress, status."""

    def compose(self) -> ComposeResult:
        yield Static("", id="backfill-title")
        yield DataTable(id="backfill-table", cursor_type="none", zebra_stripes=True,
                        show_cursor=False)
        yield ProgressBar(id="install-progress", show_eta=False)
        yield Static("", id="install-status")

    def on_mount(self) -> None:
        table = self.query_one("#backfill-table", DataTable)
        for label in ("badge", "table", "would award", "awarded"):
            table.add_column(label, key=label)
        # fixed width so a long "why not" wraps onto a second line instead of scrolling
        table.add_column("who / why not", key="who", width=WHO_WIDTH)
        self.query_one(ProgressBar).display = False
        self.reset()

    def reset(self) -> None:
        """No preview or result on screen (at first, and once what it showed is gone)."""
        self.query_one("#backfill-table", DataTable).clear()
        self.query_one("#backfill-table").display = False
        self.query_one("#backfill-title", Static).update(Text.assemble(
            ("Backfill ", "bold"),
            ("awards users who already qualify over today's rows; v previews (writes "
             "nothing), b runs it after a fresh preview.", "dim")))

    def show(self, backfill: Backfill, preview: Backfill | None = None) -> None:
        """A preview, or a run's result (with the preview's counts beside it)."""
        table = self.query_one("#backfill-table", DataTable)
        table.clear()
        seen = {i.code: i for i in (preview.items if preview else backfill.items)}
        done = not backfill.dry_run
        for item in backfill.items:
            before = seen.get(item.code, item)
            would = Text(str(before.would_award) if item.applicable else "-",
                         style="bold" if before.would_award else "dim")
            awarded = Text(str(item.awarded), style="green" if item.awarded else "") \
                if done and item.applicable else Text("-", style="dim")
            table.add_row(item.code, item.table, would, awarded, _who(before), key=item.code,
                          height=None)
        table.display = True
        title = Text("Backfill ", style="bold")
        if done:
            state = "cancelled" if backfill.cancelled else "done"
            title.append(f"{state}: {backfill.awarded} award(s) into {backfill.award_table}"
                         + ("; b runs it again, nobody is awarded twice." if backfill.cancelled
                            else "."), style="yellow" if backfill.cancelled else "green")
        else:
            title.append(f"preview: {backfill.would_award} award(s) would go into "
                         f"{backfill.award_table}; nothing was written. b runs it.")
        self.query_one("#backfill-title", Static).update(title)

    def progress(self, p: BackfillProgress) -> None:
        bar = self.query_one(ProgressBar)
        bar.display = True
        share = p.rows_done / p.rows_total if p.rows_total else 1.0
        bar.update(total=max(p.badges, 1) * SCALE,
                   progress=int((p.badge_index + min(share, 1.0)) * SCALE))
        table = self.query_one("#backfill-table", DataTable)
        if p.code in table.rows:
            table.update_cell(p.code, "awarded", Text(str(p.awarded), style="green"))
        self.status(Text.assemble(
            (f"Backfilling {p.code} ", "bold"),
            (f"(badge {p.badge_index + 1} of {p.badges}): {p.rows_done:,} of ~"
             f"{p.rows_total:,} rows, {p.awarded} awarded.  Esc cancels after this batch.",
             "")))

    def busy(self, text: str) -> None:
        """An operation without measurable steps (install, uninstall, preview)."""
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(total=None)
        self.status(Text(text, style="italic"))

    def idle(self, text: Text | str = "") -> None:
        self.query_one(ProgressBar).display = False
        self.status(text)

    def status(self, text: Text | str) -> None:
        self.query_one("#install-status", Static).update(text)
