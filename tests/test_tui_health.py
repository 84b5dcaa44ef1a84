"""The console shows what migrations broke: Badges list, Install plan and Tables tree."""

from __future__ import annotations

from textual.widgets import DataTable, Static, Tree

from helpers import run
from test_tui_support import SIZE, badges_copy, console_db, make_app, settle, sync  # noqa: F401


@sync
async def test_tables_badges_and_install_views_show_broken(make_app, console_db):
    run(console_db, "ALTER TABLE dummy_sketch DROP COLUMN hit_views")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        public = app.query_one("#table-tree", Tree).root.children[0]
        sketch = next(n for n in public.children if str(n.label).startswith("dummy_sketch"))
        assert [str(c.label) for c in sketch.children] == [
            "⚡ bc__del broken", "⚡ bc__ins", "⚡ bc__upd broken"]
        await pilot.press("2")
        await settle(pilot, app)
        table = app.query_one("#badge-list", DataTable)
        statuses = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
                    for i in range(table.row_count)}
        assert statuses["star"] == "broken" and statuses["collector"] == "installed"
        await pilot.press("4")
        await settle(pilot, app)
        plan = app.query_one("#plan-table", DataTable)
        rows = {str(r[0]): str(r[1]) for r in (plan.get_row_at(i) for i in range(plan.row_count))}
        assert rows["star"] == "broken" and rows["spring_cleaning"] == "broken"
        plan.move_cursor(row=list(rows).index("star"))
        await pilot.pause()
        assert "hit_views" in str(app.query_one("#plan-detail", Static).render())
