"""How much one transaction of a long engine task handles: few enough rows that each commit
holds its locks briefly, enough that the task is not all round trips. No psycopg here, so
the CLI shows these as its options' defaults without loading the driver (`--help` stays fast).
"""

BACKFILL_ROWS = 1000  # trigger-table rows judged per backfill transaction
# users judged per backfill transaction when a condition is judged per user (each user
# is one query on their rows, so a transaction takes more of them than rows)
BACKFILL_USERS = 10000
RECONCILE_ROWS = 1000  # queued rows, or re-checked table rows, per reconcile call
REVOKE_HOLDERS = 500  # holders re-checked per revoke-unqualified transaction
