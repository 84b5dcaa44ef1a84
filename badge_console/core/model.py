"""The typed form of badge.json's badges, parsed once after the file checks.

definitions.Badge keeps whatever the file had, so the editor can show and save a
half-broken file and the checks can report every problem. Once a badge has passed them,
its values have the types the checks guarantee; the engine (resolve, the generator,
install, dry run, backfill, health) reads this form and never checks a type again.
"""

from __future__ import annotations

from dataclasses import dataclass

from .definitions import Badge, BadgeFile, OnError, Operation
from .errors import Problem


@dataclass(frozen=True)
class ValidBadge:
    """A badge no problem points at, with typed values."""

    index: int  # its position in badge.json: where its Problems point
    name: str
    code: str
    condition: str
    operations: tuple[Operation, ...]
    trigger_table: str
    user_field: str
    enabled: bool
    on_error: OnError
    entry: dict  # the badge as badge.json has it: install records it as installed
    definition: dict  # what shapes its trigger, as health compares it: the fingerprint's
    # A level of a series (levels.py): the series' code, the level's position and its
    # threshold; None for a plain badge.
    series: str | None = None
    level: int | None = None
    at: int | float | None = None

    @classmethod
    def parse(cls, index: int, badge: Badge) -> "ValidBadge":
        of = badge.level_of
        return cls(index, badge.name, badge.code, badge.condition, badge.operations,
                   badge.trigger_table, badge.user_field, badge.is_enabled, badge.on_error,
                   badge.to_dict(), badge.definition(), of and of.series, of and of.level,
                   of and of.at)


def valid_badges(bf: BadgeFile, problems: list[Problem]) -> list[ValidBadge]:
    """Every badge of the file that none of `problems` points at, typed, in file order (a
    series as its levels)."""
    invalid = {p.index for p in problems if p.index is not None}
    return [ValidBadge.parse(index, badge) for index, badge in bf.each_badge()
            if index not in invalid]
