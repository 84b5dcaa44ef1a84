"""Typed errors the engine raises; front ends turn them into one sentence and an exit code.

Errors carry facts (which input, table, pid, timeout, column); `str()` is a neutral
sentence that never names a command-line option: the CLI and each view word their own
from the fields. Exit codes follow SPEC section 4: 1 invalid definitions or failed
operation, 2 usage error, 3 database unreachable. No psycopg here (`--help` never loads
it): the engine modules that run statements classify psycopg's errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal


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


# The engine's words for what is wrong with one level of a series (levels.py), by kind;
# a front end gives its own templates to LevelProblem.worded (the Badges editor says
# which line of its Levels field). Facts: which ("level #1 (silver)"), level (0-based),
# line (1-based), at, previous, detail.
LEVEL_NEUTRAL = {
    "level-object": '{which}: must be an object {{"code", "name", "at"}}',
    "level-keys": "{which}: needs exactly the keys code, name and at{detail}",
    "level-code": "{which}: code must be lowercase letters, digits or '_', start "
                  "with a letter, at most 50 characters",
    "level-name": "{which}: name must be a non-empty string",
    "level-at": "{which}: at must be a number, not {at}",
    "level-order": "{which}: at {at} is not above the previous level's {previous}; "
                   "list levels by strictly ascending at",
}


@dataclass(frozen=True)
class LevelProblem(Problem):
    """A level of a series breaks a rule: which level, and the facts of the rule."""

    level: int = 0
    level_code: str | None = None  # the level's code when it is a valid one
    at: str = ""  # the level's at, as the file has it
    previous: str = ""  # the at it must be above (level-order)
    detail: str = ""  # level-keys: which keys are missing or unknown

    @classmethod
    def of(cls, index: int, code: str | None, kind: str, level: int,
           level_code: str | None, **facts: str) -> "LevelProblem":
        found = cls(index, code, "levels", kind, "", level, level_code, **facts)
        return replace(found, message=found.worded(LEVEL_NEUTRAL))

    def worded(self, words: dict[str, str]) -> str:
        return words.get(self.kind, LEVEL_NEUTRAL[self.kind]).format(
            which=f"level #{self.level}" + (f" ({self.level_code})" if self.level_code else ""),
            level=self.level, line=self.level + 1, at=self.at, previous=self.previous,
            detail=self.detail)

    def as_dict(self) -> dict:
        return super().as_dict() | {"level": self.level, "level_code": self.level_code}


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


def primary_message(exc) -> str:
    """PostgreSQL's primary message of a psycopg error, without its final full stop."""
    return (exc.diag.message_primary or str(exc).splitlines()[0]).rstrip(".")


FailureKind = Literal["lock", "timeout", "write", "skipped", "other"]


@dataclass(frozen=True)
class StatementFailure:
    """Why one statement of a dry run failed, as facts. kind: lock (lock_timeout),
    timeout (statement_timeout, `timeout`), write (a write in the READ ONLY evaluation),
    skipped (not run: an earlier row, `row`, hit the statement timeout), other."""

    kind: FailureKind
    message: str = ""  # PostgreSQL's primary message
    timeout: str = ""
    row: int | None = None

    def __str__(self) -> str:
        if self.kind == "timeout":
            return f"stopped at the statement timeout ({self.timeout}); the condition is too slow"
        if self.kind == "write":
            return (f"tried to write ({self.message}); a dry run's evaluation is read only and "
                    "a badge condition must not write")
        if self.kind == "lock":
            return "could not get a table lock in time (the table is busy)"
        if self.kind == "skipped":
            return f"not evaluated: row {self.row} hit the statement timeout"
        return self.message


Wording = Callable[[StatementFailure], str]  # how a front end words a StatementFailure

# The engine's own words for the errors below, by topic: neutral, no command-line option.
# A front end words them with `in_words`, giving its own template for any topic.
NEUTRAL = {
    "rows-json": "The typed rows are not valid JSON: {reason} at line {line}, column {column}.",
    "changes-json": "The changes are not valid JSON: {reason} at line {line}, column {column}.",
    "rows-shape": "The typed rows must be {shape}.",
    "changes-shape": "The changes must be {shape}.",
    "rows-columns": "In typed row {row}, {columns} is not a column of {table}.",
    "changes-columns": "In the changes, {columns} is not a column of {table}.",
    "rows-rejected": "PostgreSQL rejects typed row {row}: {failure}.",
    "changes-rejected": "PostgreSQL rejects the changes: {failure}.",
    "filter-rejected": "PostgreSQL rejects the filter: {failure}.",
    "changes-need-update": "Changes apply to update badges only.",
    "statement-refused": "{what}: {failure}.",
    "badge-file-missing": "{path} is invalid: file: file not found.",
}


