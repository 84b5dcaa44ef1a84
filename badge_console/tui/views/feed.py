"""Live feed view (placeholder until the LISTEN/NOTIFY listener lands)."""

from ..widgets.planned import PlannedView


class FeedView(PlannedView):
    HEADING = "Live feed"
    PLANNED = ("Awards as they arrive through LISTEN/NOTIFY (time, user, badge, table, "
               "operation), counts per badge and the award rate; pause, filter and clear. "
               "After a lost connection it reconnects by itself and catches up from the "
               "award table, so no award is missing.")
