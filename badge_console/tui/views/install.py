"""Install view (placeholder until the install screen lands)."""

from ..widgets.planned import PlannedView


class InstallView(PlannedView):
    HEADING = "Install"
    PLANNED = ("The install plan per badge (create, replace, drop, unchanged), the exact "
               "SQL that will run, a confirmation, progress and the result; uninstall; "
               "and backfill with a preview of how many users would be awarded.")
    TODAY = "badge-console plan --sql, then badge-console install"