def in_words(exc: BaseException, words: dict[str, str], failure: Wording = str) -> str:
    """`exc` as one sentence in a front end's words: its topic's template from `words`
    (else NEUTRAL) over its facts, the StatementFailure among them worded by `failure`.
    An error without a topic is its str()."""
    topic = getattr(exc, "topic", None)
    if topic is None:
        return str(exc)
    facts = exc.facts()  # type: ignore[attr-defined]
    if "failure" in facts:
        facts["failure"] = failure(facts["failure"])
    return words.get(topic, NEUTRAL[topic]).format(**facts)


class _Worded:
    """Mixin of the errors below: a `topic`, facts for its templates, the neutral str()."""

    topic: str

    def facts(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "topic"}

    def _say(self) -> None:
        Exception.__init__(self, in_words(self, NEUTRAL))  # type: ignore[misc]


class StatementRefused(_Worded, OperationFailed):
    """A step of a dry run failed on a statement; `what` says which step, neutrally."""

    topic = "statement-refused"

    def __init__(self, what: str, failure: StatementFailure):
        self.what, self.failure = what, failure
        self._say()


class FilterError(BadgeConsoleError):
    """The WHERE text is not one valid expression, or PostgreSQL rejected it."""


class FilterRejected(_Worded, FilterError):
    """PostgreSQL refused a dry run's WHERE filter."""

    topic = "filter-rejected"

    def __init__(self, failure: StatementFailure):
        self.failure = failure
        self._say()


class SampleError(BadgeConsoleError):
    """The sample (rows JSON, changes, limit, mode, code) is not usable; exit code 1."""


SampleInput = Literal["rows", "changes"]  # rows typed by hand, changes of an update


class SampleNotJson(_Worded, SampleError):
    def __init__(self, input: SampleInput, reason: str, line: int, column: int):
        self.input, self.reason, self.line, self.column = input, reason, line, column
        self.topic = f"{input}-json"
        self._say()


class SampleShapeInvalid(_Worded, SampleError):
    """Valid JSON of the wrong shape for its input."""

    SHAPES = {"rows": "a JSON object or a non-empty list of objects (column: value)",
              "changes": "a JSON object (column: new value)"}

    def __init__(self, input: SampleInput):
        self.input, self.topic = input, f"{input}-shape"
        self._say()

    def facts(self) -> dict:
        return super().facts() | {"shape": self.SHAPES[self.input]}


class UnknownSampleColumns(_Worded, SampleError):
    """Keys of typed row `row` (1-based), or of the changes, that are not columns of `table`."""

    def __init__(self, input: SampleInput, row: int | None, columns: list[str], table: str):
        self.input, self.row, self.columns, self.table = input, row, columns, table
        self.topic = f"{input}-columns"
        self._say()

    def facts(self) -> dict:
        return super().facts() | {"columns": ", ".join(self.columns)}


class SampleRejected(_Worded, SampleError):
    """PostgreSQL refused typed row `row` (1-based) or the changes as values of the table."""

    def __init__(self, input: SampleInput, row: int | None, failure: StatementFailure):
        self.input, self.row, self.failure = input, row, failure
        self.topic = f"{input}-rejected"
        self._say()


class ChangesNeedUpdate(_Worded, SampleError):
    """Changes were given for a dry run of an insert or delete (`op`)."""

    topic = "changes-need-update"

    def __init__(self, op: str):
        self.op = op
        self._say()


class BadgeFileMissing(_Worded, DefinitionError):
    """No badges file at `path`; each front end says how it is given (the CLI: --badges)."""

    topic = "badge-file-missing"

    def __init__(self, path: str):
        DefinitionError.__init__(self, path, [Problem(None, None, None, "missing-file",
                                                      "file not found")])
        self._say()


class BackfillStopped(OperationFailed):
    """A batch failed; the `awarded` awards of earlier batches stay committed."""

    def __init__(self, reason: str, awarded: int, lock: bool = False):
        self.reason, self.awarded, self.lock = reason, awarded, lock
        why = "gave up waiting for a lock (the table is busy; retry later)" if lock else reason
        super().__init__(f"Backfill stopped: {why}; {awarded} award(s) committed before that "
                         "stay, and running it again continues without awarding anyone twice.")
