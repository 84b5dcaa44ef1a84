"""Dry run view (placeholder until the dry-run engine lands)."""

from ..widgets.planned import PlannedView


class DryRunView(PlannedView):
    HEADING = "Dry run"
    PLANNED = ("Pick a badge (saved, or the unsaved draft from the Badges view) and sample "
               "rows: a filter, a limit, or rows typed by hand. For each row: the user, "
               "whether they already hold the badge, the condition's value or error, and "
               "whether it would award. A second mode fires the real generated trigger "
               "inside a transaction that is always rolled back, with statement and lock "
               "timeouts, so a test never writes anything.")
