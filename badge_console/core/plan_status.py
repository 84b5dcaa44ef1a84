"""Plan statuses and actions, and the one function that decides them.

Kept apart from the statement builder (`install.build_plan`), as django-pgtrigger keeps
a trigger's installation status apart from its installer: `decide` reads plain facts
gathered beforehand from badge.json and the catalog, so a test calls it without a
database, and every front end shows the same words for the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .health import FIX


class Word(str, Enum):
    """An enum whose members are their word: JSON, f-strings and str() all show the value."""

    def __str__(self) -> str:
        return self.value


class PlanStatus(Word):
    INSTALLED = "installed"
    OUTDATED = "outdated"  # the file's definition changed since install
    MISSING = "missing"  # not installed, or our trigger was dropped by hand
    DISABLED_IN_DB = "disabled-in-db"  # ALTER TABLE ... DISABLE TRIGGER: there, never fires
    ORPHANED = "orphaned"  # installed but no longer in badge.json
    DISABLED = "disabled"  # `enabled: false` in badge.json
    INVALID = "invalid"  # badge.json's definition does not check
    LEGACY = "legacy"  # a django-pg-badges trigger
    BROKEN = "broken"  # installed, but no longer resolves against today's schema


class PlanAction(Word):
    CREATE = "create"
    REPLACE = "replace"
    DROP = "drop"
    UNCHANGED = "unchanged"
    SKIP = "skip"  # disabled and nothing of it in the database
    KEEP = "keep"  # a django-pg-badges trigger no badge claims: left in place
    NONE = "none"  # invalid: install refuses


CHANGES = (PlanAction.CREATE, PlanAction.REPLACE, PlanAction.DROP)  # what install runs


@dataclass(frozen=True)
class BadgeFacts:
    """What is known about one code before deciding, as plain values."""

    in_file: bool = True  # badge.json has this code (else: orphaned or a stray legacy trigger)
    enabled: bool = True
    problem: str | None = None  # the definition is invalid: its first problem ("" if unnamed)
    recorded: str | None = None  # fingerprint in badge_console.installed; None: no row
    wanted: str = ""  # fingerprint of the file's definition
    has_objects: bool = False  # functions or triggers of ours exist for this code
    triggers_match: bool = False  # our triggers are exactly the ones the file asks for
    switched_off: tuple[str, ...] = ()  # our triggers there but disabled (DISABLE TRIGGER)
    legacy: tuple[str, ...] = ()  # django-pg-badges triggers this badge replaces
    stray_table: str = ""  # where a django-pg-badges trigger no badge claims sits
    broken: str = ""  # why what is installed no longer resolves; "" when healthy
    paused: bool = False  # the kill switch is on for this code or for all ('*')
    auto_paused: dict | None = None  # it paused itself: the last error
    time_based: bool = False  # the condition reads the clock


@dataclass(frozen=True)
class Decision:
    status: PlanStatus
    action: PlanAction
    detail: str = ""
    paused: bool = False
    auto_paused: dict | None = None
    time_based: bool = False


def decide(facts: BadgeFacts) -> Decision:
    """Status, action and why for one code; a legacy trigger has no kill switch."""
    status, action, detail = _status(facts)
    ours = status is not PlanStatus.LEGACY
    return Decision(status, action, detail, facts.paused and ours,
                    facts.auto_paused if ours else None, facts.time_based)


def _status(f: BadgeFacts) -> tuple[PlanStatus, PlanAction, str]:
    installed = f.recorded is not None or f.has_objects
    if not f.in_file:
        if installed:
            return (PlanStatus.ORPHANED, PlanAction.DROP, "installed but no longer in badge.json"
                    + (f" and {f.broken}" if f.broken else ""))
        return (PlanStatus.LEGACY, PlanAction.KEEP, f"django-pg-badges trigger on "
                f"{f.stray_table} matches no badge in badge.json; left in place")
    if not f.enabled:
        return (PlanStatus.DISABLED, PlanAction.DROP if installed or f.legacy
                else PlanAction.SKIP, "disabled in badge.json")
    if f.problem is not None:
        return ((PlanStatus.BROKEN, PlanAction.NONE, f.broken) if f.broken
                else (PlanStatus.INVALID, PlanAction.NONE, f.problem))
    if not installed:
        if f.legacy:
            return (PlanStatus.LEGACY, PlanAction.REPLACE,
                    "replaces django-pg-badges trigger(s) " + ", ".join(f.legacy))
        return PlanStatus.MISSING, PlanAction.CREATE, "not installed"
    if f.broken:
        return (PlanStatus.BROKEN, PlanAction.REPLACE,
                f.broken.removesuffix(FIX) + "install replaces it")
    if f.recorded is None:
        return (PlanStatus.MISSING, PlanAction.REPLACE,
                "replaces trigger(s) left without bookkeeping")
    if f.recorded != f.wanted:
        return PlanStatus.OUTDATED, PlanAction.REPLACE, "definition changed"
    if f.triggers_match and f.switched_off:
        return (PlanStatus.DISABLED_IN_DB, PlanAction.REPLACE,
                f"trigger {', '.join(f.switched_off)} disabled in the database; "
                "install re-creates it enabled")
    if f.triggers_match and not f.legacy:
        return PlanStatus.INSTALLED, PlanAction.UNCHANGED, ""
    return PlanStatus.MISSING, PlanAction.REPLACE, "trigger was dropped outside badge-console"
