"""Typed errors the engine raises; front ends turn them into one sentence and an exit code.

Exit codes follow SPEC section 4: 1 invalid definitions or failed operation,
2 usage error, 3 database unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass


class BadgeConsoleError(Exception):
    """Base of every error a user can cause; `str()` is one sentence meant for them."""

    exit_code = 1


class UsageError(BadgeConsoleError):
    exit_code = 2


class DatabaseUnreachable(BadgeConsoleError):
    exit_code = 3


class OperationFailed(BadgeConsoleError):
    exit_code = 1


class ReadOnlyRefused(BadgeConsoleError):
    """An operation that would write was asked for under --read-only."""

    exit_code = 1


class LockTimeout(OperationFailed):
    """A lock wait gave up at lock_timeout; nothing was changed. `table` and `pid` name what
    held the lock when it could be found (None when it was released meanwhile)."""

    def __init__(self, table: str | None, pid: int | None, timeout: str):
        self.table, self.pid, self.timeout = table, pid, timeout
        held = f"table {table} is locked by another session" if table else \
            "a table is locked by another session"
        super().__init__(f"{held}{f' (pid {pid})' if pid else ''}; gave up waiting after "
                         f"{timeout}, nothing was changed.")


class StatementTimeout(OperationFailed):
    """A statement ran into statement_timeout and was cancelled; nothing was changed."""

    def __init__(self, timeout: str):
        self.timeout = timeout
        super().__init__(f"a statement ran longer than the statement timeout ({timeout}) and "
                         "was cancelled; nothing was changed.")
class StandbyRefused(BadgeConsoleError):
    """A write was asked of a hot standby (pg_is_in_recovery()): refused before trying."""

    exit_code = 1

    def __init__(self, operation: str, target: str):
        self.operation, self.target = operation, target
        super().__init__(f"{target} is a hot standby (read-only); run {operation} on the "
                         "primary.")


@dataclass(frozen=True)
class Problem:
    """One validation finding: which badge, which key, what is wrong and what to do."""

    index: int | None  # position in the badges list; None for file-level problems
    code: str | None  # the badge's code when it has a usable one
    key: str | None  # badge key (or file-level setting) concerned
    kind: str  # short machine-readable kind, e.g. "json", "missing-key", "parse"
    message: str

    def where(self) -> str:
        if self.index is None:
            if self.code is not None and self.key is None:
                return f"installed badge {self.code}"  # no longer in the file
            return "file" if self.key is None else f"setting '{self.key}'"
        badge = f"badge #{self.index}" + (f" ({self.code})" if self.code else "")
        return badge if self.key is None else f"{badge}, key '{self.key}'"

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def as_dict(self) -> dict:
        return {"index": self.index, "code": self.code, "key": self.key,
                "kind": self.kind, "message": self.message}


class DefinitionError(BadgeConsoleError):
    """badge.json is unusable; carries every problem found, not just the first."""

    def __init__(self, path: str, problems: list[Problem]):
        self.path = path
        self.problems = problems
        count = len(problems)
        first = problems[0] if problems else "no details"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"{path} is invalid: {first}{more}.")


class AwardTableMissing(OperationFailed):
    """The award table does not exist (nothing installed, nothing to list or revoke)."""

    def __init__(self, table: str):
        self.table = table
        super().__init__(f"The award table {table} does not exist yet.")


class UnknownBadge(OperationFailed):
    """No badge with this code in badge.json, in what is installed, or in the award table."""

    def __init__(self, code: str):
        self.code = code
        super().__init__(f"There is no badge with code {code}.")


class UnknownUser(OperationFailed):
    """The user id is not a value of the award table's user_id type, or has no row in the
    table the award table's foreign key points at (`table`)."""

    def __init__(self, user: str, table: str | None, type_name: str | None = None):
        self.user, self.table, self.type_name = user, table, type_name
        where = f"in {table}" if table else f"(not a valid {type_name})"
        super().__init__(f"There is no user {user} {where}.")


class AwardStateConflict(OperationFailed):
    """Grant of a badge the user holds (`held` True), or revoke of one they do not hold."""

    def __init__(self, code: str, user: str, held: bool):
        self.code, self.user, self.held = code, user, held
        state = "already holds" if held else "does not hold"
        super().__init__(f"User {user} {state} badge {code}.")
